"""``fovea detect eval``: a detector's COCO mAP on a YOLO-format dataset (``fovea detect eval DIR``) or a
COCO-JSON one (``fovea detect eval --coco annotations.json --images DIR``), measured through the gateway.

Every image goes through the public API (``DetectStream``, in chunks), exactly as a client would see it;
the numbers come from :func:`fovea.detection.core.mean_ap.evaluate` (pycocotools).

Classes are matched **by name** between the dataset (``classes.txt`` / ``data.yaml``) and the detector's
labels (``ListDetectors``): exactly, else ignoring case, ``_``/``-`` versus spaces and repeated spaces
(``traffic_light`` = ``traffic light``). Detections of classes the dataset lacks are dropped. A dataset class
the detector does not know gets a warning; when it has ground-truth boxes it counts with AP 0. When no class
matches at all the evaluation is refused before any image is sent (the numbers would all be 0).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fovea.client import DetectResult, FoveaClient
from fovea.detection.core.mean_ap import YoloDataset, evaluate, read_coco_dataset, read_yolo_dataset
from fovea.detection.v1 import detection_pb2

__all__ = [
    "ClassAP",
    "EvalReport",
    "check_matched",
    "evaluate_coco",
    "evaluate_folder",
    "match_labels",
    "normalise_label",
]

CHUNK = 16
"""Images per ``DetectStream`` call (bounds the memory of one call)."""


def normalise_label(name: str) -> str:
    """``"Traffic_Light "`` -> ``"traffic light"``: lower case, ``_``/``-`` as spaces, single spaces."""
    return re.sub(r"\s+", " ", re.sub(r"[_-]", " ", name)).strip().lower()


def match_labels(dataset_names: Sequence[str], detector_labels: Sequence[str]) -> dict[str, int]:
    """Detector label -> dataset class id, for the labels the dataset has (see the module docstring)."""
    exact = {name: i for i, name in enumerate(dataset_names)}
    loose: dict[str, int] = {}
    for i, name in enumerate(dataset_names):
        loose.setdefault(normalise_label(name), i)
    mapping = {}
    for label in detector_labels:
        if label in exact:
            mapping[label] = exact[label]
        elif normalise_label(label) in loose:
            mapping[label] = loose[normalise_label(label)]
    return mapping


def check_matched(
    mapping: dict[str, int], dataset_names: Sequence[str], model: str, labels: Sequence[str]
) -> None:
    """Refuse an evaluation where no dataset class is a class of the detector (``match_labels`` found none).

    Raises:
        ValueError: naming a few of each side's classes.
    """
    if mapping:
        return

    def few(names: Sequence[str]) -> str:
        shown = ", ".join(repr(n) for n in names[:8])
        return f"{shown}, ... ({len(names)} in all)" if len(names) > 8 else shown

    raise ValueError(
        f"none of the dataset's classes ({few(dataset_names)}) is a class of detector {model!r} "
        f"({few(labels)}): names are matched ignoring case, '_' / '-' versus spaces; rename the dataset's "
        "classes or evaluate a detector trained on them"
    )


@dataclass(frozen=True)
class ClassAP:
    name: str
    boxes: int
    """Ground-truth boxes of this class."""
    ap50: float
    ap50_95: float
    known: bool
    """Whether the detector has this class."""


@dataclass
class EvalReport:
    folder: str
    model: str
    images: int
    boxes: int
    map50: float
    map50_95: float
    per_class: list[ClassAP] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    """Wall time of the whole evaluation: reading the dataset, detecting every image, scoring."""

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "model": self.model,
            "images": self.images,
            "boxes": self.boxes,
            "map50": round(self.map50, 4),
            "map50_95": round(self.map50_95, 4),
            "per_class": [
                {
                    "name": c.name,
                    "boxes": c.boxes,
                    "ap50": round(c.ap50, 4),
                    "ap50_95": round(c.ap50_95, 4),
                    "known": c.known,
                }
                for c in self.per_class
            ],
            "warnings": list(self.warnings),
            "seconds": round(self.seconds, 3),
            "images_per_s": round(self.images_per_s, 2),
        }

    def as_text(self) -> str:
        width = max([len("class"), *(len(c.name) for c in self.per_class)])
        lines = [
            f"{self.folder}: {self.images} images, {self.boxes} boxes, model {self.model}",
            f"mAP@0.5 {self.map50:.3f}   mAP@[.5:.95] {self.map50_95:.3f}   "
            f"({self.seconds:.1f} s, {self.images_per_s:.1f} images/s)",
            "",
            f"{'class':<{width}}  {'boxes':>5}  {'AP@0.5':>6}  {'AP@[.5:.95]':>11}",
        ]
        for c in self.per_class:
            mark = "" if c.known else "  (not a class of the detector)"
            lines.append(f"{c.name:<{width}}  {c.boxes:>5}  {c.ap50:>6.3f}  {c.ap50_95:>11.3f}{mark}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _chunks(items: Sequence[Path], size: int) -> Iterator[Sequence[Path]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _detector(client: FoveaClient, model: str) -> detection_pb2.DetectorInfo:
    reply = client.call(client.detection.ListDetectors, detection_pb2.ListDetectorsRequest())
    for info in reply.detectors:
        if (model and info.name == model) or (not model and info.is_default):
            return info
    known = ", ".join(d.name for d in reply.detectors)
    raise ValueError(f"unknown detector {model or '(default)'!r}; available: {known}")


def _predictions(
    results: Sequence[DetectResult], mapping: dict[str, int]
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    predictions = []
    for result in results:
        kept = [d for d in result.detections if d.label in mapping]
        predictions.append(
            (
                torch.tensor([d.box for d in kept], dtype=torch.float32).reshape(-1, 4),
                torch.tensor([d.score for d in kept], dtype=torch.float32),
                torch.tensor([mapping[d.label] for d in kept], dtype=torch.int64),
            )
        )
    return predictions


def _report(
    folder: str,
    model: str,
    dataset: YoloDataset,
    results: Sequence[DetectResult],
    mapping: dict[str, int],
    max_detections: int,
) -> EvalReport:
    warnings = []
    counts = torch.cat([s.class_ids for s in dataset.samples]).bincount(minlength=len(dataset.class_names))
    known = set(mapping.values())
    for i, name in enumerate(dataset.class_names):
        if i not in known:
            effect = f"its {int(counts[i])} boxes count with AP 0" if counts[i] else "it has no boxes"
            warnings.append(f"dataset class {name!r} is not a class of detector {model!r}: {effect}")
    ground_truth = [(s.boxes, s.class_ids) for s in dataset.samples]
    sizes = [s.image_size for s in dataset.samples]
    for sample, result in zip(dataset.samples, results, strict=True):
        if tuple(result.image_size) != sample.image_size:
            warnings.append(
                f"{sample.image_path.name}: the service saw {result.image_size[0]}x{result.image_size[1]}, "
                f"the labels assume {sample.image_size[0]}x{sample.image_size[1]}"
            )
    evaluated = evaluate(
        ground_truth,
        _predictions(results, mapping),
        dataset.class_names,
        sizes,
        max_detections=max_detections,
    )
    per_class = [
        ClassAP(name, int(counts[i]), evaluated.per_class[name][0], evaluated.per_class[name][1], i in known)
        for i, name in enumerate(dataset.class_names)
        if name in evaluated.per_class
    ]
    return EvalReport(
        folder=folder,
        model=model,
        images=len(dataset.samples),
        boxes=int(counts.sum()),
        map50=evaluated.map50,
        map50_95=evaluated.map50_95,
        per_class=per_class,
        warnings=warnings,
    )


def _evaluate(
    client: FoveaClient,
    dataset: YoloDataset,
    where: str,
    start: float,
    *,
    model: str,
    min_score: float,
    max_detections: int,
    chunk: int,
) -> EvalReport:
    info = _detector(client, model)
    mapping = match_labels(dataset.class_names, list(info.labels))
    check_matched(mapping, dataset.class_names, info.name, list(info.labels))
    results: list[DetectResult] = []
    for paths in _chunks([s.image_path for s in dataset.samples], chunk):
        results += client.detect_many(
            [p.read_bytes() for p in paths],
            model=info.name,
            min_score=min_score,
            max_detections=max_detections,
        )
    report = _report(where, info.name, dataset, results, mapping, max_detections)
    report.seconds = time.perf_counter() - start
    return report


def evaluate_folder(
    client: FoveaClient,
    folder: Path,
    *,
    model: str = "",
    min_score: float = 0.001,
    max_detections: int = 100,
    chunk: int = CHUNK,
    split: str | None = None,
) -> EvalReport:
    """mAP@0.5 and mAP@[.5:.95] of ``model`` (default: the service's default) on a YOLO-format folder.

    Args:
        client: a connected gateway client (needs the ``detect`` scope).
        folder: ``images/``, ``labels/`` and ``classes.txt`` or a dataset YAML of any name, or that YAML
            (see ``read_yolo_dataset``).
        model: detector name; empty = the service's default.
        min_score: score threshold sent with each request (low, as mAP wants the whole ranking).
        max_detections: detections per image requested and counted (COCO uses 100).
        chunk: images per ``DetectStream`` call.
        split: ``train``, ``val`` or ``test`` (the YAML's folders); None = every image under ``images/``.

    Raises:
        ValueError: a malformed dataset, an unknown detector, no class in common, or no ground-truth box.
        FoveaClientError: the gateway refused a request.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    start = time.perf_counter()
    dataset = read_yolo_dataset(folder, split)
    return _evaluate(
        client,
        dataset,
        str(folder),
        start,
        model=model,
        min_score=min_score,
        max_detections=max_detections,
        chunk=chunk,
    )


def evaluate_coco(
    client: FoveaClient,
    annotations: Path,
    images: Path,
    *,
    model: str = "",
    min_score: float = 0.001,
    max_detections: int = 100,
    chunk: int = CHUNK,
) -> EvalReport:
    """Like :func:`evaluate_folder`, on a COCO-JSON dataset: ``annotations`` and the ``images`` folder its
    ``file_name`` entries are relative to (see ``read_coco_dataset``)."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    start = time.perf_counter()
    dataset = read_coco_dataset(annotations, images)
    return _evaluate(
        client,
        dataset,
        str(annotations),
        start,
        model=model,
        min_score=min_score,
        max_detections=max_detections,
        chunk=chunk,
    )
