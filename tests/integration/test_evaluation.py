"""`fovea detect eval`: mAP of the default detector on a tiny hand-labelled YOLO dataset, via the gateway."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fovea.convert.samples import sample
from fovea.detection.tools.evaluation import evaluate_folder

from .conftest import Stack

pytestmark = pytest.mark.integration

# Class order unlike COCO's (classes are matched by name); "unicorn" has no boxes and no detector class.
CLASSES = ["giraffe", "dog", "person", "bicycle", "horse", "zebra", "unicorn"]
# Boxes drawn by eye on the photos, xyxy pixels (checked by drawing them), per image (width, height).
LABELS = {
    "dog": ((768, 576), [("dog", (128, 220, 315, 540)), ("bicycle", (120, 125, 570, 465))]),
    "person": (
        (640, 424),
        [("person", (190, 95, 275, 380)), ("dog", (67, 266, 201, 348)), ("horse", (406, 138, 604, 343))],
    ),
    "giraffe": ((500, 500), [("giraffe", (166, 30, 453, 444)), ("zebra", (307, 203, 422, 444))]),
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("yolo")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    for name, ((width, height), boxes) in LABELS.items():
        shutil.copyfile(sample(name), root / "images" / f"{name}.jpg")
        lines = [
            f"{CLASSES.index(label)} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
            f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}"
            for label, (x1, y1, x2, y2) in boxes
        ]
        (root / "labels" / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_evaluate_folder(stack: Stack, dataset: Path) -> None:
    with stack.client() as client:
        report = evaluate_folder(client, dataset, model="", min_score=0.001, chunk=2)  # 2 chunks
    assert report.model == "nanodet_int8" and report.images == 3 and report.boxes == 7
    assert report.map50 > 0.5, report.as_text()
    assert 0.0 < report.map50_95 <= report.map50
    per_class = {c.name: c for c in report.per_class}
    assert set(per_class) == set(CLASSES) - {"unicorn"}  # AP is undefined without ground truth
    assert per_class["dog"].boxes == 2 and per_class["giraffe"].ap50 > 0.9
    assert report.warnings == [
        "dataset class 'unicorn' is not a class of detector 'nanodet_int8': it has no boxes"
    ]
    text = report.as_text()
    assert "mAP@0.5" in text and "giraffe" in text and "warning: dataset class 'unicorn'" in text


def test_cli_eval_json(stack: Stack, dataset: Path) -> None:
    env = {**os.environ, "FOVEA_GATEWAY": stack.gateway, "FOVEA_API_KEY": stack.detect_key}
    proc = subprocess.run(
        [sys.executable, "-m", "fovea", "detect", "eval", str(dataset), "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["model"] == "nanodet_int8" and data["images"] == 3 and data["map50"] > 0.5
    assert {c["name"] for c in data["per_class"]} == set(CLASSES) - {"unicorn"}
    bad = subprocess.run(
        [sys.executable, "-m", "fovea", "detect", "eval", str(dataset), "--model", "nope"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 1 and "unknown detector 'nope'" in bad.stderr


@pytest.fixture(scope="module")
def coco_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same photos and boxes as COCO JSON (category ids from 11, in another order; file names in a
    subfolder), plus a crowd box that must not count."""
    root = tmp_path_factory.mktemp("coco")
    (root / "val").mkdir()
    categories = [{"id": 11 + i, "name": name} for i, name in enumerate(reversed(CLASSES))]
    ids = {c["name"]: c["id"] for c in categories}
    images, annotations = [], []
    for image_id, (name, ((width, height), boxes)) in enumerate(LABELS.items(), start=1):
        shutil.copyfile(sample(name), root / "val" / f"{name}.jpg")
        images.append({"id": image_id, "file_name": f"val/{name}.jpg", "width": width, "height": height})
        for label, (x1, y1, x2, y2) in boxes:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": ids[label],
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "iscrowd": 0,
                }
            )
    annotations.append(
        {"id": 99, "image_id": 1, "category_id": ids["zebra"], "bbox": [0, 0, 50, 50], "iscrowd": 1}
    )
    path = root / "instances_val.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path, root


def test_coco_json_gives_the_yolo_folders_numbers(
    stack: Stack, dataset: Path, coco_dataset: tuple[Path, Path]
) -> None:
    annotations, images = coco_dataset
    with stack.client() as client:
        yolo = evaluate_folder(client, dataset, model="", min_score=0.001)
    env = {**os.environ, "FOVEA_GATEWAY": stack.gateway, "FOVEA_API_KEY": stack.detect_key}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fovea",
            "detect",
            "eval",
            "--coco",
            str(annotations),
            "--images",
            str(images),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["images"] == 3 and data["boxes"] == 7 and data["images_per_s"] > 0
    assert data["map50"] == pytest.approx(yolo.map50, abs=1e-3)  # YOLO labels are rounded to 6 decimals
    assert data["map50_95"] == pytest.approx(yolo.map50_95, abs=1e-3)
    per_class = {c["name"]: c["ap50"] for c in data["per_class"]}
    assert per_class == pytest.approx({c.name: c.ap50 for c in yolo.per_class}, abs=1e-3)


def test_no_class_in_common_is_refused(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    shutil.copyfile(sample("dog"), tmp_path / "images" / "dog.jpg")
    (tmp_path / "labels" / "dog.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "classes.txt").write_text("widget\ngadget\n")
    with stack.client() as client, pytest.raises(ValueError, match="none of the dataset's classes"):
        evaluate_folder(client, tmp_path, model="")


def test_ultralytics_folder_as_it_ships(stack: Stack, tmp_path: Path) -> None:
    """coco8's layout: ``coco8.yaml`` (``path`` pointing at Ultralytics' own datasets folder, ``names`` as an
    index mapping in COCO's order, underscores for spaces), ``images/{train,val}``, ``labels/{train,val}``."""
    names = json.loads(
        (Path(__file__).parents[2] / "model_repository" / "nanodet" / "fovea.json").read_text()
    )
    coco = [n.replace(" ", "_") for n in names["labels"]]  # "traffic_light": matched loosely
    yaml = [
        "path: ../datasets/coco8 # dataset root dir",
        "train: images/train",
        "val: images/val",
        "test: # optional",
    ]
    yaml += ["", "# Classes", "names:", *(f"  {i}: {n}" for i, n in enumerate(coco))]
    (tmp_path / "coco8.yaml").write_text("\n".join(yaml) + "\n")
    for split, photos in (("train", ["giraffe"]), ("val", ["dog", "person"])):
        (tmp_path / "images" / split).mkdir(parents=True)
        (tmp_path / "labels" / split).mkdir(parents=True)
        for name in photos:
            (width, height), boxes = LABELS[name]
            shutil.copyfile(sample(name), tmp_path / "images" / split / f"{name}.jpg")
            lines = [
                f"{coco.index(label)} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
                f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}"
                for label, (x1, y1, x2, y2) in boxes
            ]
            (tmp_path / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "FOVEA_GATEWAY": stack.gateway, "FOVEA_API_KEY": stack.detect_key}
    proc = subprocess.run(
        [sys.executable, "-m", "fovea", "detect", "eval", str(tmp_path), "--split", "val", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["images"] == 2 and data["boxes"] == 5 and data["map50"] > 0.5
    assert {c["name"] for c in data["per_class"]} == {"dog", "bicycle", "person", "horse"}
    assert data["warnings"] == [] and data["images_per_s"] > 0
