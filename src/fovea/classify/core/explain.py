"""Where a classifier looks: Grad-CAM over the last conv block, and the PNG overlay (pure functions).

Grad-CAM (Selvaraju et al. 2017) weighs the last conv block's ``K`` feature maps ``A_k`` (``H x W`` cells) by
``alpha_k = 1 / (H W) * sum_ij d y_c / d A_k[i, j]`` (the class score's gradient, averaged over the cells)
and keeps the positive part: ``L_c = ReLU(sum_k alpha_k A_k)``. For a network that ends in a global average
pool and one linear layer, as MobileNetV2 does (``y_c = sum_k w_ck * 1 / (H W) * sum_ij A_k[i, j] + b_c``),
the gradient is the constant ``w_ck / (H W)`` in every cell, so ``alpha_k = w_ck / (H W)`` and Grad-CAM is
exactly the class activation map (Zhou et al. 2016) ``ReLU(sum_k w_ck A_k)`` divided by ``H W``: no backward
pass is needed, only the feature map (``FEATURE_MAP``) and the linear layer's weights. (The ReLU6 inside the
last conv block lies before ``A``, so it does not enter.) tests/unit/classify/test_explain.py checks this
against torch autograd on the port.
"""

from __future__ import annotations

import difflib
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Anchors of the colour map, low -> high: dark blue, blue, cyan, yellow, red (jet-like, without black).
_ANCHORS = np.array([[0, 0, 128], [0, 64, 255], [0, 224, 255], [255, 230, 0], [255, 32, 0]], np.float32)


def grad_cam(feature_map: np.ndarray, class_weights: np.ndarray) -> np.ndarray:
    """Grad-CAM of one class for a global-average-pool + linear head.

    Args:
        feature_map: ``(H, W, K)`` float, the last conv block's output for one image (NHWC, batch removed).
        class_weights: ``(K,)``, the linear layer's row for the class.

    Returns:
        ``(H, W)`` float32, ``ReLU(sum_k w_k A_k) / (H W)`` (>= 0; all zero when no cell speaks for the class).

    Raises:
        ValueError: shapes that do not fit.
    """
    if feature_map.ndim != 3 or class_weights.shape != feature_map.shape[2:]:
        raise ValueError(f"expected (H, W, K) and (K,), got {feature_map.shape} and {class_weights.shape}")
    height, width = feature_map.shape[:2]
    alpha = class_weights.astype(np.float32) / (height * width)
    return np.maximum(feature_map.astype(np.float32) @ alpha, 0.0).astype(np.float32)


def normalise(cam: np.ndarray) -> np.ndarray:
    """``cam / cam.max()`` in ``[0, 1]`` (a copy); all zeros stay zeros."""
    peak = float(cam.max()) if cam.size else 0.0
    return (cam / peak).astype(np.float32) if peak > 0 else np.zeros_like(cam, np.float32)


def class_index(labels: Sequence[str], label: str) -> int:
    """The class id of ``label``: an exact match, else the one label equal to it ignoring case.

    Raises:
        ValueError: no such label (the message suggests close ones) or several equal ignoring case.
    """
    if label in labels:
        return list(labels).index(label)
    folded = [i for i, name in enumerate(labels) if name.casefold() == label.casefold()]
    if len(folded) == 1:
        return folded[0]
    if folded:
        raise ValueError(
            f"class {label!r} matches {[labels[i] for i in folded]} ignoring case; give one exactly"
        )
    close = difflib.get_close_matches(label, list(labels), n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"the classifier has no class {label!r}{hint}")


def peak_cell(cam: np.ndarray) -> tuple[int, int]:
    """``(row, column)`` of the map's maximum (the first one in row-major order on ties)."""
    row, col = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return int(row), int(col)


def cell_centre(
    cell: tuple[int, int], map_shape: tuple[int, int], box: tuple[float, float, float, float]
) -> tuple[float, float]:
    """The centre of map cell ``(row, column)`` in the image's pixels, the map tiling ``box`` (xyxy)."""
    (row, col), (rows, cols) = cell, map_shape
    x1, y1, x2, y2 = box
    return x1 + (col + 0.5) * (x2 - x1) / cols, y1 + (row + 0.5) * (y2 - y1) / rows


