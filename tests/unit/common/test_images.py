from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fovea.common.errors import InvalidImage
from fovea.common.images import ImageLimits, decode_image, decode_image_reduced

LIMITS = ImageLimits(max_bytes=1_000_000, max_pixels=4_000_000, min_side=16, max_side=4000)
LIMITS_LARGE = ImageLimits(max_pixels=20_000_000, max_side=8000)


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


def _marked_jpeg(width: int, height: int, orientation: int | None = None) -> bytes:
    """A grey JPEG with a red block in its top-left quarter (raw orientation)."""
    img = Image.new("RGB", (width, height), (128, 128, 128))
    img.paste((255, 0, 0), (0, 0, width // 4, height // 4))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    return encode(img, "JPEG", quality=95, exif=exif)


def test_reduced_decode_keeps_at_least_min_size_and_reports_the_full_size() -> None:
    # 2000x1000 with min 416x416: 1/2 -> 1000x500 keeps both sides >= 416, 1/4 -> 500x250 would not
    decoded = decode_image_reduced(_marked_jpeg(2000, 1000), LIMITS_LARGE, (416, 416))
    assert decoded.original_size == (2000, 1000) and decoded.pixels.shape == (500, 1000, 3)
    assert decoded.pixels[10, 10].tolist() == pytest.approx([255, 0, 0], abs=8)
    # 4000x3200 with min 416x416: 1/4 -> 1000x800 ... 1/8 -> 500x400 is too small in height
    decoded = decode_image_reduced(_marked_jpeg(4000, 3200), LIMITS_LARGE, (416, 416))
    assert decoded.pixels.shape == (800, 1000, 3)


def test_reduced_decode_honours_exif_orientation() -> None:
    # raw 2000x1000, orientation 6 (rotate 90 clockwise to view): the picture is 1000x2000, red block top-right
    decoded = decode_image_reduced(_marked_jpeg(2000, 1000, orientation=6), LIMITS_LARGE, (416, 416))
    assert decoded.original_size == (1000, 2000) and decoded.pixels.shape == (1000, 500, 3)
    assert decoded.pixels[10, 490].tolist() == pytest.approx([255, 0, 0], abs=8)
    full = decode_image(_marked_jpeg(2000, 1000, orientation=6), LIMITS_LARGE)
    assert full.shape == (2000, 1000, 3)


def test_reduced_decode_reports_its_reduction_and_takes_a_size_function() -> None:
    # the function sees the oriented full size (1000x2000 here) before any pixel is decoded
    seen = []

    def quarter(size: tuple[int, int]) -> tuple[int, int]:
        seen.append(size)
        return size[0] // 4, size[1] // 4

    decoded = decode_image_reduced(_marked_jpeg(2001, 1003, orientation=6), LIMITS_LARGE, quarter)
    assert seen == [(1003, 2001)]
    assert decoded.reduction == 4 and decoded.pixels.shape == (501, 251, 3)  # ceil(side / 4)
    assert decode_image_reduced(_marked_jpeg(2000, 1000), LIMITS_LARGE, lambda _: None).reduction == 1
    assert decode_image_reduced(_marked_jpeg(2000, 1000), LIMITS_LARGE, (416, 416)).reduction == 2
    png = encode(Image.new("RGB", (2000, 1000)), "PNG")
    assert decode_image_reduced(png, LIMITS_LARGE, quarter).reduction == 1


def test_small_images_and_pngs_are_not_reduced() -> None:
    small = decode_image_reduced(_marked_jpeg(800, 600), LIMITS_LARGE, (416, 416))  # 1/2 -> 400x300
    assert small.pixels.shape == (600, 800, 3) and small.original_size == (800, 600)
    png = encode(Image.new("RGB", (2000, 1000)), "PNG")
    assert decode_image_reduced(png, LIMITS_LARGE, (416, 416)).pixels.shape == (1000, 2000, 3)
    assert decode_image_reduced(_marked_jpeg(2000, 1000), LIMITS_LARGE, None).pixels.shape == (1000, 2000, 3)


def mpo(first: Image.Image, second: Image.Image) -> bytes:
    """A phone camera's MPO: two JPEGs in one file (Pillow writes the MP index like the cameras do)."""
    data = encode(first, "MPO", save_all=True, append_images=[second])
    with Image.open(io.BytesIO(data)) as check:
        assert check.format == "MPO" and getattr(check, "n_frames", 1) == 2
    return data


def test_mpo_is_decoded_as_its_first_image() -> None:
    first, second = Image.new("RGB", (64, 48), (250, 10, 10)), Image.new("RGB", (32, 24), (10, 10, 250))
    data = mpo(first, second)
    out = decode_image(data, LIMITS)
    assert out.shape == (48, 64, 3)
    assert abs(int(out[..., 0].mean()) - 250) < 8 and int(out[..., 2].mean()) < 20  # red, not the blue one
    reduced = decode_image_reduced(
        mpo(Image.new("RGB", (800, 600), (250, 10, 10)), second), LIMITS, (100, 75)
    )
    assert reduced.original_size == (800, 600) and reduced.pixels.shape == (75, 100, 3)  # 1/8 in draft mode


def test_the_decoded_picture_is_rgb_and_its_pixels_are_made_once() -> None:
    grey = Image.new("L", (40, 30), 90)
    buf = io.BytesIO()
    grey.save(buf, format="PNG")
    decoded = decode_image_reduced(buf.getvalue(), LIMITS_LARGE, None)
    assert decoded.picture.mode == "RGB" and decoded.picture.size == (40, 30)
    assert decoded.pixels.shape == (30, 40, 3) and (decoded.pixels == 90).all()
    assert decoded.pixels is decoded.pixels
