"""What the converters check an export on before they write it: deterministic test images (no photo needed)."""

from __future__ import annotations

import numpy as np


def check_images(size: int, seed: int = 0) -> np.ndarray:
    """Two uint8 RGB ``(2, size, size, 3)`` images, smooth gradients with noise (deterministic): what the
    converters run an export and its port on before writing it (every value range, no photo needed)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    base = np.stack(
        [ramp[None, :].repeat(size, 0), ramp[:, None].repeat(size, 1), 255 - ramp[None, :].repeat(size, 0)],
        -1,
    )
    noisy = base[None] + rng.normal(0, 40, (2, size, size, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)
