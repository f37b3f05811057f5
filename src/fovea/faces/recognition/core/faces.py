"""Faces found in a photo: scaling back from the detector's input, filtering, ordering, choosing one.

Coordinates are absolute pixels, boxes ``x1, y1, x2, y2``, landmarks ``(x, y)`` in pixel-centre units, all
float32. Functions return new objects; inputs are never modified.
"""

from __future__ import annotations

import numpy as np

from fovea.contracts.face_detector import DetectedFaces, detection_size


def rescale(faces: DetectedFaces, sx: float, sy: float) -> DetectedFaces:
    """Faces found in an image resized by (sx, sy) -> the same faces in the original image's pixels.

    A pixel centre at x in the original lies at (x + 0.5) * sx - 0.5 in the resized image (PIL's resampling
    convention), so landmarks map back with (x' + 0.5) / sx - 0.5; box edges map back with x' / sx.
    """
    if sx <= 0 or sy <= 0:
        raise ValueError(f"scales must be > 0, got {sx}, {sy}")
    if sx == 1.0 and sy == 1.0:
        return faces
    s = np.array([sx, sy], dtype=np.float64)
    return DetectedFaces(
        boxes=(faces.boxes / np.tile(s, 2)).astype(np.float32),
        scores=faces.scores.copy(),
        landmarks=((faces.landmarks + 0.5) / s - 0.5).astype(np.float32),
    )


def reduce(faces: DetectedFaces, reduction: int) -> DetectedFaces:
    """Faces in a photo's pixels -> the same faces in that photo decoded at 1/``reduction`` of its size (a
    JPEG's DCT-scaled decode: the pixel centre at x lies at (x + 0.5) / reduction - 0.5, as :func:`rescale`
    maps from an image resized by ``reduction``)."""
    return faces if reduction == 1 else rescale(faces, reduction, reduction)


def unreduce_matrix(matrix: np.ndarray, reduction: int) -> np.ndarray:
    """A (2,3) affine into the pixels of a photo decoded at 1/``reduction`` -> the same into the full photo's
    pixels (x = (x' + 0.5) * reduction - 0.5)."""
    m = np.asarray(matrix, np.float64) * reduction
    m[:, 2] += (reduction - 1) / 2
    return m


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """(F,4) xyxy -> (F,) float64 areas (0 for degenerate boxes)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def confident_by_area(faces: DetectedFaces, min_score: float) -> DetectedFaces:
    """Faces with score >= ``min_score``, largest box first (ties: higher score first)."""
    if not 0.0 <= min_score <= 1.0:
        raise ValueError(f"min_score must be within [0, 1], got {min_score}")
    keep = np.flatnonzero(faces.scores >= min_score)
    order = np.lexsort((-faces.scores[keep], -box_areas(faces.boxes[keep])))
    return faces.take(keep[order])


def choose_face(count: int, face_index: int | None, what: str = "the photo") -> int:
    """Which of ``count`` faces (largest first) to use: raises ``ValueError`` with a message for the caller.

    ``face_index`` None or -1: exactly one face is required. Otherwise the face at that index.
    """
    if count == 0:
        raise ValueError(f"no face found in {what}")
    if face_index is None or face_index == -1:
        if count > 1:
            raise ValueError(
                f"{what} holds {count} faces; pick one with face_index (0 = largest, {count - 1} = smallest)"
            )
        return 0
    if not 0 <= face_index < count:
        raise ValueError(f"face_index {face_index} is out of range: {what} holds {count} face(s)")
    return face_index


__all__ = [
    "DetectedFaces",
    "box_areas",
    "choose_face",
    "confident_by_area",
    "detection_size",
    "reduce",
    "rescale",
    "unreduce_matrix",
]
