from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from fovea.faces.recognition.core.align import (
    MTCNN_TEMPLATE,
    align_faces,
    chip_template,
    chip_transforms,
    extract_chips,
    pyramid_down,
    similarity_transform,
)


def similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty]])


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def test_similarity_recovers_exact_transform() -> None:
    src = np.random.default_rng(0).uniform(0, 100, (5, 2))
    truth = similarity(1.7, 0.3, 12.0, -4.0)
    np.testing.assert_allclose(similarity_transform(src, apply(truth, src)), truth, atol=1e-9)


def test_similarity_never_reflects() -> None:
    src = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 4.0], [3.0, 9.0]])
    mirrored = src * np.array([-1.0, 1.0])  # a reflection fits exactly; a similarity must not use it
    m = similarity_transform(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0
    assert np.abs(apply(m, src) - mirrored).max() > 1


def test_similarity_rejects_bad_points() -> None:
    with pytest.raises(ValueError):
        similarity_transform(np.zeros((5, 2)), np.ones((5, 2)))
    with pytest.raises(ValueError):
        similarity_transform(np.zeros((5, 2)), np.zeros((4, 2)))


def test_template_scaling_follows_dlib_padding_rule() -> None:
    np.testing.assert_allclose(chip_template(150, 0.25), MTCNN_TEMPLATE)
    # dlib: chip point = (q + padding) / (1 + 2 padding) * size for a normalised face point q
    q = MTCNN_TEMPLATE / 150 * 1.5 - 0.25
    np.testing.assert_allclose(chip_template(200, 0.2), (q + 0.2) / 1.4 * 200)
    # the template is symmetric about dlib's face axis
    axis = (0.4901123135679 + 0.25) / 1.5 * 150
    np.testing.assert_allclose(MTCNN_TEMPLATE[0, 0] + MTCNN_TEMPLATE[1, 0], 2 * axis, atol=1e-3)


def test_chip_transform_maps_template_onto_landmarks() -> None:
    truth = similarity(2.5, -0.2, 300.0, 120.0)  # chip -> image
    landmarks = apply(truth, MTCNN_TEMPLATE)[None]
    np.testing.assert_allclose(chip_transforms(landmarks)[0], truth, atol=1e-9)
    assert chip_transforms(np.empty((0, 5, 2))).shape == (0, 2, 3)


def test_pyramid_down_matches_dlib_loops() -> None:
    img = np.random.default_rng(1).integers(0, 256, (3, 13, 16)).astype(np.float64)
    taps = [1, 4, 6, 4, 1]
    rows, cols = (13 - 3) // 2, (16 - 3) // 2
    expected = np.zeros((3, rows, cols))
    for ch in range(3):
        for r in range(rows):
            for c in range(cols):
                total = sum(
                    taps[i] * taps[j] * img[ch, 2 * r + i, 2 * c + j] for i in range(5) for j in range(5)
                )
                expected[ch, r, c] = total // 256
    np.testing.assert_array_equal(pyramid_down(img.transpose(1, 2, 0)).transpose(2, 0, 1), expected)


def test_chips_match_dlibs_pixel_by_pixel_sampling() -> None:
    """extract_chips (on colour planes) against dlib's extract_image_chip written pixel by pixel: pyramid
    levels while the chip's footprint is more than twice its size, then interpolate_bilinear, truncated."""
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (61, 53, 3)).astype(np.uint8)
    for scale, angle, tx, ty in [(0.7, 0.3, 5.0, 3.0), (1.3, -0.2, 2.0, 8.0), (2.6, 0.1, -4.0, -2.0)]:
        m = similarity(scale, angle, tx, ty)
        size = 12
        got = extract_chips(image, m[None], size=size)[0]
        region, lin, off = image.astype(np.float64), m[:, :2], m[:, 2].copy()
        side = size * scale
        while side / 2 > size:
            side /= 2
            region = pyramid_down(region)
            lin, off = lin / 2, off / 2 - 1
        want = np.zeros((size, size, 3), np.uint8)
        h, w = region.shape[:2]
        for r in range(size):
            for c in range(size):
                x, y = lin @ (c, r) + off
                left, top = math.floor(x), math.floor(y)
                if left < 0 or top < 0 or left + 1 >= w or top + 1 >= h:
                    continue
                fx, fy = x - left, y - top
                tl, tr = region[top, left], region[top, left + 1]
                bl, br = region[top + 1, left], region[top + 1, left + 1]
                value = (1 - fy) * ((1 - fx) * tl + fx * tr) + fy * ((1 - fx) * bl + fx * br)
                want[r, c] = np.floor(np.clip(value, 0, 255))
        np.testing.assert_array_equal(got, want)


