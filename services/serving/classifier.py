"""``classifier_imagenet``: MobileNetV2 on ImageNet-1k (our port of torchvision's weights, ONNX) in onnxruntime.

The graph comes from ``fovea models build`` (:func:`fovea.models.mobilenet_v2.convert_mobilenet_v2_onnx`):
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

from fovea.serving.base import (
    ONNX_MODEL_PARAMETERS,
    Arrays,
    Contract,
    RequestError,
    TensorSpec,
    run_batched,
    session_for,
)

INPUT_SIZE = 224  # the crop's side
RESIZE_SIDE = 256  # the photo's shorter side before the centre crop
LABELS_FILE = "labels.txt"  # beside config.pbtxt; read by the classify service
NUM_CLASSES = 1000  # ImageNet-1k
FEATURE_CHANNELS = 1280  # the final linear layer's inputs
FEATURE_MAP_SIDE = 7  # INPUT_SIZE / 32

CONTRACT = Contract(
    name="classifier_imagenet",
    inputs=(TensorSpec("IMAGE", "uint8", (INPUT_SIZE, INPUT_SIZE, 3)),),
    outputs=(
        TensorSpec("PROBABILITIES", "float32", (NUM_CLASSES,)),
        TensorSpec("FEATURES", "float32", (FEATURE_CHANNELS,)),
        TensorSpec("FEATURE_MAP", "float32", (FEATURE_MAP_SIDE, FEATURE_MAP_SIDE, FEATURE_CHANNELS)),
    ),
    parameters=ONNX_MODEL_PARAMETERS,
)
CLASSIFIER_INPUT = CONTRACT.inputs[0].name
CLASSIFIER_OUTPUT = CONTRACT.outputs[0].name
FEATURES_OUTPUT = CONTRACT.outputs[1].name
FEATURE_MAP_OUTPUT = CONTRACT.outputs[2].name
HEAD_WEIGHT, HEAD_BIAS = "HEAD_WEIGHT", "HEAD_BIAS"  # the final linear layer's initialisers in the ONNX file


def read_labels(model_dir: Path) -> list[str]:
    """The class names of a classifier's model directory (``labels.txt``, one a line, no blank lines).

    Raises:
        ValueError: the file is missing, empty or has a blank line.
    """
    path = Path(model_dir) / LABELS_FILE
    if not path.is_file():
        raise ValueError(f"{path} does not exist: a classifier needs its class names, one a line")
    labels = path.read_text().splitlines()
    if not labels or any(not label.strip() for label in labels):
        raise ValueError(f"{path} is empty or has a blank line")
    return labels


def read_head(weights: Path) -> tuple[np.ndarray, np.ndarray]:
    """The final linear layer of a classifier's ONNX file (``1/model.onnx``): weight ``(classes, 1280)`` and
    bias ``(classes,)``, float32, from the initialisers :data:`HEAD_WEIGHT` / :data:`HEAD_BIAS`.

    Raises:
        ValueError: the file is missing or has no such initialisers (built before they were named).
    """
    import onnx
    from onnx import numpy_helper

    if not Path(weights).is_file():
        raise ValueError(f"{weights} does not exist: run `fovea models build`")
    graph = onnx.load(str(weights)).graph
    found = {i.name: i for i in graph.initializer if i.name in (HEAD_WEIGHT, HEAD_BIAS)}
    if set(found) != {HEAD_WEIGHT, HEAD_BIAS}:
        raise ValueError(
            f"{weights} has no {HEAD_WEIGHT}/{HEAD_BIAS}: rebuild it with "
            f"`fovea models build --only {CONTRACT.name} --force`"
        )
    weight = numpy_helper.to_array(found[HEAD_WEIGHT]).astype(np.float32)
    bias = numpy_helper.to_array(found[HEAD_BIAS]).astype(np.float32)
    if weight.ndim != 2 or weight.shape[1] != FEATURE_CHANNELS or bias.shape != weight.shape[:1]:
        raise ValueError(f"{weights}: head weight {weight.shape} and bias {bias.shape} do not fit")
    return weight, bias


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
    "read_head",
    "read_labels",
]
