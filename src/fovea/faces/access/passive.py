"""The passive checks a door runs (``fovea.faces.access.core.passive``): a site's trained classifier
(``trained:<name>``) through Triton.

Per frame with a face, a face cut and a context cut (:func:`fovea.faces.access.core.passive.crops`), their
centre squares to ``classifier_<name>`` in one Triton call, the probabilities to a burst score
(``fovea.contracts.pad_classifier``). The version asked for is the classifier's *active* one, read from its
index in the trained repository (``FOVEA_FACES_TRAINED_REPOSITORY``, the folder the classify worker writes:
a rollback moves the door too); without that setting, the newest version Triton serves. The check fails
closed: a classifier that is not there (not trained yet, deleted) is UpstreamUnavailable, which the door
turns into DENY.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fovea.common.errors import UpstreamUnavailable
from fovea.common.triton import TritonClient
from fovea.contracts.classifier import CLASSIFIER_INPUT, CLASSIFIER_OUTPUT
from fovea.contracts.face_detector import DetectedFaces
from fovea.contracts.pad_classifier import THRESHOLD, burst_logit, burst_score, crop_logits
from fovea.contracts.trained_classifier import INDEX_FILE, model_name
from fovea.faces.access.core.passive import PassiveResult, burst_result, centre, crops, trained_name


def active_version(repository: Path | None, model: str) -> str:
    """The active version of ``model`` as Triton's version text ('' = Triton's newest: no repository, or no
    index there)."""
    if repository is None:
        return ""
    try:
        raw = json.loads((repository / model / INDEX_FILE).read_text())
    except (OSError, ValueError):
        return ""
    active = raw.get("active") if isinstance(raw, dict) else None
    return str(active) if isinstance(active, int) and active > 0 else ""


class TrainedPassiveCheck:
    """``trained:<name>``: the classifier a site trained with ``fovea faces pad-train``."""

    def __init__(self, name: str, triton: TritonClient, repository: Path | None, timeout_s: float) -> None:
        classifier = trained_name(name)
        if classifier is None:
            raise ValueError(f"{name!r} is not a trained:<name> check")
        self.name = name
        self.model = model_name(classifier)
        self.triton = triton
        self.repository = repository
        self.timeout_s = timeout_s
        self.threshold = THRESHOLD

    async def check(
        self, frames: Sequence[np.ndarray], faces: Sequence[DetectedFaces | None]
    ) -> PassiveResult:
        """The burst's result: ``frames`` (H,W,3 uint8) and the face used in each, in its pixels."""
        boxes = [None if f is None or len(f) == 0 else f.boxes[0] for f in faces]
        cuts, kinds, index = await asyncio.to_thread(crops, frames, boxes)
        if not len(cuts):
            return burst_result(self.name, float("nan"), self.threshold, 0, len(frames))
        version = await asyncio.to_thread(active_version, self.repository, self.model)
        batch = np.stack([centre(c) for c in cuts])
        try:
            outputs = await self.triton.infer(
                self.model,
                {CLASSIFIER_INPUT: batch},
                [CLASSIFIER_OUTPUT],
                timeout_s=self.timeout_s,
                model_version=version,
            )
        except UpstreamUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - a model that is not there: the door fails closed
            raise UpstreamUnavailable(
                f"passive check {self.name}: {self.model} did not answer ({type(exc).__name__}); train it "
                "with `fovea faces pad-train`"
            ) from exc
        probabilities = np.asarray(outputs[CLASSIFIER_OUTPUT], np.float64).reshape(len(batch), -1)
        logit = burst_logit(crop_logits(probabilities, kinds), index)
        faces_seen = len(set(index.tolist()))
        return burst_result(self.name, burst_score(logit), self.threshold, faces_seen, len(frames))


__all__ = ["TrainedPassiveCheck", "active_version"]