def test_identity_transform_copies_pixels() -> None:
    image = np.random.default_rng(2).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    shift = np.array([[[1.0, 0.0, 7.0], [0.0, 1.0, 5.0]]])  # chip (x, y) -> image (x + 7, y + 5)
    chip = extract_chips(image, shift, size=20)[0]
    np.testing.assert_array_equal(chip, image[5:25, 7:27])


def test_bilinear_halfway_and_black_outside() -> None:
    image = np.zeros((10, 10, 3), np.uint8)
    image[:, 5:] = 200
    half = np.array([[[1.0, 0.0, 4.5], [0.0, 1.0, 2.0]]])  # chip x=0 samples between columns 4 and 5
    chip = extract_chips(image, half, size=4)[0]
    assert (chip[:, 0] == 100).all() and (chip[:, 1] == 200).all()
    outside = np.array([[[1.0, 0.0, 8.0], [0.0, 1.0, 0.0]]])  # columns 8, 9, 10, 11: 9 has no right neighbour
    chip = extract_chips(image, outside, size=4)[0]
    assert (chip[:, 0] == 200).all() and (chip[:, 1:] == 0).all()


def test_large_faces_are_reduced_before_sampling() -> None:
    # A fine vertical stripe pattern seen 4x smaller: plain bilinear sampling would alias into stripes,
    # dlib's pyramid averages them to a flat grey.
    image = np.zeros((800, 800, 3), np.uint8)
    image[:, ::2] = 255
    shrink = np.array([[[4.0, 0.0, 100.0], [0.0, 4.0, 100.0]]])
    chip = extract_chips(image, shrink, size=150)[0].astype(np.float64)
    assert chip.std() < 2.0
    assert abs(chip.mean() - 127) < 3


def test_align_faces_shapes_and_validation() -> None:
    image = np.zeros((100, 120, 3), np.uint8)
    landmarks = chip_template(150, 0.25)[None] / 2  # a face at half chip scale
    chips = align_faces(image, np.repeat(landmarks, 3, axis=0))
    assert chips.shape == (3, 150, 150, 3) and chips.dtype == np.uint8
    assert align_faces(image, np.empty((0, 5, 2))).shape == (0, 150, 150, 3)
    with pytest.raises(ValueError):
        align_faces(image, np.zeros((1, 4, 2)))
    with pytest.raises(ValueError):
        extract_chips(image.astype(np.float32), np.zeros((1, 2, 3)))


def test_chips_cut_from_a_pillow_image_equal_those_from_its_pixels() -> None:
    """The faces pipeline aligns on the decoded Pillow image, making an array of only what each chip covers:
    the chips must be the same to the bit, near the borders (black outside) and through the pyramid too."""
    pixels = np.random.default_rng(3).integers(0, 256, (700, 500, 3), dtype=np.uint8)
    transforms = np.stack(
        [
            similarity(1.3, 0.2, 120.0, 80.0),  # inside, no pyramid
            similarity(4.2, -0.4, 60.0, 300.0),  # two pyramid levels
            similarity(2.0, 0.1, -90.0, 560.0),  # over the left and bottom borders
        ]
    )
    from_array = extract_chips(pixels, transforms)
    from_picture = extract_chips(Image.fromarray(pixels), transforms)
    assert np.array_equal(from_array, from_picture)
    assert (from_array[2] == 0).all(axis=-1).any()  # the border case does reach outside the image
    with pytest.raises(ValueError, match="RGB"):
        extract_chips(Image.fromarray(pixels).convert("L"), transforms)
