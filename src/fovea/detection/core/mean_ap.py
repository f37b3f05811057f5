"""Detection quality: COCO mAP with pycocotools, and readers for YOLO-format and COCO-JSON datasets.

:func:`evaluate` builds COCO-format ground truth and results in memory (boxes converted from xyxy to
COCO's xywh, image and category ids 1-based because pycocotools treats id 0 as "unmatched") and runs
``COCOeval`` for boxes, so the numbers are the standard COCO ones: 101-point interpolated AP, area "all",
at most ``max_detections`` detections per image.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch import Tensor

from fovea.contracts.detector import parse_yaml_names, strip_yaml_scalar

__all__ = [
    "IMAGE_SUFFIXES",
    "SPLITS",
    "EvalResult",
    "YoloDataset",
    "YoloSample",
    "evaluate",
    "find_dataset_yaml",
    "parse_yaml_names",
    "parse_yaml_paths",
    "read_coco_dataset",
    "read_yolo_dataset",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
_EXIF_ORIENTATION = 0x0112
_ROTATED_ORIENTATIONS = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class EvalResult:
    """COCO box metrics; ``per_class`` maps class name -> ``(AP@0.5, AP@[0.5:0.95])`` for every class
    that has at least one ground-truth box (AP is undefined for the others, which are left out)."""

    map50: float
    map50_95: float
    per_class: dict[str, tuple[float, float]] = field(default_factory=dict)


# --- evaluation ----------------------------------------------------------------------------------


def _xywh_list(boxes: Tensor) -> list[list[float]]:
    b = boxes.detach().to(torch.float64).cpu()
    return torch.stack((b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]), dim=1).tolist()


def _check_lengths(
    ground_truth: Sequence[Any], predictions: Sequence[Any], image_sizes: Sequence[Any]
) -> None:
    if not len(ground_truth) == len(predictions) == len(image_sizes):
        raise ValueError(
            "ground_truth, predictions and image_sizes must have one entry per image, got "
            f"{len(ground_truth)}, {len(predictions)} and {len(image_sizes)}"
        )


def _coco_ground_truth(
    ground_truth: Sequence[tuple[Tensor, Tensor]],
    class_names: Sequence[str],
    image_sizes: Sequence[tuple[int, int]],
) -> dict[str, list[dict[str, Any]]]:
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, ((boxes, class_ids), (width, height)) in enumerate(
        zip(ground_truth, image_sizes, strict=True), start=1
    ):
        images.append({"id": image_id, "width": int(width), "height": int(height)})
        for bbox, class_id in zip(_xywh_list(boxes), class_ids.tolist(), strict=True):
            if not 0 <= class_id < len(class_names):
                raise ValueError(f"ground-truth class id {class_id} outside the {len(class_names)} classes")
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(class_id) + 1,
                    "bbox": bbox,
                    "area": bbox[2] * bbox[3],
                    "iscrowd": 0,
                }
            )
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(class_names)]
    return {"images": images, "annotations": annotations, "categories": categories}


def _coco_results(
    predictions: Sequence[tuple[Tensor, Tensor, Tensor]], num_classes: int
) -> list[dict[str, Any]]:
    results = []
    for image_id, (boxes, scores, class_ids) in enumerate(predictions, start=1):
        for bbox, score, class_id in zip(_xywh_list(boxes), scores.tolist(), class_ids.tolist(), strict=True):
            if not 0 <= class_id < num_classes:
                raise ValueError(f"predicted class id {class_id} outside the {num_classes} classes")
            results.append(
                {"image_id": image_id, "category_id": int(class_id) + 1, "bbox": bbox, "score": float(score)}
            )
    return results


def _mean_valid(precision: np.ndarray) -> float:
    """Mean of the entries pycocotools filled in (it writes -1 where there is nothing to measure)."""
    valid = precision[precision > -1]
    return float(valid.mean()) if valid.size else 0.0


def evaluate(
    ground_truth: Sequence[tuple[Tensor, Tensor]],
    predictions: Sequence[tuple[Tensor, Tensor, Tensor]],
    class_names: Sequence[str],
    image_sizes: Sequence[tuple[int, int]],
    *,
    max_detections: int = 100,
) -> EvalResult:
    """COCO mAP@0.5 and mAP@[0.5:0.95] of predictions against ground truth, computed by pycocotools.

    Args:
        ground_truth: per image, ``(boxes (G, 4) xyxy pixels, class_ids (G,))``.
        predictions: per image, ``(boxes (D, 4) xyxy pixels, scores (D,), class_ids (D,))``.
        class_names: name of each class id.
        image_sizes: per image, ``(width, height)``.
        max_detections: detections per image that count (COCO's ``maxDets``; the best-scored are used).

    Returns:
        :class:`EvalResult`; 0 everywhere when there are no predictions at all.

    Raises:
        ValueError: mismatched lengths, a class id out of range, or no ground-truth box at all.
    """
    _check_lengths(ground_truth, predictions, image_sizes)
    if max_detections < 1:
        raise ValueError(f"max_detections must be >= 1, got {max_detections}")
    gt_dict = _coco_ground_truth(ground_truth, class_names, image_sizes)
    if not gt_dict["annotations"]:
        raise ValueError("no ground-truth boxes: mAP is undefined")
    results = _coco_results(predictions, len(class_names))
    present = sorted({ann["category_id"] for ann in gt_dict["annotations"]})
    if not results:
        return EvalResult(0.0, 0.0, {class_names[c - 1]: (0.0, 0.0) for c in present})
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt_dict
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        coco_eval = COCOeval(coco_gt, coco_dt, iouType="bbox")
        coco_eval.params.maxDets = [1, 10, max_detections]
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    # precision: (iou thresholds T=10, recall points R=101, classes K, area ranges A, max dets M)
    precision = coco_eval.eval["precision"][:, :, :, 0, -1]
    per_class = {}
    for k, category_id in enumerate(coco_eval.params.catIds):
        if category_id in present:
            per_class[class_names[category_id - 1]] = (
                _mean_valid(precision[0, :, k]),
                _mean_valid(precision[:, :, k]),
            )
    return EvalResult(float(coco_eval.stats[1]), float(coco_eval.stats[0]), per_class)


# --- YOLO-format datasets ------------------------------------------------------------------------


@dataclass(frozen=True)
class YoloSample:
    """One image of a YOLO-format dataset, its boxes converted to xyxy pixels."""

    image_path: Path
    boxes: Tensor
    """``(G, 4)`` float32 xyxy in pixels of the (EXIF-oriented) image."""
    class_ids: Tensor
    """``(G,)`` int64."""
    image_size: tuple[int, int]
    """``(width, height)`` after EXIF orientation, the frame the normalised labels refer to."""


@dataclass(frozen=True)
class YoloDataset:
    class_names: list[str]
    samples: list[YoloSample]


SPLITS = ("train", "val", "test")


def parse_yaml_paths(text: str) -> dict[str, str]:
    """The top-level scalar ``path``, ``train``, ``val`` and ``test`` keys of an Ultralytics dataset YAML.

    Raises:
        ValueError: one of them is a list or mapping (several folders per split are not supported).
    """
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = re.match(r"^(path|train|val|test)\s*:(.*)$", line)
        if not match:
            continue
        value = strip_yaml_scalar(re.sub(r"\s+#.*$", "", match.group(2)).strip())
        if value.startswith(("[", "{")):
            raise ValueError(
                f"dataset YAML line {number}: {match.group(1)}: must be one folder, got {value!r}"
            )
        if value and value.lower() not in ("null", "~"):
            found[match.group(1)] = value
    return found


def find_dataset_yaml(root: Path) -> Path | None:
    """The dataset YAML in ``root`` (any name, with a top-level ``names:``): ``data.yaml`` if present.

    Raises:
        ValueError: several candidate YAML files and none is ``data.yaml``; the message lists them.
    """
    candidates = sorted(
        p
        for p in root.iterdir()
        if p.is_file()
        and p.suffix.lower() in (".yaml", ".yml")
        and re.search(r"^names\s*:", p.read_text(encoding="utf-8", errors="replace"), re.MULTILINE)
    )
    for preferred in ("data.yaml", "data.yml"):
        if root / preferred in candidates:
            return root / preferred
    if len(candidates) > 1:
        raise ValueError(
            f"{root}: several dataset YAML files ({', '.join(p.name for p in candidates)}); name one"
        )
    return candidates[0] if candidates else None


def _read_class_names(root: Path, yaml_path: Path | None) -> list[str]:
    classes_txt = root / "classes.txt"
    if classes_txt.is_file():
        names = [line.strip() for line in classes_txt.read_text(encoding="utf-8").splitlines()]
        return [name for name in names if name]
    if yaml_path is not None:
        return parse_yaml_names(yaml_path.read_text(encoding="utf-8"))
    raise ValueError(f"{root}: no classes.txt and no dataset YAML (a .yaml with names:) for the class names")


def _labels_dir_for(images_dir: Path) -> Path:
    """Ultralytics' rule: the labels folder is the images folder with its last ``images`` part -> ``labels``."""
    parts = list(images_dir.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts)
    raise ValueError(f"{images_dir}: an images folder needs an 'images' part in its path to find its labels")


def _split_dirs(root: Path, yaml_path: Path | None, split: str | None) -> tuple[Path, Path]:
    """Images and labels folders of ``split`` (None: every image under ``root/images``)."""
    if split is None:
        return root / "images", root / "labels"
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    paths = parse_yaml_paths(yaml_path.read_text(encoding="utf-8")) if yaml_path is not None else {}
    if split not in paths:
        if (root / "images" / split).is_dir():
            return root / "images" / split, root / "labels" / split
        where = yaml_path.name if yaml_path is not None else "the folder (no dataset YAML)"
        raise ValueError(f"{where} has no {split!r} split; it has {', '.join(sorted(paths)) or 'none'}")
    # `path` is often relative to Ultralytics' own datasets folder (../datasets/coco8): when it does not
    # exist as written, the YAML's own folder is the dataset root, as the folder ships
    base = root
    if "path" in paths:
        declared = Path(paths["path"])
        declared = declared if declared.is_absolute() else root / declared
        base = declared if declared.is_dir() else root
    images_dir = base / paths[split]
    if not images_dir.is_dir():
        raise ValueError(f"{split} split: {images_dir} is not a folder (image list files are not supported)")
    return images_dir, _labels_dir_for(images_dir)


def _oriented_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` as displayed, i.e. swapped for EXIF orientations that rotate by 90 degrees."""
    with Image.open(path) as image:
        width, height = image.size
        if image.getexif().get(_EXIF_ORIENTATION) in _ROTATED_ORIENTATIONS:
            return height, width
    return width, height


def _read_labels(path: Path, size: tuple[int, int], num_classes: int) -> tuple[Tensor, Tensor]:
    """``class cx cy w h`` lines (normalised) -> boxes ``(G, 4)`` xyxy pixels, class ids ``(G,)``."""
    rows: list[list[float]] = []
    classes: list[int] = []
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5:
            raise ValueError(f"{path}:{number}: expected 'class cx cy w h', got {line!r}")
        try:
            class_id = int(parts[0])
            cx, cy, w, h = (float(p) for p in parts[1:])
        except ValueError:
            raise ValueError(f"{path}:{number}: not numbers: {line!r}") from None
        if not 0 <= class_id < num_classes or not all(map(math.isfinite, (cx, cy, w, h))):
            raise ValueError(f"{path}:{number}: class id outside 0..{num_classes - 1} or bad value")
        width, height = size
        rows.append(
            [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
        )
        classes.append(class_id)
    boxes = torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)
    return boxes, torch.tensor(classes, dtype=torch.int64)


def read_yolo_dataset(root: Path | str, split: str | None = None) -> YoloDataset:
    """Read a YOLO-format dataset folder (or its dataset YAML).

    Layout: ``root/images/**/<name>.<jpg|png|...>``, labels at the mirrored path
    ``root/labels/**/<name>.txt`` (a missing label file means no objects), one ``class cx cy w h`` line
    per object with coordinates normalised to ``[0, 1]``; class names from ``root/classes.txt`` (one per
    line) or the dataset YAML's ``names:`` (a list or an ``index: name`` mapping). The YAML may have any
    name (``coco8.yaml``; ``data.yaml`` wins when there are several) or be given as ``root`` itself.

    With ``split`` (``train``, ``val`` or ``test``) only that split is read: the folder the YAML's key of
    that name gives, relative to its ``path`` (or to the YAML's folder when ``path`` does not exist there),
    labels in the same folder with ``images`` -> ``labels``; without a YAML, ``images/<split>``.

    Returns:
        class names and one :class:`YoloSample` per image, sorted by path.

    Raises:
        ValueError: no class names, no images, an unknown split, or a malformed label line (file and line).
    """
    root = Path(root)
    yaml_path = root if root.is_file() else find_dataset_yaml(root)
    root = root.parent if root.is_file() else root
    class_names = _read_class_names(root, yaml_path)
    images_dir, labels_dir = _split_dirs(root, yaml_path, split)
    image_paths = sorted(
        p for p in images_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not image_paths:
        raise ValueError(f"{images_dir}: no images")
    samples = []
    for image_path in image_paths:
        size = _oriented_size(image_path)
        label_path = (labels_dir / image_path.relative_to(images_dir)).with_suffix(".txt")
        boxes, class_ids = _read_labels(label_path, size, len(class_names))
        samples.append(YoloSample(image_path, boxes, class_ids, size))
    return YoloDataset(class_names, samples)


# --- COCO-JSON datasets --------------------------------------------------------------------------


def _coco_number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what}: expected a number, got {value!r}")
    return float(value)


def read_coco_dataset(annotations: Path | str, images: Path | str) -> YoloDataset:
    """Read a COCO-JSON detection dataset: ``annotations`` (``instances_val2017.json`` style) and the
    folder its ``file_name`` entries are relative to.

    Classes are the ``categories`` sorted by ``id`` (class id = position, names must be unique); boxes
    are ``bbox`` ``[x, y, width, height]`` in pixels, converted to xyxy. Crowd annotations
    (``iscrowd: 1``) are left out (pycocotools would ignore detections matching them; here they are simply
    not ground truth). An image without annotations counts as an image without objects. The image size is
    the JSON's ``width``/``height`` when given, else read from the file (after EXIF orientation).

    Returns:
        class names and one sample per image, sorted by path.

    Raises:
        ValueError: unreadable JSON, a missing key, an annotation naming an unknown image or category, an
            image file that is not there (the first few are named), or no images.
    """
    annotations, images = Path(annotations), Path(images)
    try:
        data = json.loads(annotations.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{annotations}: not a readable COCO JSON file ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        raise ValueError(f"{annotations}: a COCO JSON file needs 'images' and 'categories' lists")
    try:
        categories = sorted(data["categories"], key=lambda c: int(c["id"]))
        names = [str(c["name"]) for c in categories]
        category_index = {int(c["id"]): i for i, c in enumerate(categories)}
        entries = {int(i["id"]): i for i in data["images"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"{annotations}: every category needs an id and a name, every image an id ({exc})"
        ) from None
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{annotations}: duplicate category names {duplicates}")
    if not entries:
        raise ValueError(f"{annotations}: no images")
    per_image: dict[int, tuple[list[list[float]], list[int]]] = {i: ([], []) for i in entries}
    for number, ann in enumerate(data.get("annotations") or []):
        where = f"{annotations.name}: annotation {ann.get('id', number) if isinstance(ann, dict) else number}"
        if (
            not isinstance(ann, dict)
            or "bbox" not in ann
            or "image_id" not in ann
            or "category_id" not in ann
        ):
            raise ValueError(f"{where}: needs image_id, category_id and bbox")
        if ann.get("iscrowd"):
            continue
        if ann["image_id"] not in per_image:
            raise ValueError(f"{where}: image_id {ann['image_id']} is not in images")
        if ann["category_id"] not in category_index:
            raise ValueError(f"{where}: category_id {ann['category_id']} is not in categories")
        bbox = ann["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise ValueError(f"{where}: bbox must be [x, y, width, height], got {bbox!r}")
        x, y, w, h = (_coco_number(v, where) for v in bbox)
        per_image[ann["image_id"]][0].append([x, y, x + w, y + h])
        per_image[ann["image_id"]][1].append(category_index[ann["category_id"]])
    missing = sorted(
        str(e.get("file_name"))
        for e in entries.values()
        if not (images / str(e.get("file_name", ""))).is_file()
    )
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ValueError(
            f"{images}: {len(missing)} images of {annotations.name} are missing: {', '.join(missing[:5])}{more}"
        )
    samples = []
    for image_id, entry in entries.items():
        path = images / str(entry["file_name"])
        if isinstance(entry.get("width"), int) and isinstance(entry.get("height"), int):
            size = (int(entry["width"]), int(entry["height"]))
        else:
            size = _oriented_size(path)
        rows, classes = per_image[image_id]
        boxes = torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)
        samples.append(YoloSample(path, boxes, torch.tensor(classes, dtype=torch.int64), size))
    samples.sort(key=lambda sample: sample.image_path)
    return YoloDataset(names, samples)
