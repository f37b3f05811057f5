import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from fovea.contracts.detector import parse_yaml_names
from fovea.detection.core.mean_ap import evaluate, read_coco_dataset, read_yolo_dataset

NAMES = ["cat", "dog", "bird"]
SIZES = [(200, 200), (200, 200)]
# image 0: a cat and a dog; image 1: a dog
GT = [
    (torch.tensor([[0.0, 0.0, 100.0, 100.0], [100.0, 100.0, 180.0, 160.0]]), torch.tensor([0, 1])),
    (torch.tensor([[10.0, 20.0, 110.0, 120.0]]), torch.tensor([1])),
]


def _perfect() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    return [(boxes, torch.full((len(ids),), 0.9), ids) for boxes, ids in GT]


def test_perfect_predictions_score_one() -> None:
    result = evaluate(GT, _perfect(), NAMES, SIZES)
    assert result.map50 == pytest.approx(1.0)
    assert result.map50_95 == pytest.approx(1.0)
    # "bird" has no ground truth: AP undefined, left out
    assert result.per_class == {"cat": pytest.approx((1.0, 1.0)), "dog": pytest.approx((1.0, 1.0))}


def test_one_shifted_box() -> None:
    # The cat box shifted 20 px right: IoU = (80 * 100) / (120 * 100) = 0.667, a match at the IoU
    # thresholds 0.50, 0.55, 0.60, 0.65 and a miss at 0.70 ... 0.95, so cat AP@[.5:.95] = 4 / 10 = 0.4,
    # AP@.5 = 1. Dog stays perfect: mAP@.5 = 1, mAP@[.5:.95] = (0.4 + 1) / 2 = 0.7.
    predictions = _perfect()
    shifted = predictions[0][0].clone()
    shifted[0] += torch.tensor([20.0, 0.0, 20.0, 0.0])
    predictions[0] = (shifted, predictions[0][1], predictions[0][2])
    result = evaluate(GT, predictions, NAMES, SIZES)
    assert result.per_class["cat"] == pytest.approx((1.0, 0.4))
    assert result.map50 == pytest.approx(1.0)
    assert result.map50_95 == pytest.approx(0.7)


def test_box_below_iou_half_halves_recall() -> None:
    # The second dog box shifted 50 px right: IoU = 50 / 150 = 0.33, a false positive at every threshold.
    # Dog: 2 ground truths, the true positive comes first (score 0.9 > 0.8), so precision is 1 up to recall
    # 0.5 and recall never exceeds 0.5: of COCO's 101 recall points 0, 0.01, ..., 1 the 51 up to 0.5 have
    # precision 1, the rest 0 -> AP = 51 / 101 at every threshold. Cat: 1.
    predictions = _perfect()
    predictions[1] = (torch.tensor([[60.0, 20.0, 160.0, 120.0]]), torch.tensor([0.8]), torch.tensor([1]))
    result = evaluate(GT, predictions, NAMES, SIZES)
    assert result.per_class["dog"] == pytest.approx((51 / 101, 51 / 101))
    assert result.map50 == pytest.approx((1 + 51 / 101) / 2)
    assert result.map50_95 == pytest.approx((1 + 51 / 101) / 2)


def test_no_predictions_and_bad_input() -> None:
    empty = [(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64))] * 2
    result = evaluate(GT, empty, NAMES, SIZES)
    assert (result.map50, result.map50_95) == (0.0, 0.0)
    assert result.per_class == {"cat": (0.0, 0.0), "dog": (0.0, 0.0)}
    with pytest.raises(ValueError, match="one entry per image"):
        evaluate(GT, _perfect()[:1], NAMES, SIZES)
    with pytest.raises(ValueError, match="no ground-truth"):
        evaluate([(torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64))], empty[:1], NAMES, SIZES[:1])
    with pytest.raises(ValueError, match="class id 7"):
        evaluate(GT, [(GT[0][0], torch.ones(2), torch.tensor([0, 7])), _perfect()[1]], NAMES, SIZES)


# --- YOLO-format datasets ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "names: [cat, 'hot dog', \"bird\"]\nnc: 3\n",
        "train: images\nnames: {0: cat, 1: hot dog, 2: bird}  # comment\n",
        "path: .\nnames:\n  0: cat\n  1: 'hot dog'\n  # a comment\n  2: bird\nnc: 3\n",
        "names:\n- cat\n- hot dog # trailing\n- bird\ntrain: x\n",
        "names:\n  2: bird\n  0: cat\n  1: hot dog\n",
    ],
)
def test_parse_yaml_names_forms(text: str) -> None:
    assert parse_yaml_names(text) == ["cat", "hot dog", "bird"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nc: 3\n", "no top-level 'names:'"),
        ("names: cat\n", "unsupported names value"),
        ("names:\n  0: cat\n  2: bird\n", r"indices must be 0\.\.1"),
        ("names:\nnc: 2\n", "empty"),
    ],
)
def test_parse_yaml_names_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_yaml_names(text)


def _write_image(path: Path, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size).save(path)


