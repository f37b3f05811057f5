"""``fovea classifiers eval``: a trained classifier measured on a labelled folder through the gateway
(accuracy, per-class recall / precision, the confusion matrix), and that matrix drawn as a PNG. An offline
tool kept beside the service: it runs in the CLI's process and calls the gateway through the client."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fovea.classify.core.training import Evaluation, evaluate
from fovea.client import FoveaClient
from fovea.client.classifiers import read_labelled_folder


@dataclass(frozen=True)
class ClassifierEvaluation:
    model: str
    version: int
    evaluation: Evaluation
    skipped: dict[str, int]  # folder classes the classifier does not know -> images not counted

    def as_dict(self) -> dict[str, object]:
        e = self.evaluation
        return {
            "model": self.model,
            "version": self.version,
            "accuracy": round(e.accuracy, 4),
            "classes": [
                {
                    "label": label,
                    "images": int(e.support[i]),
                    "recall": None if np.isnan(e.recall[i]) else round(float(e.recall[i]), 4),
                    "precision": None if np.isnan(e.precision[i]) else round(float(e.precision[i]), 4),
                }
                for i, label in enumerate(e.labels)
            ],
            "confusion": e.confusion.tolist(),
            "skipped": self.skipped,
        }

    def as_text(self) -> str:
        head = f"{self.model} version {self.version}: "
        skipped = "".join(
            f"\nskipped {n} images of class {label!r}: not among the classifier's labels"
            for label, n in self.skipped.items()
        )
        return head + self.evaluation.as_text() + skipped


def evaluate_folder(
    client: FoveaClient,
    name: str,
    folder: Path,
    version: int = 0,
    on_image: Callable[[int, int], None] | None = None,
) -> ClassifierEvaluation:
    """Classify every image of a labelled folder with trained classifier ``name`` (``version``, 0 = the
    active one) through the gateway; accuracy, per-class recall / precision, confusion matrix.

    Raises:
        ValueError: no image of the folder belongs to a class the classifier knows, or it has no such
            version.
    """
    pairs = read_labelled_folder(folder)
    info = client.classifier_versions(name)
    wanted = version or info.active_version
    labels = next((v.labels for v in info.versions if v.version == wanted), None)
    if labels is None:
        kept = ", ".join(str(v.version) for v in info.versions) or "none"
        raise ValueError(f"classifier {name} has no version {wanted} (versions: {kept})")
    index = {label: i for i, label in enumerate(labels)}
    skipped: dict[str, int] = {}
    truth, predicted = [], []
    used_version = wanted
    for n, (label, path) in enumerate(pairs):
        if on_image is not None:
            on_image(n, len(pairs))
        if label not in index:
            skipped[label] = skipped.get(label, 0) + 1
            continue
        result = client.classify(path.read_bytes(), model=name, top_k=1, version=version)
        used_version = result.version
        truth.append(index[label])
        predicted.append(result.classifications[0].class_id)
    if not truth:
        raise ValueError(f"none of the classes of {folder} ({', '.join(skipped)}) is among {name}'s {labels}")
    report = evaluate(np.array(truth), np.array(predicted), labels)
    return ClassifierEvaluation(name, used_version, report, skipped)


def confusion_png(evaluation: Evaluation, title: str = "") -> bytes:
    """The confusion matrix as a PNG: one cell per (true, predicted) pair, shaded by the row's share,
    with the count; rows = true class, columns = predicted."""
    labels = evaluation.labels
    n = len(labels)
    cell, font = 56, ImageFont.load_default()
    margin = 12 + 7 * min(24, max(len(label) for label in labels))
    top = margin + (20 if title else 0)
    image = Image.new("RGB", (margin + n * cell + 10, top + n * cell + 30), "white")
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((10, 6), title, fill="black", font=font)
    rows = evaluation.confusion.sum(axis=1, keepdims=True).clip(min=1)
    share = evaluation.confusion / rows
    for i in range(n):
        draw.text((6, top + i * cell + cell // 2 - 6), labels[i][:24], fill="black", font=font)
        draw.text((margin + i * cell + 4, top - 14), labels[i][:8], fill="black", font=font)
        for j in range(n):
            shade = int(255 - 200 * share[i, j])
            box = (margin + j * cell, top + i * cell, margin + (j + 1) * cell - 2, top + (i + 1) * cell - 2)
            draw.rectangle(box, fill=(shade, shade, 255))
            draw.text(
                (box[0] + cell // 2 - 8, box[1] + cell // 2 - 6),
                str(int(evaluation.confusion[i, j])),
                fill="black" if share[i, j] < 0.6 else "white",
                font=font,
            )
    draw.text((margin, top + n * cell + 8), "rows: true class, columns: predicted", fill="gray", font=font)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


__all__ = ["ClassifierEvaluation", "confusion_png", "evaluate_folder"]
