"""Luminance-only transfer (``preserve_color``) against a slow per-pixel reference, and the chroma measure."""

from __future__ import annotations

import numpy as np
import pytest

from fovea.style.core.color import chroma_distance, preserve_color, rgb_to_ycbcr, ycbcr_to_rgb


def reference_preserve(content: np.ndarray, stylised: np.ndarray) -> np.ndarray:
    """Pixel by pixel with the JFIF formulas written out (the obviously-correct version)."""
    out = np.empty_like(stylised)
    for i in range(stylised.shape[0]):
        for j in range(stylised.shape[1]):
            r, g, b = (float(v) for v in stylised[i, j])
            y = 0.299 * r + 0.587 * g + 0.114 * b
            r, g, b = (float(v) for v in content[i, j])
            cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
            cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
            rgb = (
                y + 1.402 * (cr - 128),
                y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
                y + 1.772 * (cb - 128),
            )
            out[i, j] = [min(255, max(0, round(v))) for v in rgb]
    return out


@pytest.fixture()
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return (
        rng.integers(0, 256, (12, 9, 3), dtype=np.uint8),
        rng.integers(0, 256, (12, 9, 3), dtype=np.uint8),
    )


def test_matches_the_reference(pair: tuple[np.ndarray, np.ndarray]) -> None:
    content, stylised = pair
    before = (content.copy(), stylised.copy())
    out = preserve_color(content, stylised)
    assert out.shape == stylised.shape and out.dtype == np.uint8
    # rounding of the two matrix forms may differ by one level where a value sits on .5
    assert np.abs(out.astype(int) - reference_preserve(content, stylised)).max() <= 1
    np.testing.assert_array_equal(content, before[0])  # inputs untouched
    np.testing.assert_array_equal(stylised, before[1])


def test_round_trip_is_lossless_within_rounding() -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert np.abs(ycbcr_to_rgb(rgb_to_ycbcr(rgb)).astype(int) - rgb).max() <= 1


def test_grey_stylised_image_takes_the_contents_colours() -> None:
    # content: pure orange (255, 128, 0): Y = 0.299*255 + 0.587*128 = 151.4, Cb = 128 - 43.0 - 42.4 = 42.6,
    # Cr = 128 + 127.5 - 53.6 = 201.9. A grey stylised image (Y 151) keeps its luminance and gets that chroma,
    # so the result is the content's orange again (within rounding).
    content = np.full((4, 4, 3), (255, 128, 0), np.uint8)
    grey = np.full((4, 4, 3), 151, np.uint8)
    out = preserve_color(content, grey)
    assert np.abs(out.astype(int) - content).max() <= 1
    assert chroma_distance(out, content) < 0.5
    assert chroma_distance(grey, content) > 50  # |128-42.6| + |128-201.9| over 2 = 79.7


def test_keeps_the_stylised_luminance(pair: tuple[np.ndarray, np.ndarray]) -> None:
    content, stylised = pair
    out = preserve_color(content, stylised)
    inside = (out > 0).all(axis=2) & (out < 255).all(axis=2)  # where no channel was clipped
    assert inside.any()
    dy = np.abs(rgb_to_ycbcr(out)[..., 0] - rgb_to_ycbcr(stylised)[..., 0])[inside]
    assert dy.max() < 1.0


def test_content_of_another_size_is_resized() -> None:
    content = np.full((40, 60, 3), (0, 90, 200), np.uint8)
    stylised = np.full((20, 30, 3), 100, np.uint8)
    out = preserve_color(content, stylised)
    assert out.shape == (20, 30, 3)
    assert chroma_distance(out, np.full((20, 30, 3), (0, 90, 200), np.uint8)) < 1.0


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        preserve_color(np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="differ in size"):
        chroma_distance(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))
