"""The ``import-onnx`` options' values (fovea.convert.onnx_import.options): model names, sizes, numbers,
anchors, label files."""

from __future__ import annotations

from pathlib import Path

import pytest

from fovea.convert.onnx_import.options import (
    parse_anchors,
    parse_floats,
    parse_input_size,
    parse_strides,
    read_labels,
    validate_model_name,
)

LABELS = ["widget", "gadget"]


@pytest.mark.parametrize("name", ["", "-x", "a/b", "..", "my model", "x" * 65, "ünïcode"])
def test_bad_names(name: str) -> None:
    with pytest.raises(ValueError, match="not usable as a Triton model directory"):
        validate_model_name(name)


def test_good_names() -> None:
    for name in ("toy", "yolov8n_coco.v2", "A-1", "x" * 64):
        assert validate_model_name(name) == name


def test_parsers() -> None:
    assert parse_input_size("640") == (640, 640)
    assert parse_input_size("640x480") == (640, 480)
    assert parse_floats("0.485, 0.456,0.406", 3, "--mean") == (0.485, 0.456, 0.406)
    assert parse_strides("8,16,32") == [8, 16, 32]
    assert parse_anchors("[[[10, 13], [16, 30]]]") == [[(10.0, 13.0), (16.0, 30.0)]]
    for bad, fn in [
        ("0", parse_input_size),
        ("640x", parse_input_size),
        ("1,2", lambda t: parse_floats(t, 3, "--mean")),
        ("8,-16", parse_strides),
        ("[[10, 13]]", parse_anchors),
    ]:
        with pytest.raises(ValueError):
            fn(bad)  # type: ignore[operator]


def test_labels_from_lines_and_data_yaml(tmp_path: Path) -> None:
    lines = tmp_path / "labels.txt"
    lines.write_text("widget\n\ngadget \n")
    assert read_labels(lines) == LABELS
    yaml = tmp_path / "data.yaml"
    yaml.write_text("path: .\nnames:\n  0: widget\n  1: gadget\n")
    assert read_labels(yaml) == LABELS
    lines.write_text("a\nb\na\n")
    with pytest.raises(ValueError, match="duplicate class names \\['a'\\]"):
        read_labels(lines)
