"""Crop geometry, mesh back to the image, eye aspect ratio and the dense layout (fovea.faces.recognition.core.mesh)."""

from __future__ import annotations

import numpy as np
import pytest

from fovea.faces.recognition.core.mesh import (
    DENSE_POINTS,
    EYE_IMAGE_LEFT,
    EYE_IMAGE_RIGHT,
    MESH_POINTS,
    crop_face,
    crop_matrix,
    dense_points,
    eye_aspect_ratio,
    mesh_to_image,
)

LANDMARKS = np.array([[40.0, 50.0], [60.0, 50.0], [50.0, 60.0], [42.0, 70.0], [58.0, 70.0]])


def test_crop_matrix_is_a_square_1_5x_the_box_turned_by_the_eye_line() -> None:
    box = np.array([30.0, 30.0, 70.0, 90.0])  # 40 x 60: side 1.5 * 60 = 90, centre (50, 60)
    m = crop_matrix(box, LANDMARKS, size=180)
    np.testing.assert_allclose(m @ [90, 90, 1], [50, 60])  # the crop centre is the box centre
    np.testing.assert_allclose(m[:, :2], np.eye(2) * 0.5)  # 90 px over 180, level eyes: no turn
    tilted = LANDMARKS.copy()
    tilted[1] = [60.0, 70.0]  # eye line at 45 degrees
    m = crop_matrix(box, tilted, size=180)
    np.testing.assert_allclose(m[:, :2] / 0.5, [[np.sqrt(0.5), -np.sqrt(0.5)], [np.sqrt(0.5), np.sqrt(0.5)]])
    with pytest.raises(ValueError):
        crop_matrix(np.array([1.0, 1.0, 1.0, 1.0]), LANDMARKS)


def test_crop_reads_the_image_where_the_matrix_says() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    image[60:62, 50:52] = 255  # a white 2x2 square at (50..52, 60..62)
    m = crop_matrix(np.array([30.0, 30.0, 70.0, 90.0]), LANDMARKS, size=180)
    crop = crop_face(image, m, size=180)
    ys, xs = np.nonzero(crop[..., 0] > 127)
    assert crop.shape == (180, 180, 3) and len(xs)
    np.testing.assert_allclose([xs.mean() + 0.5, ys.mean() + 0.5], [92, 92], atol=1)  # (51, 61) in the crop


def test_mesh_to_image_maps_xy_and_scales_z() -> None:
    m = np.array([[0.5, 0.0, 10.0], [0.0, 0.5, 20.0]])
    out = mesh_to_image(np.array([[[2.0, 4.0, -6.0]]]), m)
    np.testing.assert_allclose(out, [[[11.0, 22.0, -3.0]]])


def _mesh_with_eyes(opening: float) -> np.ndarray:
    """A mesh whose two eyes are 30 wide with lids ``opening`` apart (EAR = opening / 30)."""
    mesh = np.zeros((MESH_POINTS, 3))
    for eye, x0 in ((EYE_IMAGE_LEFT, 0.0), (EYE_IMAGE_RIGHT, 60.0)):
        p1, p2, p3, p4, p5, p6 = eye
        mesh[p1, :2], mesh[p4, :2] = (x0, 0), (x0 + 30, 0)
        mesh[p2, :2], mesh[p6, :2] = (x0 + 10, -opening / 2), (x0 + 10, opening / 2)
        mesh[p3, :2], mesh[p5, :2] = (x0 + 20, -opening / 2), (x0 + 20, opening / 2)
    return mesh


def test_eye_aspect_ratio() -> None:
    # EAR = (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|) = (9 + 9) / 60 = 0.3 per eye
    np.testing.assert_allclose(eye_aspect_ratio(_mesh_with_eyes(9.0)), 0.3)
    np.testing.assert_allclose(
        eye_aspect_ratio(np.stack([_mesh_with_eyes(9.0), _mesh_with_eyes(1.5)])), [0.3, 0.05]
    )
    with pytest.raises(ValueError):
        eye_aspect_ratio(np.zeros((5, 2)))


def test_dense_points_layout() -> None:
    mesh = np.arange(MESH_POINTS * 2, dtype=np.float64).reshape(MESH_POINTS, 2)
    d = dense_points(mesh)
    assert d.shape == (DENSE_POINTS, 2)
    np.testing.assert_allclose(d[0], (mesh[33] + mesh[133]) / 2)
    np.testing.assert_allclose(d[2], mesh[4])
