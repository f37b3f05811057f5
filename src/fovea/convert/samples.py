"""Sample photos shipped inside registry packages, for demos, tests and benchmarks (fetched, cached)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from fovea.convert.sources import cache_dir, debian_file, extract_member, pypi_archive

# Debian's darknet package ships the classic YOLO demo photos (and Munch's The Scream, a painting).
DARKNET = {
    name: f"usr/share/darknet/data/{name}.jpg"
    for name in ("dog", "person", "horses", "kite", "giraffe", "scream")
}
# face_recognition's source archive ships portraits used by dlib's own examples.
FACES = ("obama", "obama2", "obama3", "obama_partial_face", "obama_partial_face2", "biden")
# scikit-image's wheel ships its demo photos (skimage/data): name -> file.
SKIMAGE_VERSION = "0.26.0"
SKIMAGE = {
    "astronaut": "astronaut.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "motorcycle": "motorcycle_left.png",
    "camera": "camera.png",
}


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
    """Path of a sample photo: one of ``DARKNET``, ``FACES`` or ``SKIMAGE``."""
    if name in DARKNET:
        return debian_file("darknet", DARKNET[name])
    if name in FACES:
        dest = cache_dir() / "sources" / "faces" / f"{name}.jpg"
        if dest.exists():  # extracted before (or carried to a host without registry access, bench/gpu)
            return dest
        return extract_member(
            pypi_archive("face_recognition", "1.3.0", sdist=True), f"tests/test_images/{name}.jpg", dest
        )
    if name in SKIMAGE:
        dest = cache_dir() / "sources" / f"scikit-image-{SKIMAGE_VERSION}" / SKIMAGE[name]
        if dest.exists():
            return dest
        # the wheel for this platform: the data files are the same in every wheel of a version
        return extract_member(
            pypi_archive("scikit-image", SKIMAGE_VERSION), f"skimage/data/{SKIMAGE[name]}", dest
        )
    raise ValueError(f"unknown sample {name!r}; known: {', '.join([*DARKNET, *FACES, *SKIMAGE])}")


def phone_photo(name: str, scale: float = 2.0, seed: int = 0) -> bytes:
    """A 12 MP phone-sized JPEG (4032x3024, quality 92) made from the sample portrait ``name``: a textured
    background (noise, so that it costs what a real photo costs to decode) with the portrait pasted at
    (1500, 600), resized by ``scale``."""
    rng = np.random.default_rng(seed)
    background = Image.fromarray(rng.normal(120, 25, (378, 504, 3)).clip(0, 255).astype(np.uint8))
    canvas = np.asarray(background.resize((4032, 3024), Image.Resampling.BICUBIC)).astype(np.float64)
    picture = Image.fromarray((canvas + rng.normal(0, 6, canvas.shape)).clip(0, 255).astype(np.uint8))
    with Image.open(sample(name)) as opened:
        portrait = opened.convert("RGB")
    size = (int(portrait.width * scale), int(portrait.height * scale))
    picture.paste(portrait.resize(size, Image.Resampling.LANCZOS), (1500, 600))
    buf = io.BytesIO()
    picture.save(buf, "JPEG", quality=92)
    return buf.getvalue()
