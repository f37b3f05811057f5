"""``face_detector``: MTCNN's input and outputs, its defaults (written once), and how a batch's faces are packed into and out of its output tensors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fovea.contracts.tensors import WITH_TORCH_PORT, Arrays, Contract, TensorSpec

MIN_IMAGE_SIDE = 12  # P-Net's input

DEFAULT_MIN_FACE_SIZE = 20.0  # MIN_FACE_SIZE when the config sets none
# MTCNN's other defaults (facenet-pytorch's), written once: the served model's DetectorSettings and the torch
# port's MtcnnConfig both start from these.
DEFAULT_THRESHOLDS: tuple[float, float, float] = (0.6, 0.7, 0.7)  # P-Net, R-Net, O-Net face probability
DEFAULT_SCALE_FACTOR = 0.709  # ratio between pyramid levels
DEFAULT_NMS_PNET_SCALE = 0.5  # IoU within one pyramid level
DEFAULT_NMS_PNET = 0.7  # IoU across levels
DEFAULT_NMS_RNET = 0.7  # IoU
DEFAULT_NMS_ONET = 0.7  # intersection over the smaller area

CONTRACT = Contract(
    name="face_detector",
    inputs=(TensorSpec("IMAGE", "uint8", (-1, -1, 3)),),
    outputs=(
        TensorSpec("FACE_COUNT", "int32", (1,)),
        TensorSpec("BOXES", "float32", (-1, 4)),
        TensorSpec("SCORES", "float32", (-1,)),
        TensorSpec("LANDMARKS", "float32", (-1, 5, 2)),
    ),
    parameters={
        "WEIGHTS": "the ONNX file holding P-Net, R-Net and O-Net (fovea models build)",
        "DEVICE": WITH_TORCH_PORT,
        "THREADS": "onnxruntime intra-op threads per instance (0 = FOVEA_TORCH_THREADS, else every core)",
        "MIN_FACE_SIZE": "smallest face searched for, in pixels of the working copy (>= 12)",
        "THRESHOLDS": "P-Net, R-Net, O-Net face probability thresholds, comma-separated",
        "DETECT_SIDE": "longer side of the working copy the nets run on (0 = the image as sent)",
        "MAX_SCALES": "most pyramid levels, the coarsest kept (0 = as many as MIN_FACE_SIZE needs)",
    },
)

DETECTOR_INPUT = CONTRACT.inputs[0].name

DETECTOR_OUTPUTS = CONTRACT.output_names

# The ONNX file (``fovea.convert.mtcnn.export_mtcnn_onnx``) holds the three networks side by side, each with
# its own input and outputs: float32 RGB pixels 0..255 NCHW (normalised inside the graph), dynamic batch,
# and dynamic H, W for P-Net.
ONNX_TENSORS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pnet": ("PNET_IMAGE", ("PNET_REG", "PNET_PROB")),
    "rnet": ("RNET_CROPS", ("RNET_REG", "RNET_PROB")),
    "onet": ("ONET_CROPS", ("ONET_REG", "ONET_MARKS", "ONET_PROB")),
}


# ------------------------------------------------------------------------------------------ packing
def pack_detections(per_image: Sequence[DetectedFaces]) -> Arrays:
    """Faces of N images -> the detector's padded output tensors (batch dimension N)."""
    n = len(per_image)
    rows = max([1, *(len(f) for f in per_image)])
    out = {
        "FACE_COUNT": np.array([[len(f)] for f in per_image], dtype=np.int32).reshape(n, 1),
        "BOXES": np.zeros((n, rows, 4), np.float32),
        "SCORES": np.zeros((n, rows), np.float32),
        "LANDMARKS": np.zeros((n, rows, 5, 2), np.float32),
    }
    for i, faces in enumerate(per_image):
        k = len(faces)
        out["BOXES"][i, :k] = faces.boxes
        out["SCORES"][i, :k] = faces.scores
        out["LANDMARKS"][i, :k] = faces.landmarks
    return out


