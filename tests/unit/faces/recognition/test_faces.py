"""Faces of a photo: back to original pixels, filtered, ordered, one chosen."""

from __future__ import annotations

import numpy as np
import pytest

from fovea.contracts.face_detector import DetectedFaces, detection_size
from fovea.faces.recognition.core.faces import (
    choose_face,
    confident_by_area,
    reduce,
    rescale,
    unreduce_matrix,
)


def faces(boxes: list[list[float]], scores: list[float]) -> DetectedFaces:
    b = np.array(boxes, np.float32).reshape(-1, 4)
    marks = np.repeat(b[:, None, :2], 5, axis=1)  # every landmark at the box corner: easy to follow
    return DetectedFaces(b, np.array(scores, np.float32), marks)


def test_detection_size() -> None:
    assert detection_size(2000, 1000, 1024) == (1024, 512)
    assert detection_size(910, 1137, 1024) == (820, 1024)  # 910 * 1024 / 1137 = 819.6
    assert detection_size(640, 480, 1024) == (640, 480)
    with pytest.raises(ValueError):
        detection_size(0, 10, 100)


def test_reduce_maps_full_pixels_into_a_reduced_decode_and_unreduce_matrix_back() -> None:
    full = faces([[40, 80, 120, 160]], [0.9])
    assert reduce(full, 1) is full
    half = reduce(full, 2)
    np.testing.assert_allclose(half.boxes, [[20, 40, 60, 80]])
    # the pixel centre 40 of the full photo lies between the reduced pixels 19 and 20: (40 + 0.5) / 2 - 0.5
    np.testing.assert_allclose(half.landmarks[0, 0], [19.75, 39.75])
    # an affine into the reduced pixels, made one into the full photo's: back where the landmark was
    m = unreduce_matrix(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), 2)
    np.testing.assert_allclose(m[:, :2] @ half.landmarks[0, 0] + m[:, 2], [40, 80])
    np.testing.assert_allclose(unreduce_matrix(m, 1), m)


def test_rescale_maps_back_to_original_pixels() -> None:
    small = faces([[10, 20, 30, 40]], [0.99])
    back = rescale(small, 0.5, 0.25)
    np.testing.assert_allclose(back.boxes, [[20, 80, 60, 160]])  # edges: x / sx
    # pixel centres: (x + 0.5) / s - 0.5 -> x: 10.5 / 0.5 - 0.5 = 20.5, y: 20.5 / 0.25 - 0.5 = 81.5
    np.testing.assert_allclose(back.landmarks[0, 0], [20.5, 81.5])
    assert rescale(small, 1.0, 1.0) is small
    np.testing.assert_array_equal(small.boxes, [[10, 20, 30, 40]])  # input untouched


def test_confident_by_area_filters_and_orders() -> None:
    f = faces([[0, 0, 10, 10], [0, 0, 50, 50], [0, 0, 30, 30], [0, 0, 90, 90]], [0.95, 0.99, 0.97, 0.5])
    kept = confident_by_area(f, 0.9)
    np.testing.assert_allclose(kept.scores, [0.99, 0.97, 0.95])  # areas 2500, 900, 100; 0.5 dropped
    assert len(confident_by_area(DetectedFaces.empty(), 0.9)) == 0
    with pytest.raises(ValueError):
        confident_by_area(f, 1.5)


def test_choose_face() -> None:
    assert choose_face(1, None) == 0 and choose_face(1, -1) == 0
    assert choose_face(3, 2) == 2
    with pytest.raises(ValueError, match="no face found in photo 2"):
        choose_face(0, None, "photo 2")
    with pytest.raises(ValueError, match="holds 3 faces; pick one with face_index"):
        choose_face(3, None)
    with pytest.raises(ValueError, match="out of range"):
        choose_face(2, 2)


def test_inconsistent_faces_are_refused() -> None:
    with pytest.raises(ValueError):
        DetectedFaces(np.zeros((2, 4), np.float32), np.zeros(1, np.float32), np.zeros((2, 5, 2), np.float32))
