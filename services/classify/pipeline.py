"""The classifiers this service runs and the CPU work around one Triton call (run in a worker thread).

``prepare`` and ``finish`` need no gRPC or Triton: a benchmark can run them around an in-process model
(``fovea.serving.triton_adapter.load_served``)::

    pixels, size = prepare(data, limits, classifier)
    outputs = served.execute([{classifier.input_name: pixels}])[0]
    predictions = finish(outputs, classifier, k)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fovea.classify.core.classify import Prediction, centre_crop, top_k
from fovea.common.images import ImageLimits, decode_image_reduced
from fovea.serving.classifier import CLASSIFIER_INPUT, CLASSIFIER_OUTPUT, INPUT_SIZE, RESIZE_SIDE, read_labels


@dataclass(frozen=True)
class Classifier:
    """A served classifier: its Triton model name, tensors and class names."""

    name: str
    labels: tuple[str, ...]
    input_size: int = INPUT_SIZE
    resize_side: int = RESIZE_SIDE
    input_name: str = CLASSIFIER_INPUT
    output_name: str = CLASSIFIER_OUTPUT


def load_classifiers(repository: Path, names: Sequence[str], default_model: str) -> dict[str, Classifier]:
    """Read each classifier's ``labels.txt``; fails at start-up on a missing directory, bad labels, or a
    default that is not among ``names``.

    Raises:
        ValueError: naming the problem and the known classifiers.
    """
    if default_model not in names:
        raise ValueError(f"default classifier {default_model!r} is not among the classifiers {list(names)}")
    classifiers = {}
    for name in names:
        model_dir = Path(repository) / name
        if not (model_dir / "config.pbtxt").is_file():
            raise ValueError(f"classifier {name!r} has no model directory {model_dir} with a config.pbtxt")
        classifiers[name] = Classifier(name, tuple(read_labels(model_dir)))
    return classifiers


def prepare(data: bytes, limits: ImageLimits, classifier: Classifier) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode (JPEGs at a reduced scale that still covers the resize) and centre-crop: the model input,
    ``(1, S, S, 3)`` uint8, and the original image's ``(width, height)``.

    Raises:
        InvalidImage: the bytes are not an accepted image or break ``limits``.
    """
    side = classifier.resize_side
    decoded = decode_image_reduced(data, limits, (side, side))
    crop = centre_crop(decoded.pixels, classifier.resize_side, classifier.input_size)
    return crop[None], decoded.original_size


def finish(outputs: dict[str, np.ndarray], classifier: Classifier, k: int) -> list[Prediction]:
    """The ``k`` most probable classes of the single image in ``outputs``."""
    return top_k(np.asarray(outputs[classifier.output_name][0], np.float32), list(classifier.labels), k)


__all__ = ["Classifier", "finish", "load_classifiers", "prepare"]
