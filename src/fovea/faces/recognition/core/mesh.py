"""Dense face landmarks (MediaPipe face mesh, 468 points) around the 5-point detector: the crop the mesh
network reads, its points back in image pixels, and the eye aspect ratio (EAR) of its eye contours.

The crop follows the Human library's facemesh pipeline (``vladmandic/human`` ``src/face/facemesh.ts``): a
square around the detector's box, enlarged (``scale`` times the box's longer side, 1.5 by default), turned
so that the eye line is horizontal (the rotation Human takes from the detector's eye points), resized to
192x192; the network reads RGB values in 0..1 and returns 468 points ``(x, y, z)`` in the crop's pixels
(x right, y down; z towards the camera is negative, on the x scale, relative to the face's centre).

Coordinates are continuous pixels: pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``, so a crop pixel centre
is ``(u + 0.5, v + 0.5)``. A crop is described by the affine matrix ``A`` (2,3) that maps crop coordinates
to image coordinates, ``[x, y] = A @ [u, v, 1]`` (what ``PIL.Image.transform(..., AFFINE)`` takes).

All functions are pure; float64 inside.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

MESH_SIZE = 192
"""Side of the crop the face mesh network reads, pixels."""
MESH_POINTS = 468
DEFAULT_CROP_SCALE = 1.5
"""Side of the square crop over the detector box's longer side (Human enlarges its detector's box 1.5-1.6x;
an MTCNN box runs from the brows to the chin, so 1.5 leaves the forehead and the ears' roots in the crop)."""

# Eye contours for the eye aspect ratio, six points each in the order p1..p6 of Soukupova and Cech (2016):
# p1 and p4 the corners, p2/p3 on the upper lid, p6/p5 below them on the lower lid. Indices of MediaPipe's
# canonical face mesh (the same topology as the network's 468 outputs). "Image-left" is the eye seen on the
# image's left, the person's right eye.
EYE_IMAGE_LEFT = (33, 160, 158, 133, 153, 144)
EYE_IMAGE_RIGHT = (362, 385, 387, 263, 373, 380)
# Points the dense PAD check reads: the face outline (silhouette), the nose bridge and tip, the chin, the eye
# corners and mouth corners (MediaPipe face mesh indices).
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
    149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
NOSE_LINE = (168, 6, 197, 195, 5, 4, 1, 19, 94)  # bridge between the eyes down to the tip and below it


def crop_matrix(
    box: np.ndarray, landmarks: np.ndarray, *, scale: float = DEFAULT_CROP_SCALE, size: int = MESH_SIZE
) -> np.ndarray:
    """The (2,3) crop-to-image matrix for one face: ``box`` (4,) xyxy and ``landmarks`` (5,2) MTCNN points
    (left eye, right eye, nose, mouth left, mouth right) in image pixels. The crop is a square of side
    ``scale * max(box width, height)`` centred on the box, turned by the eye line's angle, ``size`` pixels
    across. ``ValueError`` for a degenerate box or non-finite values."""
    b = np.asarray(box, np.float64).reshape(-1)
    lm = np.asarray(landmarks, np.float64)
    if b.shape != (4,) or lm.shape != (5, 2) or not (np.all(np.isfinite(b)) and np.all(np.isfinite(lm))):
        raise ValueError(f"expected a finite (4,) box and (5, 2) landmarks, got {b.shape} and {lm.shape}")
    if scale <= 0 or size < 1:
        raise ValueError(f"scale must be > 0 and size >= 1, got {scale} and {size}")
    side = scale * max(b[2] - b[0], b[3] - b[1])
    if not side > 0:
        raise ValueError(f"degenerate box {b.tolist()}")
    centre = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
    eye = lm[1] - lm[0]
    angle = float(np.arctan2(eye[1], eye[0]))
    k = side / size
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) * k
    offset = centre - rot @ np.array([size / 2, size / 2])
    return np.c_[rot, offset]


