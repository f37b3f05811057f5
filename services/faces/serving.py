"""The tensor contracts of the two Triton face models, and the functions their ``model.py`` files run.

``face_detector`` (MTCNN): ``IMAGE`` uint8 [N, H, W, 3] RGB -> per image ``FACE_COUNT`` int32 [1] and, padded
to the largest count in the batch (at least one row), ``BOXES`` float32 [F, 4] (x1, y1, x2, y2 in the pixels
of the image sent), ``SCORES`` float32 [F] (highest first) and ``LANDMARKS`` float32 [F, 5, 2] ((x, y): left
eye, right eye, nose, mouth left, mouth right). Rows past ``FACE_COUNT`` are zeros.

``face_embedder`` (dlib ResNet): ``CHIP`` uint8 [N, 150, 150, 3] RGB aligned chips -> ``EMBEDDING`` float32
[N, 128]. Its config parameters ``EMBEDDING_VERSION`` (stored with every template) and ``DISTANCE_THRESHOLD``
(the default gallery threshold) describe it to the faces service.

Everything here imports without Triton; ``model.py`` only moves ``pb_utils`` tensors in and out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fovea.faces.core.faces import DetectedFaces
from fovea.serving.base import RequestError

if TYPE_CHECKING:
    from fovea.models.dlib_resnet import DlibResNet
    from fovea.models.mtcnn import MTCNN, MtcnnConfig

DETECTOR_INPUT = "IMAGE"
DETECTOR_OUTPUTS = ("FACE_COUNT", "BOXES", "SCORES", "LANDMARKS")
EMBEDDER_INPUT = "CHIP"
EMBEDDER_OUTPUT = "EMBEDDING"
CHIP_SHAPE = (150, 150, 3)
MIN_IMAGE_SIDE = 12  # MTCNN's smallest input


def pack_detections(per_image: Sequence[DetectedFaces]) -> dict[str, np.ndarray]:
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


def check_images(batch: np.ndarray) -> None:
    """Raise ``RequestError`` unless ``batch`` is an [N, H, W, 3] uint8 batch MTCNN can run on."""
    if batch.ndim != 4 or batch.shape[3] != 3 or batch.dtype != np.uint8:
        raise RequestError(f"IMAGE must be uint8 [N, H, W, 3], got {batch.dtype} {list(batch.shape)}")
    if batch.shape[1] < MIN_IMAGE_SIDE or batch.shape[2] < MIN_IMAGE_SIDE:
        raise RequestError(
            f"IMAGE must be at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}, got {list(batch.shape)}"
        )


def mtcnn_config(params: Mapping[str, str]) -> MtcnnConfig:
    """``MIN_FACE_SIZE`` ("20") and ``THRESHOLDS`` ("0.6,0.7,0.7") config parameters -> ``MtcnnConfig``."""
    from fovea.models.mtcnn import MtcnnConfig

    try:
        min_face = float(params.get("MIN_FACE_SIZE", "20"))
        thresholds = tuple(float(t) for t in params.get("THRESHOLDS", "0.6,0.7,0.7").split(","))
    except ValueError as exc:
        raise ValueError(f"MIN_FACE_SIZE / THRESHOLDS are not numbers: {exc}") from exc
    if len(thresholds) != 3:
        raise ValueError(f"THRESHOLDS needs three comma-separated values, got {len(thresholds)}")
    return MtcnnConfig(min_face_size=min_face, thresholds=(thresholds[0], thresholds[1], thresholds[2]))


def detect_requests(
    model: MTCNN, requests: Sequence[np.ndarray], config: MtcnnConfig
) -> list[dict[str, np.ndarray] | RequestError]:
    """Run MTCNN once over every valid request of a Triton batch; one entry per request, in order.

    Each request is an [N, H, W, 3] uint8 batch; images of the same size (from any request) run as one
    batch. A malformed request gets its ``RequestError``, the others still run.
    """
    from fovea.models.mtcnn import detect_faces_batch

    results: list[dict[str, np.ndarray] | RequestError] = []
    images: list[np.ndarray] = []
    owners: list[int] = []
    for i, batch in enumerate(requests):
        try:
            check_images(batch)
        except RequestError as exc:
            results.append(exc)
            continue
        results.append({})
        images.extend(batch)
        owners.extend([i] * len(batch))
    per_request: dict[int, list[DetectedFaces]] = {}
    for owner, faces in zip(owners, detect_faces_batch(model, images, config), strict=True):
        found = DetectedFaces.empty()
        if faces:
            found = DetectedFaces(
                boxes=np.stack([f.box for f in faces]).astype(np.float32),
                scores=np.array([f.score for f in faces], np.float32),
                landmarks=np.stack([f.landmarks for f in faces]).astype(np.float32),
            )
        per_request.setdefault(owner, []).append(found)
    for i, faces_list in per_request.items():
        results[i] = pack_detections(faces_list)
    return results


def embedder_expected(model: DlibResNet) -> dict[str, tuple[int, ...]]:
    """The per-item input shape ``run_batched`` checks: ``{"CHIP": (150, 150, 3)}`` for dlib's network."""
    height, width = model.input_size
    return {EMBEDDER_INPUT: (int(height), int(width), 3)}


def embed_batch(model: DlibResNet, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{"CHIP": [N, 150, 150, 3] uint8}`` -> ``{"EMBEDDING": [N, 128] float32}`` on the model's device."""
    from fovea.models.dlib_resnet import embed_chips

    return {EMBEDDER_OUTPUT: embed_chips(model, batch[EMBEDDER_INPUT], batch_size=64).astype(np.float32)}


@dataclass(frozen=True)
class EmbedderInfo:
    """What the faces service needs to know of the embedding model (its config parameters)."""

    version: str  # stored with every template; templates of other versions are never compared
    default_threshold: float  # same person when the L2 distance is below this

    @classmethod
    def from_parameters(cls, params: Mapping[str, str]) -> EmbedderInfo:
        version = params.get("EMBEDDING_VERSION", "")
        if not version:
            raise ValueError("the embedding model's config has no EMBEDDING_VERSION parameter")
        try:
            threshold = float(params.get("DISTANCE_THRESHOLD", ""))
        except ValueError as exc:
            raise ValueError("the embedding model's DISTANCE_THRESHOLD parameter is not a number") from exc
        if not threshold > 0:
            raise ValueError(f"DISTANCE_THRESHOLD must be > 0, got {threshold}")
        return cls(version, threshold)


__all__ = [
    "CHIP_SHAPE",
    "DETECTOR_INPUT",
    "DETECTOR_OUTPUTS",
    "EMBEDDER_INPUT",
    "EMBEDDER_OUTPUT",
    "DetectedFaces",
    "EmbedderInfo",
    "check_images",
    "detect_requests",
    "embed_batch",
    "embedder_expected",
    "mtcnn_config",
    "pack_detections",
    "unpack_detections",
]
