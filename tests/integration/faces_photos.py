"""Photos the faces integration tests make from the sample portraits (two faces, blurred, tiny, corrupt)."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

from PIL import Image, ImageFilter

from fovea.convert.samples import sample


def new_id(prefix: str) -> str:
    """A gallery, identity or door id of this test run."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def photo_path(name: str) -> Path:
    return sample(name)


def photo(name: str) -> bytes:
    return sample(name).read_bytes()


def jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def side_by_side(left: str, right: str, height: int = 800) -> bytes:
    """Two portraits scaled to the same height on one canvas: a photo with two faces."""
    a, b = (Image.open(sample(n)).convert("RGB") for n in (left, right))
    a = a.resize((round(a.width * height / a.height), height))
    b = b.resize((round(b.width * height / b.height), height))
    canvas = Image.new("RGB", (a.width + b.width, height), "white")
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width, 0))
    return jpeg(canvas)


def blurred(name: str, radius: float = 6.0) -> bytes:
    return jpeg(Image.open(sample(name)).convert("RGB").filter(ImageFilter.GaussianBlur(radius)))


def tiny_face(name: str, face_height: int = 160, canvas: int = 640) -> bytes:
    """The portrait shrunk to ``face_height`` pixels high in the middle of a grey canvas."""
    img = Image.open(sample(name)).convert("RGB")
    img = img.resize((round(img.width * face_height / img.height), face_height))
    out = Image.new("RGB", (canvas, canvas), (128, 128, 128))
    out.paste(img, ((canvas - img.width) // 2, (canvas - img.height) // 2))
    return jpeg(out)


def corrupt(name: str) -> bytes:
    return photo(name)[:600]  # a truncated JPEG
