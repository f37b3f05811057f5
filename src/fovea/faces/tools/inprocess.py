"""The faces request path in one process, for benchmarks and tests: exactly the work of a Verify without
gRPC or Triton.

decode -> downsize -> ``face_detector`` -> faces in original pixels -> align -> ``face_embedder`` ->
distance, with the faces service's own pre/post code (:mod:`fovea.faces.recognition.pipeline`, :mod:`fovea.faces.recognition.core`)
and the very modules Triton serves (:mod:`fovea.serving.face_detector`, :mod:`fovea.serving.face_embedder`),
loaded by :func:`fovea.serving.triton_adapter.load_served` from the model repository's ``config.pbtxt``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from fovea.common.images import limits_from
from fovea.contracts.face_detector import (
    DEFAULT_MIN_FACE_SIZE,
    DETECTOR_INPUT,
    DetectedFaces,
    unpack_detections,
)
from fovea.contracts.face_embedder import EMBEDDER_INPUT, EMBEDDER_OUTPUT
from fovea.contracts.tensors import model_parameters
from fovea.faces.config import DETECTOR_MODELS, FacesSettings
from fovea.faces.recognition.core.faces import confident_by_area, rescale
from fovea.faces.recognition.pipeline import (
    DETECTOR_TEMPLATES,
    Photo,
    align_all,
    decode_for_faces,
    detection_side,
    downsize,
)
from fovea.serving.base import read_config
from fovea.serving.triton_adapter import Served, load_from_repository


def run_model(model: Served, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    [result] = model.execute([inputs])
    if isinstance(result, Exception):
        raise result
    return result


class InProcessFaces:
    """The two face models and the faces service's pipeline code in this process.

    >>> faces = InProcessFaces(REPO_ROOT / "model_repository")
    >>> reference = faces.embedding(open("obama.jpg", "rb").read())
    >>> faces.verify(open("obama2.jpg", "rb").read(), reference)  # L2 distance, as Verify reports it
    """

    def __init__(self, repository: Path, settings: FacesSettings | None = None) -> None:
        self.settings = settings or FacesSettings()
        self.limits = limits_from(self.settings)
        detector_dir = Path(repository) / self.settings.detector_model
        # the served module of the detector's kind (named as its model), with the configured model's files
        module = f"fovea.serving.{DETECTOR_MODELS[self.settings.detector]}"
        self.detector = load_from_repository(module, detector_dir)
        self.template = DETECTOR_TEMPLATES[self.settings.detector]
        self.embedder = load_from_repository(
            "fovea.serving.face_embedder", Path(repository) / self.settings.embedder_model
        )
        params = model_parameters(read_config(detector_dir / "config.pbtxt"))
        self.detect_side = detection_side(self.settings.detect_max_side, params)
        self.min_face = float(params.get("MIN_FACE_SIZE") or DEFAULT_MIN_FACE_SIZE)

    def find_faces(self, data: bytes) -> Photo:
        """As ``FacePipeline.find_faces``: decode (large JPEGs reduced), downsize, detect, back to the full
        photo's pixels, filter."""
        image, reduction, (small, sx, sy) = decode_for_faces(
            data, self.limits, self.detect_side, self.min_face
        )
        return Photo(image, self._faces(small, sx, sy), reduction)

    def detect(self, image: np.ndarray) -> Photo:
        """A decoded (H,W,3) uint8 RGB image -> its faces, the rest of :meth:`find_faces`."""
        small, sx, sy = downsize(image, self.detect_side)
        return Photo(image, self._faces(small, sx, sy))

    def _faces(self, small: np.ndarray, sx: float, sy: float) -> DetectedFaces:
        faces = unpack_detections(run_model(self.detector, {DETECTOR_INPUT: small[None]}))[0]
        return confident_by_area(rescale(faces, sx, sy), self.settings.min_face_score)

    def embed(self, photo: Photo, index: int = 0) -> np.ndarray:
        """(128,) float32 embedding of face ``index`` (0 = the largest) of ``photo``."""
        chips = align_all([photo.source(photo.faces.take([index]))], self.template)
        return np.asarray(run_model(self.embedder, {EMBEDDER_INPUT: chips})[EMBEDDER_OUTPUT][0], np.float32)

    def embedding(self, data: bytes) -> np.ndarray:
        """The largest face's embedding (``ValueError`` when there is none), as Verify computes it."""
        photo = self.find_faces(data)
        if len(photo.faces) == 0:
            raise ValueError("no face found in the photo")
        return self.embed(photo)

    def verify(self, data: bytes, reference: np.ndarray) -> float:
        """The L2 distance between the photo's largest face and ``reference`` (one Verify's work)."""
        query = self.embedding(data).astype(np.float64)
        return float(np.linalg.norm(query - np.asarray(reference, np.float64)))


__all__ = ["InProcessFaces"]
