"""Transfer learning on frozen features (pure functions): checks of a training set, the stratified split,
augmentation, the new softmax layer and its evaluation.

As the course puts it: keep the pretrained network frozen as a feature extractor, compute its features once,
train only a new softmax layer on them; augment the few photos (mirroring, random crops, colour shifting).
The layer is ``softmax(features @ W + b)`` with ``W`` ``(F, C)`` and ``b`` ``(C,)``, trained with Adam on the
mean cross-entropy plus ``weight_decay * |W|^2 / 2``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from fovea.common.errors import InvalidArgument, clip
from fovea.contracts.trained_classifier import NAME_PATTERN

LABEL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")


def check_name(name: str) -> str:
    """``name`` when it is a valid classifier name (1-48 of ``a-z 0-9 _ -``, first a letter or digit).

    Raises:
        InvalidArgument: naming the rule.
    """
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidArgument(
            f"classifier name {clip(name)!r} is invalid: 1-48 characters of lowercase letters, digits, '_' "
            "and '-', starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class TrainingSet:
    """Class names (sorted, index = class id) and each image's class id, in the request's order."""

    classes: tuple[str, ...]
    targets: np.ndarray  # (N,) int64

    @property
    def counts(self) -> dict[str, int]:
        return {c: int((self.targets == i).sum()) for i, c in enumerate(self.classes)}


def check_labels(labels: Sequence[str], min_per_class: int, max_images: int) -> TrainingSet:
    """Check the labels of a training set: at least 2 classes, ``min_per_class`` images per class, at most
    ``max_images`` in all, valid and distinct class names (ignoring case).

    Raises:
        InvalidArgument: with a message that says which rule broke and how to fix it.
    """
    if len(labels) > max_images:
        raise InvalidArgument(f"{len(labels)} images is more than the {max_images} a training set may have")
    bad = sorted({label for label in labels if not LABEL_PATTERN.fullmatch(label)})
    if bad:
        raise InvalidArgument(
            f"class name {clip(bad[0])!r} is invalid: 1-64 characters of letters, digits, space, '.', '_', '-', "
            "starting with a letter or digit"
        )
    classes = sorted(set(labels))
    folded: dict[str, str] = {}
    for name in classes:
        other = folded.setdefault(name.casefold(), name)
        if other != name:
            raise InvalidArgument(
                f"duplicate class name: {other!r} and {name!r} differ only in case; use one name per class"
            )
    if len(classes) < 2:
        raise InvalidArgument(
            f"a classifier needs at least 2 classes, got {len(classes)}"
            + (f" ({classes[0]!r})" if classes else "")
            + ": add photos of the other class(es)"
        )
    counts = Counter(labels)
    short = [f"{c!r} has {counts[c]}" for c in classes if counts[c] < min_per_class]
    if short:
        raise InvalidArgument(
            f"every class needs at least {min_per_class} images: {', '.join(short)}; add photos of those classes"
        )
    index = {c: i for i, c in enumerate(classes)}
    return TrainingSet(tuple(classes), np.array([index[label] for label in labels], np.int64))


def stratified_split(targets: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, validation)`` holding out ``round(fraction * n_c)`` images of each class (at least
    one, and at least one left to train on), chosen at random with ``seed``; both sorted.

    Args:
        targets: ``(N,)`` class ids.
        fraction: in ``(0, 1)``.

    Raises:
        ValueError: ``fraction`` outside ``(0, 1)`` or a class with fewer than 2 images.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for c in np.unique(targets):
        members = np.flatnonzero(targets == c)
        if members.size < 2:
            raise ValueError(f"class {int(c)} has {members.size} image(s); a split needs at least 2")
        members = rng.permutation(members)
        n_val = min(max(1, round(fraction * members.size)), members.size - 1)
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def augment(
    image: np.ndarray,
    rng: np.random.Generator,
    resize_side: int = 256,
    crop_size: int = 224,
    max_zoom: float = 1.25,
    colour_shift: float = 20.0,
) -> np.ndarray:
    """One augmented copy of ``image`` as the network's input: the shorter side resized to
    ``resize_side * U(1, max_zoom)`` (bilinear), a random ``crop_size`` crop, mirrored with probability 1/2,
    and each RGB channel shifted by ``U(-colour_shift, colour_shift)`` (the course's colour shifting).

    Args:
        image: ``(H, W, 3)`` uint8 RGB (not modified).

    Returns:
        ``(crop_size, crop_size, 3)`` uint8.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    side = resize_side * rng.uniform(1.0, max_zoom)
    scale = side / min(height, width)
    size = (max(crop_size, round(width * scale)), max(crop_size, round(height * scale)))
    resized = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
    top = int(rng.integers(0, size[1] - crop_size + 1))
    left = int(rng.integers(0, size[0] - crop_size + 1))
    crop = resized[top : top + crop_size, left : left + crop_size].astype(np.float32)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    crop = crop + rng.uniform(-colour_shift, colour_shift, size=3).astype(np.float32)
    return np.ascontiguousarray(np.clip(np.rint(crop), 0, 255).astype(np.uint8))


@dataclass(frozen=True)
class Head:
    """The new softmax layer: probabilities = ``softmax(features @ weight + bias)``."""

    weight: np.ndarray  # (F, C) float32
    bias: np.ndarray  # (C,) float32


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, C)`` logits (max subtracted first)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def predict(head: Head, features: np.ndarray) -> np.ndarray:
    """``(N, F)`` features -> ``(N, C)`` float32 probabilities."""
    return softmax(features.astype(np.float32) @ head.weight + head.bias).astype(np.float32)


