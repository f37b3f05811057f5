"""Resizing to a longest side and the array <-> tensor conversions of fovea.style.core.images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fovea.contracts.styles import fitted_size
from fovea.ports.gatys import array_to_tensor, fit_tensor, tensor_to_array
from fovea.style.core.images import fit_array


def test_fitted_size_keeps_the_aspect_ratio() -> None:
    assert fitted_size(600, 800, 400) == (300, 400)
    assert fitted_size(80, 100, 64) == (51, 64)  # 80 * 0.64 = 51.2
    assert fitted_size(3, 1000, 100) == (1, 100)  # 0.3 rounds to 0, kept at 1
    assert fitted_size(50, 40, 64) == (50, 40)  # never upscaled by default
    assert fitted_size(50, 40, 100, upscale=True) == (100, 80)
    with pytest.raises(ValueError, match="max_side"):
        fitted_size(10, 10, 0)


def test_fit_array_and_fit_tensor() -> None:
    image = np.zeros((60, 90, 3), np.uint8)
    assert fit_array(image, 100) is image
    assert fit_array(image, 30).shape == (20, 30, 3)
    batch = torch.zeros(2, 3, 60, 90)
    assert fit_tensor(batch, 100) is batch
    assert tuple(fit_tensor(batch, 30).shape) == (2, 3, 20, 30)
    with pytest.raises(ValueError, match="uint8"):
        fit_array(image.astype(np.float32), 30)


def test_array_tensor_round_trip() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    tensor = array_to_tensor(image)
    assert tensor.shape == (1, 3, 5, 7) and tensor.dtype == torch.float32 and tensor.is_contiguous()
    assert tensor[0, 2, 1, 4].item() == image[1, 4, 2]
    np.testing.assert_array_equal(tensor_to_array(tensor), image)
    # rounding and clamping on the way back
    out = tensor_to_array(torch.tensor([-3.0, 127.6, 300.0]).view(3, 1, 1))
    assert out.tolist() == [[[0, 128, 255]]]
    with pytest.raises(ValueError, match="one image"):
        tensor_to_array(torch.zeros(2, 3, 4, 4))
