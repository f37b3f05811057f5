"""The TF.js interpreter's ResizeBilinear (legacy TF coordinates) against a slow, obviously correct one.

Other interpreter tests sit with the first model that needed them (tests/unit/models/test_nanodet_port.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from fovea.ports.tfjs_graph import SPEC_FORMAT, TFJSGraphModule


def _slow_resize_legacy(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """TF ``ResizeBilinear`` with ``align_corners`` and ``half_pixel_centers`` false, NHWC, in float64:
    ``src = dst * in / out``, neighbours ``floor(src)`` and ``floor(src) + 1`` clamped to the last index."""
    n, h, w, c = x.shape
    out = np.zeros((n, out_h, out_w, c))
    for i in range(out_h):
        sy = i * h / out_h
        y0 = min(math.floor(sy), h - 1)
        y1, fy = min(y0 + 1, h - 1), sy - y0
        for j in range(out_w):
            sx = j * w / out_w
            x0 = min(math.floor(sx), w - 1)
            x1, fx = min(x0 + 1, w - 1), sx - x0
            top = x[:, y0, x0] + (x[:, y0, x1] - x[:, y0, x0]) * fx
            bottom = x[:, y1, x0] + (x[:, y1, x1] - x[:, y1, x0]) * fx
            out[:, i, j] = top + (bottom - top) * fy
    return out


def _resize_module(in_hw: tuple[int, int], out_hw: tuple[int, int]) -> TFJSGraphModule:
    def node(name: str, op: str, inputs: list[str], **attrs: Any) -> dict[str, Any]:
        return {"name": name, "op": op, "inputs": inputs, "attrs": attrs}

    nodes = [
        node("x", "Placeholder", [], shape=[-1, *in_hw, 3], dtype="DT_FLOAT"),
        node("size", "Const", [], dtype="DT_INT32"),
        node("r", "ResizeBilinear", ["x", "size"], align_corners=False, half_pixel_centers=False),
    ]
    weights = {"size": torch.tensor(out_hw, dtype=torch.int32)}
    return TFJSGraphModule(
        {"format": SPEC_FORMAT, "nodes": nodes, "weights": weights, "inputs": ["x"], "outputs": ["r:0"]}
    )


@pytest.mark.parametrize(
    ("in_hw", "out_hw"),
    [
        ((4, 5), (8, 10)),  # 2x both ways: the slice-and-broadcast path
        ((3, 4), (12, 8)),  # 4x and 2x
        ((4, 5), (12, 7)),  # 3x and 7/5: the index-select path
        ((1, 3), (2, 6)),  # a single row: index-select along H, 2x along W
    ],
)
def test_legacy_resize_matches_slow_reference(in_hw: tuple[int, int], out_hw: tuple[int, int]) -> None:
    x = torch.randn(2, *in_hw, 3, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        (got,) = _resize_module(in_hw, out_hw)(x)
    assert got.shape == (2, *out_hw, 3)
    np.testing.assert_allclose(
        got.numpy(), _slow_resize_legacy(x.double().numpy(), *out_hw), rtol=0, atol=1e-6
    )


def test_power_of_two_path_gives_the_same_numbers_as_index_select() -> None:
    # 2x is exact in both paths (fractions 0 and 0.5): the fast path must not change a single bit.
    x = torch.randn(1, 16, 16, 3, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        (fast,) = _resize_module((16, 16), (32, 32))(x)
    y = x.permute(0, 3, 1, 2)
    for axis in (2, 3):
        src = torch.arange(32, dtype=torch.float32) * 0.5
        lo = src.floor().long().clamp(max=15)
        hi = (lo + 1).clamp(max=15)
        shape = [1, 1, 1, 1]
        shape[axis] = 32
        a, b = y.index_select(axis, lo), y.index_select(axis, hi)
        y = a + (b - a) * (src - lo.float()).reshape(shape)
    assert torch.equal(fast, y.permute(0, 2, 3, 1))
