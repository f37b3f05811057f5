"""Decoding of client images: format allow-list, size limits, EXIF orientation, RGB conversion."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fovea.common.errors import InvalidImage

ALLOWED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP"})
"""As Pillow names them. MPO is the JPEG of phone cameras with a second, smaller image appended (a preview or
the other eye): Pillow opens it at its first image, a JPEG, which is what is decoded."""
JPEG_FORMATS = frozenset({"JPEG", "MPO"})


@dataclass(frozen=True)
class ImageLimits:
    """Bounds on what a service accepts; every bound is checked before the pixels are decoded."""

    max_bytes: int = 16 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_side: int = 16
    max_side: int = 12_000


class ImageSettings(Protocol):
    """The image limits every service's settings class carries (``FOVEA_<SVC>_MAX_IMAGE_BYTES`` ...)."""

    max_image_bytes: int
    max_image_pixels: int
    min_image_side: int


def limits_from(settings: ImageSettings) -> ImageLimits:
    return ImageLimits(
        max_bytes=settings.max_image_bytes,
        max_pixels=settings.max_image_pixels,
        min_side=settings.min_image_side,
    )


def decode_image(data: bytes, limits: ImageLimits) -> np.ndarray:
    """Decode JPEG/PNG/WebP bytes into an RGB ``uint8`` array of shape (H, W, 3), EXIF orientation applied.

    Grey and palette images are expanded to RGB; alpha is composited over white. Raises ``InvalidImage``
    with a message a person can act on.
    """
    return decode_image_reduced(data, limits, None).pixels


@dataclass(frozen=True)
class Decoded:
    """A decoded image and the size of the full image it shows."""

    picture: Image.Image
    """Mode RGB, EXIF orientation applied; smaller than ``original_size`` after a reduced decode. Resize this
    rather than ``pixels``: a Pillow image made from an array is another copy of every pixel (a 1434x2333
    photo: 4 ms for the copy, 6.5 for ``pixels``, 5.8 for the resize itself; bench/README.md)."""
    original_size: tuple[int, int]
    """``(width, height)`` of the full image, EXIF orientation applied."""
    reduction: int = 1
    """1, 2, 4 or 8: the JPEG was decoded at 1/reduction of its size (each side ``ceil(side / reduction)``);
    the pixel centre at x in the full image lies at ``(x + 0.5) / reduction - 0.5`` in ``pixels``."""

    @cached_property
    def pixels(self) -> np.ndarray:
        """``picture`` as an (H, W, 3) uint8 array (made once, on first use)."""
        return np.asarray(self.picture, dtype=np.uint8)


MinSize = tuple[int, int] | Callable[[tuple[int, int]], tuple[int, int] | None] | None
"""What a reduced decode must keep, ``(width, height)`` in the oriented image: fixed, or a function of the
full image's oriented ``(width, height)`` (read from the header, before any pixel is decoded); None: full size."""


# EXIF orientations that swap width and height (transpose, rotate 90 / 270, transverse)
_SWAPS_AXES = frozenset({5, 6, 7, 8})


def decode_image_reduced(data: bytes, limits: ImageLimits, min_size: MinSize) -> Decoded:
    """:func:`decode_image`, decoding a JPEG at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, PIL draft mode)
    when the result still has at least ``min_size = (width, height)`` pixels (in the oriented image);
    ``min_size`` may be a function of the full image's oriented size.

    Only JPEG is reduced; other formats, or ``min_size`` ``None``, decode at full size. The reduced image
    shows the whole picture (each side is ``ceil(side / k)``, ``k`` the result's ``reduction``), so a caller
    maps coordinates back with ``original_size`` or ``reduction``.
    """
    if not data:
        raise InvalidImage("image is empty (0 bytes); send JPEG, PNG or WebP bytes")
    if len(data) > limits.max_bytes:
        raise InvalidImage(f"image is {len(data)} bytes; the limit is {limits.max_bytes} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
            fmt = img.format or "unknown"
            if fmt not in ALLOWED_FORMATS:
                raise InvalidImage(f"image format {fmt} is not accepted; send JPEG, PNG or WebP")
            width, height = img.size
            _check_size(width, height, limits)
            orientation = img.getexif().get(0x0112)  # 0x0112: Orientation
            swapped = orientation in _SWAPS_AXES
            original = (height, width) if swapped else (width, height)
            want = min_size(original) if callable(min_size) else min_size
            reduction = 1
            if want is not None and fmt in JPEG_FORMATS:
                want_w, want_h = (want[1], want[0]) if swapped else want
                if want_w * 2 <= width and want_h * 2 <= height:
                    drafted = img.draft(img.mode, (max(1, want_w), max(1, want_h)))
                    if drafted is not None:  # (mode, (0, 0, width / scale, height / scale))
                        reduction = max(1, round(width / drafted[1][2]))
            if orientation not in (None, 1):  # exif_transpose copies even an upright image
                img = ImageOps.exif_transpose(img) or img
            img.load()
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImage(f"image refused as a decompression bomb: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"image could not be decoded (corrupt or truncated): {exc}") from exc
    return Decoded(to_rgb(img), original, reduction)


def _check_size(width: int, height: int, limits: ImageLimits) -> None:
    if min(width, height) < limits.min_side:
        raise InvalidImage(
            f"image is {width}x{height} pixels; both sides must be at least {limits.min_side} pixels"
        )
    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        raise InvalidImage(
            f"image is {width}x{height} pixels; the limits are {limits.max_side} pixels per side and "
            f"{limits.max_pixels} pixels in all"
        )


def to_rgb(img: Image.Image) -> Image.Image:
    """A mode RGB image from any PIL mode (``img`` itself when it is RGB already); transparency is
    composited over white."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img if img.mode == "RGB" else img.convert("RGB")  # convert() copies even an RGB image


def image_size(image: np.ndarray | Image.Image) -> tuple[int, int]:
    """``(width, height)`` of an (H, W, ...) array or a Pillow image (whose ``size`` is already that)."""
    return image.size if isinstance(image, Image.Image) else (image.shape[1], image.shape[0])


def as_picture(image: np.ndarray | Image.Image) -> Image.Image:
    """A Pillow image of ``image``: itself when it is one, else one made from the (H, W, 3) array (a copy of
    every pixel: resize a decoded ``Decoded.picture`` instead where there is one)."""
    return image if isinstance(image, Image.Image) else Image.fromarray(image)


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 RGB array."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
