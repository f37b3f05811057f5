import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fovea.contracts.detector import SPEC_FILENAME, DetectorSpec, HeadFamily, load_spec


def _spec_dict(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "yolov8n",
        "family": "yolov8",
        "input_size": [640, 480],
        "labels": ["person", "car"],
        "input_name": "images",
        "output_names": ["output0"],
    }
    base.update(overrides)
    return base


def test_minimal_spec_and_defaults() -> None:
    spec = DetectorSpec.model_validate(_spec_dict())
    assert spec.family is HeadFamily.YOLOV8
    assert spec.input_size == (640, 480)
    assert spec.channel_order == "RGB"
    assert spec.scale == pytest.approx(1 / 255)
    assert spec.mean == (0.0, 0.0, 0.0) and spec.std == (1.0, 1.0, 1.0)
    assert spec.letterbox is True and spec.pad_value == 114.0
    assert spec.center_offset == 0.0 and spec.decoded is False
    assert spec.num_classes == 2


def test_full_nanodet_spec() -> None:
    spec = DetectorSpec.model_validate(
        _spec_dict(
            family="nanodet",
            channel_order="BGR",
            scale=1.0,
            mean=[103.53, 116.28, 123.675],
            std=[57.375, 57.12, 58.395],
            pad_value=0,
            strides=[8, 16, 32, 64],
            reg_max=7,
            center_offset=0.5,
            letterbox=False,
        )
    )
    assert spec.family is HeadFamily.NANODET and spec.reg_max == 7 and spec.strides == [8, 16, 32, 64]


def test_spec_is_frozen() -> None:
    spec = DetectorSpec.model_validate(_spec_dict())
    with pytest.raises(ValidationError):
        spec.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"labels": []}, "labels must not be empty"),
        ({"labels": ["a", " "]}, "empty names"),
        ({"mean": [0.0, 0.0]}, "exactly 3 values"),
        ({"std": [1.0, 0.0, 1.0]}, "std values must all be > 0"),
        ({"input_size": [0, 480]}, "input_size must be positive"),
        ({"pad_value": 300}, "less than or equal to 255"),
        ({"scale": 0}, "greater than 0"),
        ({"channel_order": "RBG"}, "'RGB' or 'BGR'"),
        ({"family": "yolov9"}, "nanodet"),
        ({"typo_field": 1}, "Extra inputs are not permitted"),
        ({"family": "nanodet", "strides": [8, 16]}, "nanodet needs reg_max"),
        ({"family": "nanodet", "reg_max": 7}, "nanodet needs strides"),
        ({"family": "nanodet", "reg_max": 7, "strides": [8, 16], "output_names": ["a", "b"]}, "2 per stride"),
        ({"family": "yolo-grid"}, "yolo-grid needs anchors"),
        ({"family": "yolox"}, "yolox with decoded=false needs strides"),
        ({"strides": [8, 16], "anchors": [[[10, 13]]]}, "anchors has 1 levels but strides has 2"),
        ({"anchors": [[[10, -1]]]}, "anchor sizes must be positive"),
        ({"strides": [8, 0]}, "strides must be positive"),
        ({"output_names": ["a", "b"]}, "exactly 1 output name"),
        ({"output_names": []}, "at least 1 item"),
        ({"family": "end2end", "output_names": ["a", "b"]}, "end2end needs exactly 1 output name"),
        (
            {"family": "detr", "output_names": ["a", "b", "c"]},
            r"detr needs 1 output \(boxes \| scores\) or 2",
        ),
        ({"family": "nms-in-graph"}, r"nms-in-graph needs 4 outputs \(count, boxes, scores, classes\) or 3"),
        ({"family": "end2end", "box_format": "xywh"}, "'xyxy' or 'cxcywh'"),
        ({"family": "detr", "score_activation": "relu"}, "'none', 'sigmoid' or 'softmax'"),
    ],
)
def test_invalid_specs_have_clear_messages(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DetectorSpec.model_validate(_spec_dict(**overrides))


def test_validation_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        DetectorSpec.model_validate(_spec_dict(labels=[]))


def test_load_spec_from_directory_or_file(tmp_path: Path) -> None:
    (tmp_path / SPEC_FILENAME).write_text(
        json.dumps(_spec_dict(family="yolo-grid", anchors=[[[20, 40], [50, 25]]])), encoding="utf-8"
    )
    from_dir = load_spec(tmp_path)
    from_file = load_spec(tmp_path / SPEC_FILENAME)
    assert from_dir == from_file
    assert from_dir.anchors == [[(20.0, 40.0), (50.0, 25.0)]]


def test_load_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_spec(tmp_path)
    (tmp_path / SPEC_FILENAME).write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="Invalid JSON"):
        load_spec(tmp_path)


def test_end_to_end_families_and_their_fields() -> None:
    e2e = DetectorSpec.model_validate(
        _spec_dict(family="end2end", boxes_normalised=True, box_format="cxcywh")
    )
    assert e2e.family.end_to_end and e2e.boxes_normalised and e2e.box_format == "cxcywh"
    detr = DetectorSpec.model_validate(
        _spec_dict(family="detr", output_names=["b", "s"], score_activation="sigmoid")
    )
    assert detr.family.end_to_end and detr.score_activation == "sigmoid"
    nms = DetectorSpec.model_validate(_spec_dict(family="nms-in-graph", output_names=["n", "b", "s", "c"]))
    assert nms.family.end_to_end
    assert not any(
        HeadFamily(f).end_to_end for f in ("nanodet", "yolo-grid", "yolov5", "yolox", "yolov8", "candidates")
    )
    # defaults leave the other families as they were
    plain = DetectorSpec.model_validate(_spec_dict())
    assert plain.box_format == "xyxy" and not plain.boxes_normalised and plain.score_activation == "none"
