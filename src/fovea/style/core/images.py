"""Image helpers for style transfer: fit to a longest side, uint8 HWC arrays <-> float NCHW tensors.

Conventions: arrays are (H, W, 3) ``uint8`` RGB (what ``fovea.common.images.decode_image`` returns);
tensors are (1, 3, H, W) ``float32`` RGB with values 0-255 (not 0-1). Inputs are never modified.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from fovea.contracts.styles import check_image_array, fitted_size


def fit_array(image: np.ndarray, max_side: int, upscale: bool = False) -> np.ndarray:
    """Resize an (H, W, 3) uint8 image so its longest side is ``max_side`` (Lanczos); aspect kept.

    Returns the input itself when no resize is needed (``upscale=False`` and already small enough).
    """
    check_image_array(image)
    height, width = image.shape[:2]
    size = fitted_size(height, width, max_side, upscale)
    if size == (height, width):
        return image
    resized = Image.fromarray(image).resize((size[1], size[0]), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8)
