"""Face quality measures: size (inter-ocular distance) and sharpness (variance of the Laplacian).

Both are cheap checks to decide whether a detected face is worth embedding or enrolling; the thresholds
are the caller's (service config), never constants here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# ITU-R BT.601 luma weights, the usual RGB -> grey conversion (PIL "L", OpenCV).
_GREY_WEIGHTS = (0.299, 0.587, 0.114)
_LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))


@dataclass(frozen=True)
class FaceQuality:
    inter_ocular: float  # pixels in the source image between the two eye landmarks
    blur: float  # variance of the Laplacian of the grey chip; lower is blurrier
    too_small: bool
    too_blurry: bool

    @property
    def ok(self) -> bool:
        return not (self.too_small or self.too_blurry)


def inter_ocular_distance(landmarks: np.ndarray) -> np.ndarray:
    """landmarks (F,5,2) MTCNN points (left eye, right eye, ...) in image pixels -> (F,) float64 distances."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (5, 2):
        raise ValueError(f"expected landmarks of shape (F,5,2), got {landmarks.shape}")
    return np.linalg.norm(landmarks[:, 1] - landmarks[:, 0], axis=1)


def blur_score(chips: np.ndarray) -> np.ndarray:
    """chips (F,H,W,3) uint8 RGB -> (F,) float64 variance of the 3x3 Laplacian of the grey chip.

    The Laplacian is taken over the interior (no padding), so H and W must be >= 3. The six dlib reference
    chips (150x150) score 80-1240; after a Gaussian blur of radius 2 they score 5-10.
    """
    chips = np.asarray(chips)
    if chips.ndim != 4 or chips.shape[3] != 3 or chips.shape[1] < 3 or chips.shape[2] < 3:
        raise ValueError(f"expected chips of shape (F,H,W,3) with H, W >= 3, got {chips.shape}")
    if len(chips) == 0:
        return np.empty(0, dtype=np.float64)
    rgb = torch.from_numpy(np.ascontiguousarray(chips, dtype=np.float64))
    grey = (rgb * torch.tensor(_GREY_WEIGHTS, dtype=torch.float64)).sum(dim=3)  # (F,H,W)
    kernel = torch.tensor(_LAPLACIAN, dtype=torch.float64)[None, None]
    lap = F.conv2d(grey[:, None], kernel)[:, 0]
    return lap.reshape(len(chips), -1).var(dim=1, unbiased=False).numpy()


def assess_quality(
    landmarks: np.ndarray, chips: np.ndarray, *, min_inter_ocular: float, min_blur: float
) -> list[FaceQuality]:
    """Per face: size and sharpness against the given thresholds.

    landmarks: (F,5,2) in image pixels; chips: (F,H,W,3) uint8 aligned chips of the same faces.
    min_inter_ocular: pixels; min_blur: variance of the Laplacian (see :func:`blur_score`).
    """
    if min_inter_ocular < 0 or min_blur < 0:
        raise ValueError("thresholds must be >= 0")
    iod = inter_ocular_distance(landmarks)
    blur = blur_score(chips)
    if len(iod) != len(blur):
        raise ValueError(f"{len(iod)} landmark sets but {len(blur)} chips")
    return [
        FaceQuality(
            inter_ocular=float(d), blur=float(b), too_small=d < min_inter_ocular, too_blurry=b < min_blur
        )
        for d, b in zip(iod, blur, strict=True)
    ]


__all__ = ["FaceQuality", "assess_quality", "blur_score", "inter_ocular_distance"]
