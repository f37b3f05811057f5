"""Trained classifiers (``classifier_<name>``): the frozen ImageNet backbone + a softmax layer trained by
the classify service's training jobs, one ONNX graph per version, in onnxruntime.

Each version folder ``<model>/<v>/`` holds ``model.onnx`` (:func:`fovea.classify.core.export.append_head`),
``labels.txt`` (one class a line, index = class id: versions may differ in their classes) and the two-line
``model.py``. ``IMAGE`` is the same centre crop as ``classifier_imagenet``'s; ``PROBABILITIES`` float32
``[N, C]``, C = the version's class count (hence dims ``[-1]``). The run path is
:class:`fovea.serving.classifier.Classifier`'s (one session, a gathered batch in one call), for a graph with the one output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fovea.contracts.classifier import CLASSIFIER_INPUT, CLASSIFIER_OUTPUT
from fovea.contracts.tensors import Arrays
from fovea.contracts.trained_classifier import CONTRACT, MODEL_PY, config_text
from fovea.serving.base import RequestError, session_for
from fovea.serving.classifier import execute_crops


class TrainedClassifier:
    """One onnxruntime session over a version's graph; :meth:`execute` runs a gathered batch in one call."""

    def __init__(self, session: Any) -> None:
        inputs = [(i.name, i.type) for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]
        if inputs != [(CLASSIFIER_INPUT, "tensor(uint8)")] or outputs != [CLASSIFIER_OUTPUT]:
            raise ValueError(
                f"the ONNX file has inputs {inputs} and outputs {outputs}; expected {CLASSIFIER_INPUT} uint8 and "
                f"{CLASSIFIER_OUTPUT} (a graph written by a training job): train the classifier again"
            )
        self.session = session

    def classify(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``(N, 224, 224, 3)`` crops -> probabilities ``(N, classes)`` float32."""
        out = self.session.run([CLASSIFIER_OUTPUT], {CLASSIFIER_INPUT: np.ascontiguousarray(images)})[0]
        return np.asarray(out, np.float32)

    def execute(self, requests: Sequence[Mapping[str, np.ndarray]]) -> list[Arrays | RequestError]:
        """One entry per request: ``{PROBABILITIES}`` for its images, or its ``RequestError``."""
        return execute_crops(
            requests, CONTRACT.input_dims, lambda images: {CLASSIFIER_OUTPUT: self.classify(images)}
        )

    def describe(self) -> str:
        return f"onnxruntime {', '.join(self.session.get_providers())}"


def load(
    model_dir: Path, params: Mapping[str, str], instance_kind: str, device_id: int | str
) -> TrainedClassifier:
    """Open the version folder's ``WEIGHTS``."""
    return TrainedClassifier(session_for(model_dir, params, instance_kind, device_id))


__all__ = ["CONTRACT", "MODEL_PY", "TrainedClassifier", "config_text", "load"]
