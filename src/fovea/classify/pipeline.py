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

from fovea.classify.core.classify import Prediction, centre_crop, crop_box, top_k
from fovea.classify.core.explain import class_index, grad_cam, normalise, png_bytes, render_overlay
from fovea.common.images import ImageLimits, decode_image_reduced
from fovea.contracts.classifier import (
    CLASSIFIER_INPUT,
    CLASSIFIER_OUTPUT,
    CONTRACT,
    FEATURE_CHANNELS,
    FEATURE_MAP_OUTPUT,
    HEAD_BIAS,
    HEAD_WEIGHT,
    INPUT_SIZE,
    RESIZE_SIDE,
    read_labels,
)


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
    crop = centre_crop(decoded.picture, classifier.resize_side, classifier.input_size)
    return crop[None], decoded.original_size


def finish(outputs: dict[str, np.ndarray], classifier: Classifier, k: int) -> list[Prediction]:
    """The ``k`` most probable classes of the single image in ``outputs``."""
    return top_k(np.asarray(outputs[classifier.output_name][0], np.float32), list(classifier.labels), k)


# ------------------------------------------------------------------------------------------ explain
@dataclass(frozen=True)
class Explanation:
    """Grad-CAM of one class on one image (:mod:`fovea.classify.core.explain`)."""

    explained: Prediction  # the class the map is for
    top: Prediction  # the most probable class
    heatmap: np.ndarray  # (h, w) float32 in [0, 1], row-major cells tiling ``crop``
    peak: float  # the map's maximum before it was divided by it (0: nothing speaks for the class)
    crop: tuple[float, float, float, float]  # the crop the network saw, xyxy in the original image's pixels
    png: bytes | None  # the overlay, when asked for


def load_head(repository: Path, classifier: Classifier) -> np.ndarray:
    """A built-in classifier's final linear weights ``(classes, 1280)``, from its ONNX file
    (``<repository>/<name>/1/model.onnx``, initialiser ``HEAD_WEIGHT``).

    Raises:
        ValueError: the file is missing, has no head, or its class count differs from the labels'.
    """
    weight, _ = read_head(Path(repository) / classifier.name / "1" / "model.onnx")
    if weight.shape[0] != len(classifier.labels):
        raise ValueError(
            f"{classifier.name}: head has {weight.shape[0]} classes, labels.txt {len(classifier.labels)}"
        )
    return weight


RENDER_SIDE = 1024  # the overlay's photo is decoded with at least this many pixels a side (or at full size)


def prepare_explain(
    data: bytes, limits: ImageLimits, classifier: Classifier, render: bool = False
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """:func:`prepare` (the same model input as Classify), keeping a decoded photo: the model input
    ``(1, S, S, 3)``, the photo ``(H, W, 3)`` uint8 (the whole picture; decoded again, larger, to draw the
    overlay on when ``render``) and the original image's ``(width, height)``."""
    side = classifier.resize_side
    decoded = decode_image_reduced(data, limits, (side, side))
    crop = centre_crop(decoded.picture, classifier.resize_side, classifier.input_size)
    photo = (
        decode_image_reduced(data, limits, (RENDER_SIDE, RENDER_SIDE)).pixels if render else decoded.pixels
    )
    return crop[None], photo, decoded.original_size


def finish_explain(
    outputs: dict[str, np.ndarray],
    classifier: Classifier,
    head: np.ndarray,
    photo: np.ndarray,
    original_size: tuple[int, int],
    label: str = "",
    render: bool = False,
) -> Explanation:
    """Grad-CAM of ``label`` (empty: the most probable class) from ``outputs``' ``PROBABILITIES`` and
    ``FEATURE_MAP`` (one image) and the head's weights; the overlay drawn on ``photo`` when ``render``.

    Raises:
        ValueError: an unknown label (the message suggests close ones).
    """
    probabilities = np.asarray(outputs[classifier.output_name][0], np.float32)
    labels = list(classifier.labels)
    best = top_k(probabilities, labels, 1)[0]
    class_id = class_index(labels, label) if label else best.class_id
    explained = Prediction(class_id, labels[class_id], float(probabilities[class_id]))
    cam = grad_cam(np.asarray(outputs[FEATURE_MAP_OUTPUT][0], np.float32), head[class_id])
    peak = float(cam.max())
    heatmap = normalise(cam)
    photo_height, photo_width = photo.shape[:2]
    # the crop in the decoded photo's pixels (what centre_crop took), then in the original image's
    x1, y1, x2, y2 = crop_box(photo_width, photo_height, classifier.resize_side, classifier.input_size)
    sx, sy = original_size[0] / photo_width, original_size[1] / photo_height
    png = None
    if render:
        caption = f"{explained.label} {explained.probability:.1%}"
        if explained.class_id != best.class_id:
            caption += f" (top: {best.label} {best.probability:.1%})"
        png = png_bytes(render_overlay(photo, heatmap, (x1, y1, x2, y2), caption))
    return Explanation(explained, best, heatmap, peak, (x1 * sx, y1 * sy, x2 * sx, y2 * sy), png)


__all__ = [
    "Classifier",
    "Explanation",
    "finish",
    "finish_explain",
    "load_classifiers",
    "load_head",
    "prepare",
    "prepare_explain",
]


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
