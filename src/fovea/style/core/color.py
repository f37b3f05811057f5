"""Colour preservation for style transfer (luminance-only transfer) and its measure. No I/O.

Gatys et al., "Preserving Color in Neural Artistic Style Transfer" (2016), colour-transfer variant: keep the
stylised image's luminance and the content's chroma. In YCbCr (ITU-R BT.601, full range, as JPEG uses):
Y from the result, Cb and Cr from the content.

Arrays are (H, W, 3) ``uint8`` RGB; inputs are never modified.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# BT.601 full range (JFIF): rows give Y, Cb, Cr from R, G, B; Cb and Cr are offset by 128.
_RGB_TO_YCBCR = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float64
)
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)
_OFFSET = np.array([0.0, 128.0, 128.0])


def rgb_to_ycbcr(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W, 3) float64 Y, Cb, Cr in [0, 255]."""
    _check(image, "image")
    return image.astype(np.float64) @ _RGB_TO_YCBCR.T + _OFFSET


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """(H, W, 3) float Y, Cb, Cr -> (H, W, 3) uint8 RGB, rounded and clipped."""
    if ycbcr.ndim != 3 or ycbcr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) YCbCr array, got shape {ycbcr.shape}")
    rgb = (ycbcr - _OFFSET) @ _YCBCR_TO_RGB.T
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def preserve_color(content: np.ndarray, stylised: np.ndarray) -> np.ndarray:
    """The stylised image's luminance with the content's chroma: (H, W, 3) uint8 RGB, ``stylised``'s size.

    ``content`` is resized (Lanczos) to ``stylised``'s size when the two differ.
    """
    _check(content, "content")
    _check(stylised, "stylised")
    if content.shape != stylised.shape:
        size = (stylised.shape[1], stylised.shape[0])
        content = np.asarray(Image.fromarray(content).resize(size, Image.Resampling.LANCZOS), dtype=np.uint8)
    out = rgb_to_ycbcr(content)
    out[..., 0] = rgb_to_ycbcr(stylised)[..., 0]
    return ycbcr_to_rgb(out)


def chroma_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of Cb and Cr between two same-sized RGB images, in 0-255 units.

    0 for the same colours; the luminance does not count.
    """
    _check(a, "a")
    _check(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape} vs {b.shape}")
    return float(np.abs(rgb_to_ycbcr(a)[..., 1:] - rgb_to_ycbcr(b)[..., 1:]).mean())


def _check(image: np.ndarray, name: str) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{name}: expected an (H, W, 3) uint8 RGB array, got {image.dtype} {image.shape}")