@dataclass(frozen=True)
class Standardiser:
    """Each feature's training mean and spread: a head trained on ``(x - mean) / scale`` is folded back into
    one that takes the raw features (:meth:`fold`), so the served graph needs no extra step. A feature whose
    spread is below 1/1000 of the features' median spread is left out (0 after :meth:`apply`, no weight after
    :meth:`fold`): dividing by its spread would magnify its noise (another device's rounding, FP16 on a GPU)
    into a large weight."""

    mean: np.ndarray  # (F,) float64
    scale: np.ndarray  # (F,) float64, > 0
    keep: np.ndarray  # (F,) bool: the features that vary

    @classmethod
    def fit(cls, features: np.ndarray) -> Standardiser:
        """From ``(N, F)`` training features."""
        x = np.asarray(features, np.float64)
        spread = x.std(axis=0)
        positive = spread[spread > 0]
        floor = 1e-3 * float(np.median(positive)) if positive.size else 1.0
        keep = spread >= floor
        return cls(x.mean(axis=0), np.where(keep, spread, 1.0), keep)

    def apply(self, features: np.ndarray) -> np.ndarray:
        x = (np.asarray(features, np.float64) - self.mean) / self.scale
        return (x * self.keep).astype(np.float32)

    def fold(self, head: Head) -> Head:
        """The head on raw features: ``((x - m) / s) @ W + b == x @ (W / s) + (b - (m / s) @ W)``, rows of
        features left out set to 0."""
        weight = np.asarray(head.weight, np.float64) / self.scale[:, None] * self.keep[:, None]
        bias = np.asarray(head.bias, np.float64) - self.mean @ weight
        return Head(weight.astype(np.float32), bias.astype(np.float32))


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 1-based
    loss: float  # mean training cross-entropy over the epoch's batches
    train_accuracy: float
    validation_accuracy: float


