"""The classifier's input crop and the ranking of its output (pure functions).

The crop is torchvision's ImageNet evaluation transform: resize (bilinear) so the shorter side is
``resize_side``, then the centre ``crop_size x crop_size``. The served graph normalises the uint8 crop itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from fovea.common.images import as_picture, image_size


@dataclass(frozen=True)
class Prediction:
    class_id: int
    label: str
    probability: float


def crop_box(
    width: int, height: int, resize_side: int = 256, crop_size: int = 224
) -> tuple[float, float, float, float]:
    """The part of a ``width x height`` image that :func:`centre_crop` returns, as ``(x1, y1, x2, y2)`` in the
    image's pixels (floats; the crop's pixel grid tiles this box).

    Raises:
        ValueError: a side below 1, or ``crop_size`` not in ``1..resize_side``.
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if not 0 < crop_size <= resize_side:
        raise ValueError(f"crop_size must be in 1..resize_side ({resize_side}), got {crop_size}")
    scale = resize_side / min(width, height)
    size = (max(resize_side, round(width * scale)), max(resize_side, round(height * scale)))
    top = (size[1] - crop_size) // 2
    left = (size[0] - crop_size) // 2
    sx, sy = size[0] / width, size[1] / height
    return (left / sx, top / sy, (left + crop_size) / sx, (top + crop_size) / sy)


def centre_crop(image: np.ndarray | Image.Image, resize_side: int = 256, crop_size: int = 224) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB (or a Pillow RGB image, as decoded: no array of every pixel is made) ->
    ``(crop_size, crop_size, 3)`` uint8: shorter side resized to ``resize_side`` (bilinear, the other side
    keeps the aspect ratio, rounded), then the centre crop (offsets floored).

    Raises:
        ValueError: not an ``(H, W, 3)`` uint8 or RGB image, or ``crop_size > resize_side``.
    """
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            raise ValueError(f"expected an RGB image, got mode {image.mode}")
    elif image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    if not 0 < crop_size <= resize_side:
        raise ValueError(f"crop_size must be in 1..resize_side ({resize_side}), got {crop_size}")
    width, height = image_size(image)
    scale = resize_side / min(width, height)
    size = (max(resize_side, round(width * scale)), max(resize_side, round(height * scale)))
    top = (size[1] - crop_size) // 2
    left = (size[0] - crop_size) // 2
    if size == (width, height):
        if isinstance(image, Image.Image):
            return np.asarray(image.crop((left, top, left + crop_size, top + crop_size)), np.uint8)
        return np.ascontiguousarray(image[top : top + crop_size, left : left + crop_size])
    # Only the crop's window is resampled (the pixels of resizing the whole image, then cropping): a
    # 16x12000 strip is never blown up to 256x192000.
    sx, sy = size[0] / width, size[1] / height
    box = (left / sx, top / sy, (left + crop_size) / sx, (top + crop_size) / sy)
    crop = as_picture(image).resize((crop_size, crop_size), Image.Resampling.BILINEAR, box=box)
    return np.asarray(crop)


def top_k(probabilities: np.ndarray, labels: list[str], k: int) -> list[Prediction]:
    """The ``k`` most probable classes, most probable first (ties: lower class id first).

    Args:
        probabilities: ``(C,)`` float, one per label.
        labels: ``C`` class names.
        k: ``1..C``.

    Raises:
        ValueError: ``probabilities`` and ``labels`` differ in length, or ``k`` out of range.
    """
    if probabilities.ndim != 1 or probabilities.shape[0] != len(labels):
        raise ValueError(f"{probabilities.shape} probabilities for {len(labels)} labels")
    if not 1 <= k <= len(labels):
        raise ValueError(f"k must be in 1..{len(labels)}, got {k}")
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [Prediction(int(i), labels[i], float(probabilities[i])) for i in order]


__all__ = ["Prediction", "centre_crop", "top_k"]
