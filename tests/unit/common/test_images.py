from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fovea.common.errors import InvalidImage
from fovea.common.images import ImageLimits, decode_image

LIMITS = ImageLimits(max_bytes=1_000_000, max_pixels=4_000_000, min_side=16, max_side=4000)


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_rgb_png_roundtrip() -> None:
    arr = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    out = decode_image(encode(Image.fromarray(arr), "PNG"), LIMITS)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert np.array_equal(out, arr)


def test_grey_and_alpha_become_rgb() -> None:
    grey = decode_image(encode(Image.new("L", (32, 32), 100), "PNG"), LIMITS)
    assert grey.shape == (32, 32, 3) and (grey == 100).all()
    clear = decode_image(encode(Image.new("RGBA", (32, 32), (0, 0, 0, 0)), "PNG"), LIMITS)
    assert (clear == 255).all()  # transparent over white


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (40, 20), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    out = decode_image(encode(img, "JPEG", exif=exif), LIMITS)
    assert out.shape == (40, 20, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n not really", "could not be decoded"),
        (b"x" * 2_000_000, "limit"),
    ],
)
def test_bad_bytes(data: bytes, message: str) -> None:
    with pytest.raises(InvalidImage, match=message):
        decode_image(data, LIMITS)


def test_tiny_image() -> None:
    with pytest.raises(InvalidImage, match="1x1"):
        decode_image(encode(Image.new("RGB", (1, 1)), "PNG"), LIMITS)


def test_truncated_jpeg() -> None:
    data = encode(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    with pytest.raises(InvalidImage):
        decode_image(data[: len(data) // 2], LIMITS)


def test_decompression_bomb_is_refused_before_decoding() -> None:
    # A 20000x20000 one-colour PNG compresses to a few hundred kB; its header alone must refuse it.
    data = encode(Image.new("1", (20000, 20000)), "PNG")
    assert len(data) < LIMITS.max_bytes
    with pytest.raises(InvalidImage, match="decompression bomb"):
        decode_image(data, LIMITS)
    # Below PIL's own bomb limit, our pixel limit answers, from the header, with the size.
    with pytest.raises(InvalidImage, match="5000x5000"):
        decode_image(encode(Image.new("1", (5000, 5000)), "PNG"), LIMITS)


def test_gif_is_not_accepted() -> None:
    with pytest.raises(InvalidImage, match="GIF"):
        decode_image(encode(Image.new("RGB", (32, 32)), "GIF"), LIMITS)
