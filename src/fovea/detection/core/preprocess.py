"""Image -> network input, and network-input boxes -> original-image boxes.

What :func:`letterbox` does, exactly, for an ``H x W`` RGB uint8 image and ``spec.input_size = (IW, IH)``:

1. Size. With ``spec.letterbox`` true: ``r = min(IW / W, IH / H)`` (up- or down-scaling),
   ``new_w = max(1, round(W * r))``, ``new_h = max(1, round(H * r))``, and the resized image is placed at
   ``pad_x = (IW - new_w) // 2``, ``pad_y = (IH - new_h) // 2`` on a uint8 canvas filled with
   ``round(spec.pad_value)``. With ``spec.letterbox`` false: ``new_w, new_h = IW, IH`` (x and y scaled
   separately), no padding.
2. Resize with PIL's ``Image.resize(..., Resampling.BILINEAR)`` on the uint8 pixels. Pillow's bilinear filter
   widens its support when downscaling (it antialiases), so results differ slightly from OpenCV's
   ``INTER_LINEAR``. The image is not resized when its size already matches.
3. The result is the ``(IH, IW, 3)`` uint8 RGB canvas: what a ``spec.input_format == "uint8_nhwc"`` model
   takes as it is (its graph casts, reorders and normalises).

For a ``"float_nchw"`` model :func:`normalise` then reorders the channels to ``spec.channel_order`` (RGB in;
"BGR" reverses them), computes ``(value * spec.scale - mean[c]) / std[c]`` in float32 for every pixel,
padding included (``mean``/``std`` in the model's channel order), and lays the result out ``(3, IH, IW)``.

The :class:`Transform` records the exact scale factors ``new_w / W`` and ``new_h / H`` (not ``r``, which
rounding makes slightly different) and the padding, so :func:`to_original` inverts the geometry exactly.
When the image was decoded at a reduced scale (JPEG draft mode), ``original_size`` gives the full size: the
geometry is computed for it, so the boxes come back in full-size pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from fovea.common.detectors.boxes import clip_boxes_to_image
from fovea.common.images import as_picture, image_size
from fovea.contracts.detector import DetectorSpec

__all__ = ["Transform", "letterbox", "normalise", "to_original"]


@dataclass(frozen=True)
class Transform:
    """Geometry from original-image pixels to network-input pixels: ``x_in = x * scale_x + pad_x``."""

    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int
    original_size: tuple[int, int]
    """Original image ``(width, height)``."""
    input_size: tuple[int, int]
    """Network input ``(width, height)``."""


def _check_image(image: np.ndarray | Image.Image) -> None:
    if isinstance(image, Image.Image):
        if image.mode != "RGB" or 0 in image.size:
            raise ValueError(f"image must be a non-empty RGB image, got mode {image.mode} {image.size}")
        return
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array or a Pillow image, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image must not be empty, got {image.shape}")


def resized_size(width: int, height: int, spec: DetectorSpec) -> tuple[int, int]:
    """``(width, height)`` an image of that size is resized to on the network's canvas: the whole input
    for a stretching detector, the largest that fits keeping the aspect ratio for a letterboxing one."""
    in_w, in_h = spec.input_size
    if not spec.letterbox:
        return in_w, in_h
    r = min(in_w / width, in_h / height)
    return max(1, min(in_w, round(width * r))), max(1, min(in_h, round(height * r)))


def letterbox(
    image: np.ndarray | Image.Image, spec: DetectorSpec, original_size: tuple[int, int] | None = None
) -> tuple[np.ndarray, Transform]:
    """Resize (and pad, if ``spec.letterbox``) an RGB image onto the network's input canvas, in uint8.

    See the module docstring for the exact steps.

    Args:
        image: ``(H, W, 3)`` uint8 RGB, or a Pillow RGB image (as decoded: resized without a copy of it
            as an array first); not modified.
        spec: the detector's metadata (input size, letterbox, pad value).
        original_size: ``(width, height)`` of the full-size image when ``image`` was decoded at a reduced
            scale; the transform then maps to full-size pixels. ``None``: ``image`` is full size.

    Returns:
        ``(IH, IW, 3)`` uint8 RGB canvas, and the :class:`Transform` for :func:`to_original`.
    """
    _check_image(image)
    width, height = image_size(image)
    full_w, full_h = original_size or (width, height)
    if full_w <= 0 or full_h <= 0:
        raise ValueError(f"original_size must be positive, got {original_size}")
    in_w, in_h = spec.input_size
    new_w, new_h = resized_size(full_w, full_h, spec)
    if (new_w, new_h) == (width, height):
        resized = np.asarray(image, np.uint8)
    else:
        resized = np.asarray(as_picture(image).resize((new_w, new_h), Image.Resampling.BILINEAR))
    pad_x, pad_y = (in_w - new_w) // 2, (in_h - new_h) // 2
    if (new_w, new_h) == (in_w, in_h):
        canvas = np.array(resized, dtype=np.uint8)  # a copy: the caller's image is never aliased
    else:
        canvas = np.full((in_h, in_w, 3), round(spec.pad_value), dtype=np.uint8)
        canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    transform = Transform(
        scale_x=new_w / full_w,
        scale_y=new_h / full_h,
        pad_x=pad_x,
        pad_y=pad_y,
        original_size=(full_w, full_h),
        input_size=(in_w, in_h),
    )
    return canvas, transform


def normalise(canvas: np.ndarray, spec: DetectorSpec) -> np.ndarray:
    """A letterboxed uint8 canvas as a ``"float_nchw"`` model's input.

    Args:
        canvas: ``(IH, IW, 3)`` uint8 RGB from :func:`letterbox`; not modified.
        spec: channel order, scale, mean, std.

    Returns:
        ``(3, IH, IW)`` float32, contiguous: ``(value * scale - mean[c]) / std[c]`` in ``spec.channel_order``.
    """
    _check_image(canvas)
    pixels = canvas[:, :, ::-1] if spec.channel_order == "BGR" else canvas
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    normalised = (pixels.astype(np.float32) * np.float32(spec.scale) - mean) / std
    return np.ascontiguousarray(normalised.transpose(2, 0, 1))


def to_original(boxes: Tensor, transform: Transform) -> Tensor:
    """Map xyxy boxes from network-input pixels back to original-image pixels, clipped to the image.

    ``x = (x_in - pad_x) / scale_x``, ``y = (y_in - pad_y) / scale_y``, then clipped to
    ``[0, W] x [0, H]``.

    Args:
        boxes: ``(N, 4)`` xyxy in network-input pixels; not modified.
        transform: from :func:`letterbox`.

    Returns:
        ``(N, 4)`` float32 xyxy in original pixels.
    """
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {tuple(boxes.shape)}")
    offset = torch.tensor(
        [transform.pad_x, transform.pad_y, transform.pad_x, transform.pad_y],
        dtype=torch.float32,
        device=boxes.device,
    )
    scale = torch.tensor(
        [transform.scale_x, transform.scale_y, transform.scale_x, transform.scale_y],
        dtype=torch.float32,
        device=boxes.device,
    )
    original = (boxes.to(torch.float32) - offset) / scale
    return clip_boxes_to_image(original, transform.original_size)
