from __future__ import annotations

import numpy as np
import pytest

from fovea.faces.recognition.core.quality import assess_quality, blur_score, inter_ocular_distance


def landmarks_with_eyes(left: tuple[float, float], right: tuple[float, float]) -> np.ndarray:
    pts = np.zeros((1, 5, 2))
    pts[0, 0], pts[0, 1] = left, right
    return pts


def test_inter_ocular_distance() -> None:
    pts = np.concatenate([landmarks_with_eyes((10, 10), (13, 14)), landmarks_with_eyes((0, 0), (0, 0))])
    np.testing.assert_allclose(inter_ocular_distance(pts), [5.0, 0.0])  # 3-4-5 triangle
    with pytest.raises(ValueError):
        inter_ocular_distance(np.zeros((5, 2)))


def test_blur_score_values() -> None:
    flat = np.full((1, 10, 10, 3), 77, np.uint8)
    assert blur_score(flat)[0] == 0.0
    # Checkerboard of 0/255 grey: every interior Laplacian is +-4*255, so the variance is (4*255)^2.
    board = ((np.indices((10, 10)).sum(0) % 2) * 255).astype(np.uint8)
    chips = np.repeat(board[None, :, :, None], 3, axis=3)
    np.testing.assert_allclose(blur_score(chips), [(4 * 255) ** 2])
    assert blur_score(np.empty((0, 5, 5, 3), np.uint8)).shape == (0,)
    with pytest.raises(ValueError):
        blur_score(np.zeros((1, 2, 10, 3), np.uint8))


def test_blur_score_drops_when_blurred() -> None:
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 256, (1, 40, 40, 3)).astype(np.float64)
    blurred = (sharp + np.roll(sharp, 1, 1) + np.roll(sharp, 1, 2) + np.roll(sharp, (1, 1), (1, 2))) / 4
    assert blur_score(blurred.astype(np.uint8))[0] < blur_score(sharp.astype(np.uint8))[0] / 2


def test_assess_quality_uses_given_thresholds() -> None:
    board = ((np.indices((10, 10)).sum(0) % 2) * 255).astype(np.uint8)
    chips = np.stack([np.repeat(board[:, :, None], 3, 2), np.full((10, 10, 3), 9, np.uint8)])
    pts = np.concatenate([landmarks_with_eyes((0, 0), (40, 0)), landmarks_with_eyes((0, 0), (10, 0))])
    sharp_big, flat_small = assess_quality(pts, chips, min_inter_ocular=20, min_blur=50)
    assert sharp_big.ok and not sharp_big.too_small
    assert flat_small.too_small and flat_small.too_blurry and not flat_small.ok
    assert sharp_big.inter_ocular == 40.0 and flat_small.blur == 0.0
    with pytest.raises(ValueError):
        assess_quality(pts, chips[:1], min_inter_ocular=20, min_blur=50)
    with pytest.raises(ValueError):
        assess_quality(pts, chips, min_inter_ocular=-1, min_blur=50)
