"""Image helpers for style transfer: fit to a longest side, uint8 HWC arrays <-> float NCHW tensors.

Conventions: arrays are (H, W, 3) ``uint8`` RGB (what ``fovea.common.images.decode_image`` returns);
tensors are (1, 3, H, W) ``float32`` RGB with values 0-255 (not 0-1). Inputs are never modified.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor


def fitted_size(height: int, width: int, max_side: int, upscale: bool = False) -> tuple[int, int]:
    """(height, width) scaled so the longest side is ``max_side``, aspect ratio kept (rounded, >= 1).

    With ``upscale=False`` an image already within ``max_side`` keeps its size.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    scale = max_side / max(height, width)
    if scale >= 1 and not upscale:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


def fit_array(image: np.ndarray, max_side: int, upscale: bool = False) -> np.ndarray:
    """Resize an (H, W, 3) uint8 image so its longest side is ``max_side`` (Lanczos); aspect kept.

    Returns the input itself when no resize is needed (``upscale=False`` and already small enough).
    """
    _check_array(image)
    height, width = image.shape[:2]
    size = fitted_size(height, width, max_side, upscale)
    if size == (height, width):
        return image
    resized = Image.fromarray(image).resize((size[1], size[0]), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8)


def fit_tensor(images: Tensor, max_side: int, upscale: bool = False) -> Tensor:
    """Resize (N, C, H, W) float images so the longest side is ``max_side`` (bilinear, antialiased).

    Returns the input itself when no resize is needed.
    """
    if images.ndim != 4:
        raise ValueError(f"expected a (N, C, H, W) tensor, got shape {tuple(images.shape)}")
    height, width = int(images.shape[2]), int(images.shape[3])
    size = fitted_size(height, width, max_side, upscale)
    if size == (height, width):
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)


def array_to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) float32 RGB 0-255."""
    _check_array(image)
    chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)  # a fresh, writable copy
    return torch.from_numpy(chw)[None].to(device)


def tensor_to_array(image: Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) float RGB 0-255 -> (H, W, 3) uint8, rounded and clamped to 0-255."""
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {image.shape[0]}")
        image = image[0]
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (1, 3, H, W) or (3, H, W) tensor, got shape {tuple(image.shape)}")
    out = image.detach().round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0)
    return np.ascontiguousarray(out.cpu().numpy())


def _check_array(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {image.dtype} {image.shape}")