def test_read_yolo_dataset_with_classes_txt(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("cat\ndog\n\n", encoding="utf-8")
    _write_image(tmp_path / "images" / "a.jpg", (200, 100))
    _write_image(tmp_path / "images" / "sub" / "b.png", (50, 50))
    (tmp_path / "labels" / "sub").mkdir(parents=True)
    # cx 0.5, cy 0.5, w 0.5, h 0.2 on 200 x 100 -> x 50..150, y 40..60
    (tmp_path / "labels" / "a.txt").write_text("1 0.5 0.5 0.5 0.2\n\n0 0.1 0.1 0.2 0.2\n", encoding="utf-8")
    dataset = read_yolo_dataset(tmp_path)
    assert dataset.class_names == ["cat", "dog"]
    assert [s.image_path.name for s in dataset.samples] == ["a.jpg", "b.png"]
    first, second = dataset.samples
    assert first.image_size == (200, 100)
    assert torch.allclose(first.boxes, torch.tensor([[50.0, 40.0, 150.0, 60.0], [0.0, 0.0, 40.0, 20.0]]))
    assert first.class_ids.tolist() == [1, 0] and first.class_ids.dtype == torch.int64
    # no label file: an image without objects
    assert second.boxes.shape == (0, 4) and second.class_ids.shape == (0,)


def test_read_yolo_dataset_with_data_yaml_and_errors(tmp_path: Path) -> None:
    (tmp_path / "data.yaml").write_text("names: [cat]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no images"):
        read_yolo_dataset(tmp_path)
    _write_image(tmp_path / "images" / "a.jpg", (10, 10))
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.5\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"a\.txt:1: expected 'class cx cy w h'"):
        read_yolo_dataset(tmp_path)
    (tmp_path / "labels" / "a.txt").write_text("1 0.5 0.5 0.5 0.5\n", encoding="utf-8")
    with pytest.raises(ValueError, match="class id outside"):
        read_yolo_dataset(tmp_path)
    (tmp_path / "data.yaml").unlink()
    with pytest.raises(ValueError, match="no classes.txt and no dataset YAML"):
        read_yolo_dataset(tmp_path)


