"""``classifier_imagenet`` and the trained classifiers: MobileNetV2's input and outputs, the head's initialiser names, the labels file beside a classifier's config."""

from __future__ import annotations

from pathlib import Path

from fovea.contracts.tensors import ONNX_MODEL_PARAMETERS, Contract, TensorSpec

INPUT_SIZE = 224  # the crop's side

RESIZE_SIDE = 256  # the photo's shorter side before the centre crop

LABELS_FILE = "labels.txt"  # beside config.pbtxt; read by the classify service

NUM_CLASSES = 1000  # ImageNet-1k

FEATURE_CHANNELS = 1280  # the final linear layer's inputs

FEATURE_MAP_SIDE = 7  # INPUT_SIZE / 32

TEXTURE_WIDTH = 176  # channel means and standard deviations of two early blocks (fovea.ports.mobilenet_v2)

CONTRACT = Contract(
    name="classifier_imagenet",
    inputs=(TensorSpec("IMAGE", "uint8", (INPUT_SIZE, INPUT_SIZE, 3)),),
    outputs=(
        TensorSpec("PROBABILITIES", "float32", (NUM_CLASSES,)),
        TensorSpec("FEATURES", "float32", (FEATURE_CHANNELS,)),
        TensorSpec("FEATURE_MAP", "float32", (FEATURE_MAP_SIDE, FEATURE_MAP_SIDE, FEATURE_CHANNELS)),
        TensorSpec("TEXTURE", "float32", (TEXTURE_WIDTH,)),
    ),
    parameters=ONNX_MODEL_PARAMETERS,
)

CLASSIFIER_INPUT = CONTRACT.inputs[0].name

CLASSIFIER_OUTPUT = CONTRACT.outputs[0].name

FEATURES_OUTPUT = CONTRACT.outputs[1].name

FEATURE_MAP_OUTPUT = CONTRACT.outputs[2].name

TEXTURE_OUTPUT = CONTRACT.outputs[3].name  # what the ``pad`` recipe's head is trained on

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
