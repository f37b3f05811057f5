"""``fovea.classify.core.classify``: the centre crop and top-k."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fovea.classify.core.classify import centre_crop, top_k


def test_centre_crop_of_a_wide_image() -> None:
    # 512x256 (w x h): the shorter side is already 256, so no resize; the crop starts at x = (512-224)//2 = 144,
    # y = (256-224)//2 = 16
    image = np.zeros((256, 512, 3), np.uint8)
    image[:, :, 0] = np.arange(512, dtype=np.int64)[None, :] % 256
    image[:, :, 1] = np.arange(256, dtype=np.uint8)[:, None]
    crop = centre_crop(image)
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    assert crop[0, 0, 0] == 144 and crop[0, 0, 1] == 16
    assert image[0, 0, 0] == 0  # the input is not modified


def test_centre_crop_resizes_the_shorter_side() -> None:
    # 100x50 -> scale 256/50 = 5.12 -> 512x256, then the 224 crop
    crop = centre_crop(np.full((50, 100, 3), 7, np.uint8))
    assert crop.shape == (224, 224, 3) and (crop == 7).all()


@pytest.mark.parametrize("shape", [(300, 400), (256, 256), (256, 300), (90, 700)])
def test_centre_crop_of_a_pillow_image_is_that_of_its_pixels(shape: tuple[int, int]) -> None:
    """The classify service crops the decoded Pillow image (no array of every pixel first): the same crop."""
    pixels = np.random.default_rng(2).integers(0, 256, (*shape, 3), dtype=np.uint8)
    assert np.array_equal(centre_crop(Image.fromarray(pixels)), centre_crop(pixels))
    with pytest.raises(ValueError, match="RGB"):
        centre_crop(Image.fromarray(pixels).convert("L"))


def test_centre_crop_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        centre_crop(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="crop_size"):
        centre_crop(np.zeros((10, 10, 3), np.uint8), resize_side=100, crop_size=200)


def test_top_k_orders_and_breaks_ties_by_class_id() -> None:
    probs = np.array([0.1, 0.4, 0.1, 0.4], np.float32)
    best = top_k(probs, ["a", "b", "c", "d"], 3)
    assert [(p.class_id, p.label) for p in best] == [(1, "b"), (3, "d"), (0, "a")]
    assert best[0].probability == pytest.approx(0.4)


def test_top_k_rejects_bad_k_and_mismatched_labels() -> None:
    probs = np.array([0.5, 0.5], np.float32)
    for k in (0, 3):
        with pytest.raises(ValueError, match="k must be"):
            top_k(probs, ["a", "b"], k)
    with pytest.raises(ValueError, match="labels"):
        top_k(probs, ["a"], 1)


def test_centre_crop_resamples_only_the_window_like_a_full_resize() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (300, 500, 3)).astype(np.uint8)
    # reference: resize all of it (shorter side 256: 300 -> 256, 500 -> round(426.67) = 427), then crop
    full = np.asarray(Image.fromarray(image).resize((427, 256), Image.Resampling.BILINEAR)).astype(int)
    want = full[16:240, 101:325]  # top (256-224)//2 = 16, left (427-224)//2 = 101
    got = centre_crop(image).astype(int)
    assert np.abs(got - want).mean() < 3.0  # the same window, resampled directly (filter edges differ)


def test_centre_crop_of_a_long_strip_stays_small() -> None:
    crop = centre_crop(np.full((16, 12_000, 3), 9, np.uint8))
    assert crop.shape == (224, 224, 3) and (crop == 9).all()