def test_read_yolo_dataset_feeds_evaluate(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("cat\n", encoding="utf-8")
    _write_image(tmp_path / "images" / "a.jpg", (100, 100))
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.4 0.4\n", encoding="utf-8")
    dataset = read_yolo_dataset(tmp_path)
    gt = [(s.boxes, s.class_ids) for s in dataset.samples]
    predictions = [(s.boxes, torch.ones(len(s.class_ids)), s.class_ids) for s in dataset.samples]
    result = evaluate(gt, predictions, dataset.class_names, [s.image_size for s in dataset.samples])
    assert result.map50_95 == pytest.approx(1.0)


def test_read_yolo_dataset_uses_exif_oriented_size(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("cat\n", encoding="utf-8")
    (tmp_path / "images").mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 200 x 100, displayed rotated by 90 degrees: 100 x 200
    Image.new("RGB", (200, 100)).save(tmp_path / "images" / "r.jpg", exif=exif)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "r.txt").write_text("0 0.5 0.5 1 1\n", encoding="utf-8")
    (sample,) = read_yolo_dataset(tmp_path).samples
    assert sample.image_size == (100, 200)
    assert torch.equal(sample.boxes, torch.tensor([[0.0, 0.0, 100.0, 200.0]]))


def _ultralytics_folder(root: Path) -> None:
    """A coco8-style folder as Ultralytics ships it: ``coco8.yaml`` beside ``images/{train,val}``."""
    (root / "coco8.yaml").write_text(
        "# Ultralytics COCO8\npath: ../datasets/coco8 # dataset root dir\ntrain: images/train\n"
        "val: images/val # 4 images\ntest: # optional\n\nnames:\n  0: person\n  1: bicycle\n",
        encoding="utf-8",
    )
    for split, names in (("train", ["t1", "t2"]), ("val", ["v1"])):
        (root / "labels" / split).mkdir(parents=True)
        for name in names:
            _write_image(root / "images" / split / f"{name}.jpg", (40, 20))
            (root / "labels" / split / f"{name}.txt").write_text("1 0.5 0.5 0.5 0.5\n", encoding="utf-8")


def test_read_ultralytics_folder_as_it_ships(tmp_path: Path) -> None:
    _ultralytics_folder(tmp_path)
    everything = read_yolo_dataset(tmp_path)
    assert everything.class_names == ["person", "bicycle"]
    assert [s.image_path.name for s in everything.samples] == ["t1.jpg", "t2.jpg", "v1.jpg"]
    val = read_yolo_dataset(tmp_path, split="val")
    assert [s.image_path.name for s in val.samples] == ["v1.jpg"]
    # cx 0.5, cy 0.5, w 0.5, h 0.5 on 40 x 20 -> x 10..30, y 5..15
    assert torch.allclose(val.samples[0].boxes, torch.tensor([[10.0, 5.0, 30.0, 15.0]]))
    assert [s.image_path.name for s in read_yolo_dataset(tmp_path / "coco8.yaml", split="train").samples] == [
        "t1.jpg",
        "t2.jpg",
    ]
    with pytest.raises(ValueError, match="coco8.yaml has no 'test' split; it has path, train, val"):
        read_yolo_dataset(tmp_path, split="test")
    with pytest.raises(ValueError, match="split must be one of train, val, test"):
        read_yolo_dataset(tmp_path, split="valid")


def test_dataset_yaml_choice_and_split_without_yaml(tmp_path: Path) -> None:
    _ultralytics_folder(tmp_path)
    (tmp_path / "other.yaml").write_text("names: [a, b]\n", encoding="utf-8")
    (tmp_path / "notes.yaml").write_text("author: me\n", encoding="utf-8")  # no names: not a dataset YAML
    with pytest.raises(ValueError, match=r"several dataset YAML files \(coco8.yaml, other.yaml\)"):
        read_yolo_dataset(tmp_path)
    (tmp_path / "other.yaml").unlink()
    (tmp_path / "coco8.yaml").unlink()
    (tmp_path / "classes.txt").write_text("person\nbicycle\n", encoding="utf-8")
    assert len(read_yolo_dataset(tmp_path, split="train").samples) == 2  # images/train, labels/train


def _coco(tmp_path: Path, **changes: object) -> Path:
    data = {
        # category ids need not start at 0 or be contiguous: classes are the categories sorted by id
        "categories": [{"id": 18, "name": "dog"}, {"id": 1, "name": "person"}],
        "images": [
            {"id": 7, "file_name": "b.jpg", "width": 200, "height": 100},
            {"id": 3, "file_name": "sub/a.jpg"},  # no size: read from the file
            {"id": 9, "file_name": "empty.jpg", "width": 40, "height": 40},  # no annotations
        ],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 18, "bbox": [10, 20, 30, 40], "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 5, 5]},
            {"id": 3, "image_id": 3, "category_id": 1, "bbox": [1.5, 2.5, 10, 10]},
            {"id": 4, "image_id": 3, "category_id": 18, "bbox": [0, 0, 50, 50], "iscrowd": 1},  # left out
        ],
        **changes,
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_read_coco_dataset(tmp_path: Path) -> None:
    for name, size in (("b.jpg", (200, 100)), ("sub/a.jpg", (60, 30)), ("empty.jpg", (40, 40))):
        _write_image(tmp_path / "images" / name, size)
    dataset = read_coco_dataset(_coco(tmp_path), tmp_path / "images")
    assert dataset.class_names == ["person", "dog"]  # ids 1, 18
    assert [s.image_path.relative_to(tmp_path / "images").as_posix() for s in dataset.samples] == [
        "b.jpg",
        "empty.jpg",
        "sub/a.jpg",
    ]
    b, empty, a = dataset.samples
    # [x, y, w, h] = [10, 20, 30, 40] -> xyxy [10, 20, 40, 60]
    assert b.boxes.tolist() == [[10.0, 20.0, 40.0, 60.0], [0.0, 0.0, 5.0, 5.0]] and b.class_ids.tolist() == [
        1,
        0,
    ]
    assert b.image_size == (200, 100) and a.image_size == (60, 30)
    assert a.boxes.tolist() == [[1.5, 2.5, 11.5, 12.5]] and a.class_ids.tolist() == [
        0
    ]  # the crowd box is out
    assert empty.boxes.shape == (0, 4)
    gt = [(s.boxes, s.class_ids) for s in dataset.samples]
    predictions = [(s.boxes, torch.ones(len(s.class_ids)), s.class_ids) for s in dataset.samples]
    result = evaluate(gt, predictions, dataset.class_names, [s.image_size for s in dataset.samples])
    assert result.map50_95 == pytest.approx(1.0) and set(result.per_class) == {"person", "dog"}


def test_read_coco_dataset_errors(tmp_path: Path) -> None:
    images = tmp_path / "images"
    _write_image(images / "b.jpg", (200, 100))
    with pytest.raises(ValueError, match=r"2 images of instances.json are missing: empty.jpg, sub/a.jpg"):
        read_coco_dataset(_coco(tmp_path), images)
    one = [{"id": 7, "file_name": "b.jpg"}]
    with pytest.raises(ValueError, match="annotation 3: image_id 3 is not in images"):
        read_coco_dataset(_coco(tmp_path, images=one), images)
    bad = [{"id": 1, "image_id": 7, "category_id": 5, "bbox": [0, 0, 1, 1]}]
    with pytest.raises(ValueError, match="category_id 5 is not in categories"):
        read_coco_dataset(_coco(tmp_path, images=one, annotations=bad), images)
    with pytest.raises(ValueError, match="duplicate category names"):
        read_coco_dataset(
            _coco(tmp_path, categories=[{"id": 1, "name": "a"}, {"id": 2, "name": "a"}]), images
        )
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="not a readable COCO JSON"):
        read_coco_dataset(tmp_path / "broken.json", images)
