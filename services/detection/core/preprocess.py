"""Image -> network input tensor, and network-input boxes -> original-image boxes.

What :func:`letterbox` does, exactly, for an ``H x W`` RGB uint8 image and ``spec.input_size = (IW, IH)``:

1. Size. With ``spec.letterbox`` true: ``r = min(IW / W, IH / H)`` (up- or down-scaling),
   ``new_w = max(1, round(W * r))``, ``new_h = max(1, round(H * r))``, and the resized image is placed at
   ``pad_x = (IW - new_w) // 2``, ``pad_y = (IH - new_h) // 2`` on a canvas filled with ``spec.pad_value``.
   With ``spec.letterbox`` false: ``new_w, new_h = IW, IH`` (x and y scaled separately), no padding.
2. Resize with PIL's ``Image.resize(..., Resampling.BILINEAR)``. Pillow's bilinear filter widens its
   support when downscaling (it antialiases), so results differ slightly from OpenCV's ``INTER_LINEAR``.
   The image is not resized when its size already matches.
3. Channels are reordered to ``spec.channel_order`` (RGB input; "BGR" reverses them).
4. Every pixel, padding included, becomes ``(value * spec.scale - mean[c]) / std[c]`` in float32, with
   ``mean``/``std`` indexed in the model's channel order.
5. The result is laid out ``(3, IH, IW)`` (CHW), contiguous.

The :class:`Transform` records the exact scale factors ``new_w / W`` and ``new_h / H`` (not ``r``, which
rounding makes slightly different) and the padding, so :func:`to_original` inverts the geometry exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from fovea.detection.core.boxes import clip_boxes_to_image
from fovea.detection.core.spec import DetectorSpec

__all__ = ["Transform", "letterbox", "to_original"]


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


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image must not be empty, got {image.shape}")


def _resized_size(width: int, height: int, spec: DetectorSpec) -> tuple[int, int]:
    in_w, in_h = spec.input_size
    if not spec.letterbox:
        return in_w, in_h
    r = min(in_w / width, in_h / height)
    return max(1, min(in_w, round(width * r))), max(1, min(in_h, round(height * r)))


def letterbox(image: np.ndarray, spec: DetectorSpec) -> tuple[Tensor, Transform]:
    """Resize (and pad, if ``spec.letterbox``) an RGB image into the network's normalised input.

    See the module docstring for the exact steps.

    Args:
        image: ``(H, W, 3)`` uint8 RGB; not modified.
        spec: the detector's metadata (input size, channel order, scale/mean/std, pad value).

    Returns:
        ``(3, IH, IW)`` float32 tensor in ``spec.channel_order``, and the :class:`Transform` for
        :func:`to_original`.
    """
    _check_image(image)
    height, width = image.shape[:2]
    in_w, in_h = spec.input_size
    new_w, new_h = _resized_size(width, height, spec)
    resized = image
    if (new_w, new_h) != (width, height):
        resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR))
    pad_x, pad_y = (in_w - new_w) // 2, (in_h - new_h) // 2
    canvas = np.full((in_h, in_w, 3), spec.pad_value, dtype=np.float32)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    if spec.channel_order == "BGR":
        canvas = canvas[:, :, ::-1]
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    normalised = (canvas * np.float32(spec.scale) - mean) / std
    tensor = torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)))
    transform = Transform(
        scale_x=new_w / width,
        scale_y=new_h / height,
        pad_x=pad_x,
        pad_y=pad_y,
        original_size=(width, height),
        input_size=(in_w, in_h),
    )
    return tensor, transform


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