def colour_map(values: np.ndarray) -> np.ndarray:
    """Values in ``[0, 1]`` (any shape) -> uint8 RGB colours (``shape + (3,)``), blue (0) to red (1)."""
    v = np.clip(values.astype(np.float32), 0.0, 1.0) * (len(_ANCHORS) - 1)
    low = np.minimum(v.astype(np.int64), len(_ANCHORS) - 2)
    t = (v - low)[..., None]
    return np.round(_ANCHORS[low] * (1 - t) + _ANCHORS[low + 1] * t).astype(np.uint8)


def render_overlay(
    photo: np.ndarray,
    cam: np.ndarray,
    box: tuple[float, float, float, float],
    caption: str,
    *,
    opacity: float = 0.55,
    max_side: int = 1024,
) -> np.ndarray:
    """The photo with the map blended over the part the network saw, the rest dimmed, ``caption`` written on.

    Args:
        photo: ``(H, W, 3)`` uint8 RGB (not modified).
        cam: ``(h, w)`` float in ``[0, 1]`` (:func:`normalise`), tiling ``box``.
        box: ``(x1, y1, x2, y2)`` in ``photo``'s pixels: the crop the network saw.
        caption: written top-left on a dark band (e.g. ``"malamute 76.0%"``).
        opacity: weight of the heat colours where the map is 1; where it is 0 the colours weigh ``opacity / 3``.
        max_side: the result's longer side is at most this (the photo is shrunk first).

    Returns:
        ``(H', W', 3)`` uint8 RGB.

    Raises:
        ValueError: bad shapes, an empty box or ``opacity`` outside ``[0, 1]``.
    """
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 photo, got {photo.dtype} {photo.shape}")
    if cam.ndim != 2 or not cam.size:
        raise ValueError(f"expected a 2-D map, got {cam.shape}")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"empty box {box}")
    image = Image.fromarray(photo)
    scale = min(1.0, max_side / max(image.size))
    if scale < 1.0:
        image = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR
        )
    base = np.asarray(image, np.float32)
    height, width = base.shape[:2]
    # The map resampled (bilinear, cell centres at the cell centres) over the box, clipped to the photo.
    left, top = max(0, round(x1 * scale)), max(0, round(y1 * scale))
    right, bottom = min(width, round(x2 * scale)), min(height, round(y2 * scale))
    out = base * 0.45  # outside the crop: dimmed
    if right > left and bottom > top:
        cam_image = Image.fromarray(np.clip(cam, 0, 1).astype(np.float32), mode="F")
        rows, cols = cam.shape
        sx, sy = cols / ((x2 - x1) * scale), rows / ((y2 - y1) * scale)
        source = (
            min(max((left - x1 * scale) * sx, 0.0), cols),
            min(max((top - y1 * scale) * sy, 0.0), rows),
            min(max((right - x1 * scale) * sx, 0.0), cols),
            min(max((bottom - y1 * scale) * sy, 0.0), rows),
        )
        heat = np.asarray(
            cam_image.resize((right - left, bottom - top), Image.Resampling.BILINEAR, box=source), np.float32
        )
        weight = (opacity / 3 + (opacity - opacity / 3) * np.clip(heat, 0, 1))[..., None]
        window = base[top:bottom, left:right]
        out[top:bottom, left:right] = window * (1 - weight) + colour_map(heat).astype(np.float32) * weight
    result = Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8))
    _caption(result, caption)
    return np.asarray(result)


def _caption(image: Image.Image, text: str) -> None:
    size = max(12, image.height // 24)
    try:
        font: ImageFont.ImageFont | ImageFont.FreeTypeFont = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the bitmap font has one size
        font = ImageFont.load_default()
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(3, size // 4)
    draw.rectangle((0, 0, right - left + 2 * pad, bottom - top + 2 * pad), fill=(0, 0, 0))
    draw.text((pad - left, pad - top), text, fill=(255, 255, 255), font=font)


def png_bytes(rgb: np.ndarray) -> bytes:
    """``(H, W, 3)`` uint8 RGB -> PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


__all__ = [
    "cell_centre",
    "class_index",
    "colour_map",
    "grad_cam",
    "normalise",
    "peak_cell",
    "png_bytes",
    "render_overlay",
]
