"""``classifier_imagenet``: MobileNetV2 on ImageNet-1k (our port of torchvision's weights, ONNX) in onnxruntime.

The graph comes from ``fovea models build`` (:func:`fovea.convert.mobilenet_v2.convert_mobilenet_v2_onnx`):
``IMAGE`` uint8 ``[N, 224, 224, 3]`` RGB, the centre crop of the photo resized so its shorter side is 256
(the classify service makes it); cast, ``/ 255``, ``(x - mean) / std`` and NHWC -> NCHW run in the graph.
``PROBABILITIES`` float32 ``[N, 1000]``: softmax over the classes of ``labels.txt`` beside ``config.pbtxt``
(one name a line, index = class id). ``FEATURES`` float32 ``[N, 1280]``: the globally average-pooled features,
the final linear layer's input (what a transfer-learned head is trained on). ``FEATURE_MAP`` float32
``[N, 7, 7, 1280]``: the last conv block's output (``features.18`` after its ReLU6), NHWC, what Grad-CAM weighs
(the linear layer's weights are the ONNX initialisers ``HEAD_WEIGHT`` / ``HEAD_BIAS``). A client asks Triton for
the outputs it needs; the python backend computes all three (the adapter does not pass the requested names on)
and Triton returns only the requested ones. Tensor names in the ONNX file equal the Triton names, so Triton's
native onnxruntime backend serves the same file (``configs/gpu.pbtxt``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fovea.contracts.classifier import (
    CLASSIFIER_INPUT,
    CLASSIFIER_OUTPUT,
    CONTRACT,
    FEATURE_CHANNELS,
    FEATURE_MAP_OUTPUT,
    FEATURE_MAP_SIDE,
    FEATURES_OUTPUT,
    HEAD_BIAS,
    HEAD_WEIGHT,
    INPUT_SIZE,
    LABELS_FILE,
    RESIZE_SIDE,
    read_labels,
)
from fovea.contracts.tensors import Arrays
from fovea.serving.base import RequestError, run_batched, session_for


class Classifier:
    """One onnxruntime session; :meth:`execute` runs a gathered batch in one call."""

    def __init__(self, session: Any) -> None:
        inputs = [(i.name, i.type) for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]
        if inputs != [(CLASSIFIER_INPUT, "tensor(uint8)")] or outputs != list(CONTRACT.output_names):
            raise ValueError(
                f"the ONNX file has inputs {inputs} and outputs {outputs}; expected {CLASSIFIER_INPUT} uint8 "
                f"and {list(CONTRACT.output_names)}: rebuild it with "
                f"`fovea models build --only {CONTRACT.name} --force`"
            )
        self.session = session

    def run(self, images: np.ndarray, outputs: Sequence[str] = CONTRACT.output_names) -> Arrays:
        """uint8 ``(N, 224, 224, 3)`` crops -> the named outputs (default all three), float32, batch first."""
        unknown = set(outputs) - set(CONTRACT.output_names)
        if unknown:
            raise ValueError(f"unknown outputs {sorted(unknown)}; known: {list(CONTRACT.output_names)}")
        got = self.session.run(list(outputs), {CLASSIFIER_INPUT: np.ascontiguousarray(images)})
        return {name: np.asarray(out, np.float32) for name, out in zip(outputs, got, strict=True)}

    def classify(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``(N, 224, 224, 3)`` crops -> probabilities ``(N, classes)`` float32."""
        return self.run(images, [CLASSIFIER_OUTPUT])[CLASSIFIER_OUTPUT]

    def execute(self, requests: Sequence[Mapping[str, np.ndarray]]) -> list[Arrays | RequestError]:
        """One entry per request: all three outputs for its ``n`` images, or its ``RequestError``."""
        return execute_crops(requests, CONTRACT.input_dims, self.run)

    def describe(self) -> str:
        return f"onnxruntime {', '.join(self.session.get_providers())}"


def execute_crops(
    requests: Sequence[Mapping[str, np.ndarray]],
    input_dims: Mapping[str, tuple[int, ...]],
    run: Callable[[np.ndarray], Arrays],
) -> list[Arrays | RequestError]:
    """One entry per request: ``run`` over its uint8 ``IMAGE`` crops (all requests' crops gathered in one
    batch), or its ``RequestError`` (an image that is not uint8; the shapes ``input_dims`` checks)."""
    return run_batched(requests, input_dims, lambda b: run(b[CLASSIFIER_INPUT]), {CLASSIFIER_INPUT: np.uint8})


def load(model_dir: Path, params: Mapping[str, str], instance_kind: str, device_id: int | str) -> Classifier:
    """Open ``model_dir / WEIGHTS`` with the providers ``DEVICE`` and the instance ask for."""
    return Classifier(session_for(model_dir, params, instance_kind, device_id))


__all__ = [
    "CLASSIFIER_INPUT",
    "CLASSIFIER_OUTPUT",
    "CONTRACT",
    "FEATURES_OUTPUT",
    "FEATURE_CHANNELS",
    "FEATURE_MAP_OUTPUT",
    "FEATURE_MAP_SIDE",
    "HEAD_BIAS",
    "HEAD_WEIGHT",
    "INPUT_SIZE",
    "LABELS_FILE",
    "RESIZE_SIDE",
    "Classifier",
    "load",
    "read_labels",
]