def crop_face(image: np.ndarray, matrix: np.ndarray, size: int = MESH_SIZE) -> np.ndarray:
    """(H,W,3) uint8 RGB image and a (2,3) crop matrix -> (size,size,3) uint8 crop, bilinear; outside the
    image is black."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    m = np.asarray(matrix, np.float64).reshape(-1)
    out = Image.fromarray(image).transform(
        (size, size), Image.Transform.AFFINE, tuple(m.tolist()), resample=Image.Resampling.BILINEAR
    )
    return np.asarray(out)


def mesh_to_image(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(..., P, 3) mesh points in crop pixels -> the same in image pixels: x, y through the crop matrix, z
    scaled by the crop's scale (image pixels per crop pixel) so that it keeps the x, y unit."""
    p = np.asarray(points, np.float64)
    m = np.asarray(matrix, np.float64)
    if p.shape[-1] != 3 or m.shape != (2, 3):
        raise ValueError(f"expected (..., P, 3) points and a (2, 3) matrix, got {p.shape} and {m.shape}")
    xy = p[..., :2] @ m[:, :2].T + m[:, 2]
    k = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    return np.concatenate([xy, p[..., 2:] * k], axis=-1)


def eye_aspect_ratio(mesh: np.ndarray) -> np.ndarray:
    """(..., 468, 2 or 3) mesh points -> (...,) the mean of both eyes' aspect ratios,
    ``(|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|)`` on x, y (about 0.25-0.35 for an open eye, below 0.1 for a
    closed one). nan where an eye's corners coincide."""
    p = np.asarray(mesh, np.float64)[..., :2]
    if p.ndim < 2 or p.shape[-2] != MESH_POINTS:
        raise ValueError(f"expected (..., {MESH_POINTS}, 2|3) points, got {np.shape(mesh)}")
    ratios = []
    for eye in (EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT):
        q = p[..., eye, :]
        vertical = np.linalg.norm(q[..., 1, :] - q[..., 5, :], axis=-1) + np.linalg.norm(
            q[..., 2, :] - q[..., 4, :], axis=-1
        )
        width = np.linalg.norm(q[..., 0, :] - q[..., 3, :], axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios.append(np.where(width > 0, vertical / (2 * width), np.nan))
    return np.asarray((ratios[0] + ratios[1]) / 2)


__all__ = [
    "DEFAULT_CROP_SCALE",
    "EYE_IMAGE_LEFT",
    "EYE_IMAGE_RIGHT",
    "FACE_OVAL",
    "MESH_POINTS",
    "MESH_SIZE",
    "NOSE_LINE",
    "crop_face",
    "crop_matrix",
    "eye_aspect_ratio",
    "mesh_to_image",
]


DENSE_EYES = ((33, 133), (362, 263))  # corners whose midpoints stand for the eye centres (image-left, -right)
DENSE_INDICES = (4, 61, 291, *FACE_OVAL, 168, 6, 197, 195, 5, 1, 19, 94, 33, 133, 362, 263)
"""Mesh points of the dense PAD layout after the two eye centres: nose tip, mouth corners (image-left,
-right), the face outline, the nose line (without the tip), the eye corners."""
DENSE_POINTS = 2 + len(DENSE_INDICES)


def dense_points(mesh: np.ndarray) -> np.ndarray:
    """(..., 468, 2|3) mesh -> (..., 53, same) the dense PAD layout: rows 0-4 in MTCNN's order (image-left
    eye centre, image-right eye centre, nose tip, mouth image-left, mouth image-right), then the face
    outline, nose line and eye corners (:data:`DENSE_INDICES`). The eye distance is rows 0 to 1."""
    p = np.asarray(mesh, np.float64)
    if p.ndim < 2 or p.shape[-2] != MESH_POINTS:
        raise ValueError(f"expected (..., {MESH_POINTS}, 2|3) points, got {p.shape}")
    eyes = [p[..., list(pair), :].mean(-2, keepdims=True) for pair in DENSE_EYES]
    return np.concatenate([*eyes, p[..., list(DENSE_INDICES), :]], axis=-2)
