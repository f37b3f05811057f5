"""``fovea.convert.labelled``: the labelled sample set, written as a YOLO folder and as COCO JSON, reads back
through ``fovea detect eval``'s own readers (``fovea.detection.core.mean_ap``) box for box."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image

from fovea.convert.labelled import LABELLED_SET, Boxes, write_labelled_set
from fovea.convert.samples import LABELLED_BOXES
from fovea.detection.core.mean_ap import YoloDataset, read_coco_dataset, read_yolo_dataset


def _stand_ins(tmp_path: Path, boxes: Boxes) -> dict[str, Path]:
    """A blank photo per name, a little larger than its boxes (the real ones are fetched from registries);
    JPEG and PNG, as the set has both."""
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = {}
    for i, (name, photo_boxes) in enumerate(boxes.items()):
        width = max(b[2] for _, b in photo_boxes) + 7
        height = max(b[3] for _, b in photo_boxes) + 5
        path = folder / f"{name}.{'jpg' if i % 2 else 'png'}"
        Image.new("RGB", (width, height), (90, 120, 150)).save(path)
        paths[name] = path
    return paths


def _by_photo(dataset: YoloDataset) -> dict[str, Counter[tuple[str, tuple[int, ...]]]]:
    return {
        sample.image_path.stem: Counter(
            (dataset.class_names[c], tuple(round(v) for v in box))
            for box, c in zip(sample.boxes.tolist(), sample.class_ids.tolist(), strict=True)
        )
        for sample in dataset.samples
    }


def test_the_set_is_larger_than_twelve_boxes_and_keeps_them() -> None:
    assert sum(map(len, LABELLED_SET.values())) >= 30
    assert len(LABELLED_SET) >= 8
    for name, boxes in LABELLED_BOXES.items():
        assert set(boxes) <= set(LABELLED_SET[name])


def test_folder_and_json_read_back_box_for_box(tmp_path: Path) -> None:
    photos = _stand_ins(tmp_path, LABELLED_SET)
    data_yaml, coco = write_labelled_set(tmp_path / "set", photo=photos.__getitem__)
    folder = read_yolo_dataset(data_yaml.parent)
    split = read_yolo_dataset(data_yaml, "val")  # as `fovea detect eval DIR --split val` reads it
    from_json = read_coco_dataset(coco, tmp_path / "set" / "images")
    expected = {
        photos[name].stem: Counter((cls, tuple(box)) for cls, box in boxes)
        for name, boxes in LABELLED_SET.items()
    }
    classes = sorted({cls for boxes in LABELLED_SET.values() for cls, _ in boxes})
    for dataset in (folder, split, from_json):
        assert dataset.class_names == classes
        assert len(dataset.samples) == len(LABELLED_SET)
        assert sum(len(s.boxes) for s in dataset.samples) == sum(map(len, LABELLED_SET.values()))
        assert _by_photo(dataset) == expected
    for a, b in zip(folder.samples, from_json.samples, strict=True):
        assert a.image_size == b.image_size
        assert torch.allclose(a.boxes, b.boxes, atol=0.01)


def test_a_box_outside_its_photo_is_refused(tmp_path: Path) -> None:
    boxes = {"dog": [("dog", (0, 0, 50, 60))]}
    photos = _stand_ins(tmp_path, boxes)
    with pytest.raises(ValueError, match="outside"):
        write_labelled_set(tmp_path / "set", {"dog": [("dog", (0, 0, 58, 60))]}, photos.__getitem__)