def train_head(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    num_classes: int,
    *,
    epochs: int,
    learning_rate: float,
    weight_decay: float,
    seed: int,
    batch_size: int = 32,
    on_epoch: Callable[[EpochStats], None] | None = None,
    weights: np.ndarray | None = None,
) -> tuple[Head, list[EpochStats]]:
    """Train a softmax layer on frozen features with mini-batch Adam (betas 0.9, 0.999).

    Args:
        x_train: ``(N, F)`` features; ``y_train`` ``(N,)`` class ids in ``[0, num_classes)``.
        x_val, y_val: the validation split (may be empty).
        on_epoch: called after each epoch.
        weights: ``(N,)`` per-sample weights of the loss (default all 1).

    Returns:
        The head and one :class:`EpochStats` per epoch.
    """
    if x_train.ndim != 2 or y_train.shape != (x_train.shape[0],) or x_train.shape[0] == 0:
        raise ValueError(
            f"expected (N, F) features and (N,) targets, got {x_train.shape} and {y_train.shape}"
        )
    if y_train.min() < 0 or y_train.max() >= num_classes:
        raise ValueError(f"targets must be in [0, {num_classes})")
    rng = np.random.default_rng(seed)
    n, dims = x_train.shape
    x = x_train.astype(np.float64)
    weight = rng.normal(0.0, 0.01, (dims, num_classes))
    bias = np.zeros(num_classes)
    params = [weight, bias]
    moments = [np.zeros_like(p) for p in params]
    squares = [np.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    step = 0
    history: list[EpochStats] = []
    onehot = np.eye(num_classes)[y_train]
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    if w.shape != (n,) or np.any(w < 0):
        raise ValueError(f"weights must be (N,) and >= 0, got {w.shape}")
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        losses = []
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            xb, tb, wb = x[batch], onehot[batch], w[batch]
            probs = softmax(xb @ weight + bias)
            nll = -np.log(np.maximum((probs * tb).sum(axis=1), 1e-12))
            losses.append(float((nll * wb).sum() / max(wb.sum(), 1e-12)))
            delta = (probs - tb) * wb[:, None] / max(wb.sum(), 1e-12)
            grads = [xb.T @ delta + weight_decay * weight, delta.sum(axis=0)]
            step += 1
            for p, g, m, v in zip(params, grads, moments, squares, strict=True):
                m *= beta1
                m += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * g * g
                m_hat = m / (1 - beta1**step)
                v_hat = v / (1 - beta2**step)
                p -= learning_rate * m_hat / (np.sqrt(v_hat) + eps)
        head = Head(weight.astype(np.float32), bias.astype(np.float32))
        stats = EpochStats(
            epoch,
            float(np.mean(losses)),
            accuracy(y_train, predict(head, x_train).argmax(axis=1)),
            accuracy(y_val, predict(head, x_val).argmax(axis=1)) if len(y_val) else float("nan"),
        )
        history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
    return Head(weight.astype(np.float32), bias.astype(np.float32)), history


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of equal entries; nan for empty input."""
    return float((y_true == y_pred).mean()) if len(y_true) else float("nan")


@dataclass(frozen=True)
class Evaluation:
    """Classification quality on labelled images."""

    labels: tuple[str, ...]
    confusion: np.ndarray  # (C, C) int: row = true class, column = predicted
    accuracy: float
    recall: np.ndarray  # (C,): per class, correct / images of the class (the per-class accuracy); nan if none
    precision: np.ndarray  # (C,): correct / predicted as the class; nan if never predicted
    support: np.ndarray  # (C,) int: images of each class

    def as_text(self) -> str:
        """A per-class table and the confusion matrix, for people."""
        width = max(8, *(len(label) for label in self.labels))
        lines = [f"accuracy {self.accuracy:.1%} on {int(self.support.sum())} images", ""]
        lines.append(f"{'class':<{width}}  {'images':>6}  {'recall':>7}  {'precision':>9}")
        for i, label in enumerate(self.labels):
            lines.append(
                f"{label:<{width}}  {int(self.support[i]):>6}  {_pct(self.recall[i]):>7}  "
                f"{_pct(self.precision[i]):>9}"
            )
        lines += ["", "confusion (row = true class, column = predicted):"]
        cell = max(5, *(len(str(int(v))) for v in self.confusion.flat))
        short = [label[:cell] for label in self.labels]
        lines.append(" " * width + "  " + " ".join(f"{s:>{cell}}" for s in short))
        for i, label in enumerate(self.labels):
            lines.append(f"{label:<{width}}  " + " ".join(f"{int(v):>{cell}}" for v in self.confusion[i]))
        return "\n".join(lines)


def _pct(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.1%}"


def evaluate(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> Evaluation:
    """Confusion matrix, accuracy and per-class recall / precision of predictions ``y_pred`` against
    ``y_true`` (class ids in ``[0, len(labels))``)."""
    classes = len(labels)
    confusion = np.zeros((classes, classes), np.int64)
    np.add.at(confusion, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    diagonal = np.diag(confusion).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, diagonal / support, np.nan)
        precision = np.where(predicted > 0, diagonal / predicted, np.nan)
    return Evaluation(
        tuple(labels), confusion, accuracy(np.asarray(y_true), np.asarray(y_pred)), recall, precision, support
    )


__all__ = [
    "NAME_PATTERN",
    "EpochStats",
    "Evaluation",
    "Head",
    "Standardiser",
    "TrainingSet",
    "accuracy",
    "augment",
    "check_labels",
    "check_name",
    "evaluate",
    "predict",
    "softmax",
    "stratified_split",
    "train_head",
]