def unpack_detections(outputs: Mapping[str, np.ndarray]) -> list[DetectedFaces]:
    """The detector's output tensors -> faces per image (inverse of :func:`pack_detections`)."""
    counts = np.asarray(outputs["FACE_COUNT"]).reshape(-1)
    result = []
    for i, count in enumerate(counts.tolist()):
        if count < 0 or count > outputs["BOXES"].shape[1]:
            raise ValueError(
                f"face_detector returned FACE_COUNT {count} for {outputs['BOXES'].shape[1]} rows"
            )
        result.append(
            DetectedFaces(
                boxes=np.asarray(outputs["BOXES"][i, :count], np.float32),
                scores=np.asarray(outputs["SCORES"][i, :count], np.float32),
                landmarks=np.asarray(outputs["LANDMARKS"][i, :count], np.float32),
            )
        )
    return result


# ------------------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class DetectorSettings:
    """Detection settings; the defaults are facenet-pytorch's on the image as sent."""

    min_face_size: float = DEFAULT_MIN_FACE_SIZE  # pixels of the working copy; first pyramid scale 12 / size
    thresholds: tuple[float, float, float] = DEFAULT_THRESHOLDS  # P-Net, R-Net, O-Net
    detect_side: int = 0  # working copy's longer side (0 = the image as sent)
    max_scales: int = 0  # 0 = no cap
    scale_factor: float = DEFAULT_SCALE_FACTOR
    nms_pnet_scale: float = DEFAULT_NMS_PNET_SCALE
    nms_pnet: float = DEFAULT_NMS_PNET
    nms_rnet: float = DEFAULT_NMS_RNET
    nms_onet: float = DEFAULT_NMS_ONET

    def __post_init__(self) -> None:
        if self.min_face_size < 12:
            raise ValueError(f"MIN_FACE_SIZE must be >= 12 pixels, got {self.min_face_size}")
        if len(self.thresholds) != 3 or not all(0 <= t <= 1 for t in self.thresholds):
            raise ValueError(f"THRESHOLDS must be three probabilities, got {self.thresholds}")
        if self.detect_side != 0 and self.detect_side < MIN_IMAGE_SIDE:
            raise ValueError(f"DETECT_SIDE must be 0 or >= {MIN_IMAGE_SIDE}, got {self.detect_side}")
        if self.max_scales < 0:
            raise ValueError(f"MAX_SCALES must be >= 0, got {self.max_scales}")

    @classmethod
    def from_parameters(cls, params: Mapping[str, str]) -> DetectorSettings:
        """The config's string parameters; ``ValueError`` naming the bad one."""
        try:
            thresholds = tuple(
                float(t)
                for t in (params.get("THRESHOLDS") or ",".join(map(str, DEFAULT_THRESHOLDS))).split(",")
            )
            min_face = float(params.get("MIN_FACE_SIZE", DEFAULT_MIN_FACE_SIZE))
            side = int(params.get("DETECT_SIDE", "0") or 0)
            scales = int(params.get("MAX_SCALES", "0") or 0)
        except ValueError as exc:
            raise ValueError(
                f"MIN_FACE_SIZE / THRESHOLDS / DETECT_SIDE / MAX_SCALES are not numbers: {exc}"
            ) from exc
        if len(thresholds) != 3:
            raise ValueError(f"THRESHOLDS needs three comma-separated values, got {len(thresholds)}")
        return cls(min_face, (thresholds[0], thresholds[1], thresholds[2]), side, scales)


@dataclass(frozen=True)
class DetectedFaces:
    """F faces of one image: boxes (F,4), scores (F,) and landmarks (F,5,2) float32 (left eye, right eye,
    nose, mouth left, mouth right)."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    def __post_init__(self) -> None:
        f = len(self.scores)
        if self.boxes.shape != (f, 4) or self.landmarks.shape != (f, 5, 2) or self.scores.shape != (f,):
            raise ValueError(
                f"inconsistent faces: boxes {self.boxes.shape}, scores {self.scores.shape}, "
                f"landmarks {self.landmarks.shape}"
            )

    @classmethod
    def empty(cls) -> DetectedFaces:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, index: np.ndarray | list[int]) -> DetectedFaces:
        """The faces at ``index`` (an int array or list), in that order."""
        idx = np.asarray(index, dtype=np.int64).reshape(-1)
        return DetectedFaces(self.boxes[idx], self.scores[idx], self.landmarks[idx])


def detection_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The (width, height) a width x height image is resized to so its longer side is at most ``max_side``
    (aspect ratio kept, rounded; unchanged when already small enough)."""
    if width <= 0 or height <= 0 or max_side <= 0:
        raise ValueError(f"sizes must be > 0, got {width}x{height}, max_side {max_side}")
    scale = max_side / max(width, height)
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))
