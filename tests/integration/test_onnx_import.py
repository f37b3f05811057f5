"""A user's ONNX detector, imported into the running stack's user repository, loaded and served.

The model is synthetic (tests/onnx_detectors.py): it always predicts the same two boxes, so the boxes the
gateway returns, mapped back to the photo's pixels, are known exactly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from onnx_detectors import (
    constant_detector,
    constant_outputs,
    detr_predictions,
    dfine_like,
    end2end_predictions,
    nms_in_graph_predictions,
    paddle_like,
    yolov8_predictions,
)

from fovea.client import FoveaClientError
from fovea.convert.samples import sample
from fovea.detection.v1 import detection_pb2

from .conftest import Stack

pytestmark = pytest.mark.integration

# dog.jpg is 768x576; letterboxed into 640x640: scale 640 / 768 = 5/6, resized 640x480, pad_y = (640 - 480) / 2
# = 80, so x_in = x * 5/6 and y_in = y * 5/6 + 80. The model predicts, in input pixels,
#   widget 0.9 at [100, 160, 300, 360] = original [120, 96, 360, 336]
#   gadget 0.8 at [400, 280, 600, 520] = original [480, 240, 720, 528]
INPUT_BOXES = [(100.0, 160.0, 300.0, 360.0), (400.0, 280.0, 600.0, 520.0)]
EXPECTED = [("widget", 0, 0.9, [120.0, 96.0, 360.0, 336.0]), ("gadget", 1, 0.8, [480.0, 240.0, 720.0, 528.0])]


def fovea(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    settings = stack.settings
    env = {
        **os.environ,
        "FOVEA_DATA_DIR": str(settings.data),
        "FOVEA_HOST": settings.host,
        "FOVEA_TRITON_GRPC_PORT": str(settings.triton_grpc_port),
    }
    return subprocess.run(
        [sys.executable, "-m", "fovea", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_imported_onnx_detector_is_served(stack: Stack, tmp_path: Path) -> None:
    predictions = yolov8_predictions(INPUT_BOXES, [0, 1], [0.9, 0.8], num_classes=2)
    source = constant_detector(tmp_path / "toy.onnx", predictions)
    labels = tmp_path / "labels.txt"
    labels.write_text("widget\ngadget\n")

    imported = fovea(stack, "models", "import-onnx", str(source), "--name", "toy_v8", "--family", "yolov8",
                     "--labels", str(labels))  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    model_dir = stack.settings.user_models / "toy_v8"
    assert (model_dir / "1" / "model.onnx").is_file()
    # The service sends the letterboxed uint8 image; the wrapped graph normalises it (4x fewer bytes).
    assert "data_type: TYPE_UINT8 dims: [ 640, 640, 3 ]" in (model_dir / "config.pbtxt").read_text()
    assert '"input_format": "uint8_nhwc"' in (model_dir / "fovea.json").read_text()
    with stack.client() as client, pytest.raises(FoveaClientError) as err:
        client.detect(sample("dog").read_bytes(), model="toy_v8")  # known to the service, not loaded yet
    assert err.value.code == "NOT_FOUND"

    loaded = fovea(stack, "models", "load", "toy_v8")
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded toy_v8" in loaded.stdout

    with stack.client() as client:
        result = client.detect(sample("dog").read_bytes(), model="toy_v8")
        streamed = client.detect_many([sample("dog").read_bytes()] * 4, model="toy_v8")
        listed = client.call(client.detection.ListDetectors, detection_pb2.ListDetectorsRequest())
        models = {m.name: m.state for m in client.list_models()}
        default = client.detect(sample("dog").read_bytes())
    assert result.model == "toy_v8" and result.image_size == [768, 576]
    got = [(d.label, d.class_id, d.score, d.box) for d in result.detections]
    assert [(label, c) for label, c, _, _ in got] == [(label, c) for label, c, _, _ in EXPECTED]
    for (_, _, score, box), (_, _, want_score, want_box) in zip(got, EXPECTED, strict=True):
        assert score == pytest.approx(want_score, abs=1e-4)
        assert box == pytest.approx(want_box, abs=0.02)
    assert streamed and all(r.detections == result.detections for r in streamed)
    toy = {d.name: d for d in listed.detectors}["toy_v8"]
    assert toy.family == "yolov8" and list(toy.labels) == ["widget", "gadget"] and not toy.is_default
    assert models["toy_v8"] == "READY"
    assert default.model == "nanodet_int8"  # the platform's models are untouched


def test_import_and_load_refuse_mistakes(stack: Stack, tmp_path: Path) -> None:
    predictions = yolov8_predictions(INPUT_BOXES, [0, 1], [0.9, 0.8], num_classes=2)
    source = constant_detector(tmp_path / "toy.onnx", predictions)
    labels = tmp_path / "labels.txt"
    labels.write_text("widget\ngadget\nsprocket\n")
    wrong = fovea(stack, "models", "import-onnx", str(source), "--name", "toy_bad", "--family", "yolov8",
                  "--labels", str(labels))  # fmt: skip
    assert wrong.returncode == 1 and "C = 3 labels" in wrong.stderr
    assert not (stack.settings.user_models / "toy_bad").exists()
    taken = fovea(stack, "models", "import-onnx", str(source), "--name", "nanodet", "--family", "yolov8",
                  "--labels", str(labels))  # fmt: skip
    assert taken.returncode == 1 and "'nanodet' is taken" in taken.stderr
    missing = fovea(stack, "models", "load", "no_such_model")
    assert missing.returncode == 1 and "no model 'no_such_model'" in missing.stderr


# End-to-end families: the same two boxes plus a duplicate of the widget (same box, score 0.7) that NMS would
# remove; the service skips NMS for these families, so all three come back, best first.
WITH_DUPLICATE = [*INPUT_BOXES, INPUT_BOXES[0]]
E2E_EXPECTED = [*EXPECTED, ("widget", 0, 0.7, EXPECTED[0][3])]


def _end_to_end_source(family: str, path: Path) -> Path:
    ids, scores = [0, 1, 0], [0.9, 0.8, 0.7]
    match family:
        case "end2end":
            return constant_detector(path, end2end_predictions(WITH_DUPLICATE, ids, scores))
        case "detr":
            boxes, logits = detr_predictions(WITH_DUPLICATE, ids, scores, num_classes=3, logits=True)
            return constant_outputs(path, {"pred_boxes": boxes, "pred_logits": logits})
        case "nms-in-graph":
            return constant_outputs(path, nms_in_graph_predictions(WITH_DUPLICATE, ids, scores))
        case _:
            return dfine_like(path, WITH_DUPLICATE, ids, scores)


@pytest.mark.parametrize(
    ("family", "found"),
    [("end2end", "end2end"), ("detr", "detr"), ("nms-in-graph", "nms-in-graph"), ("dfine", "nms-in-graph")],
)
def test_end_to_end_families_are_found_loaded_and_served_without_nms(
    stack: Stack, tmp_path: Path, family: str, found: str
) -> None:
    source = _end_to_end_source(family, tmp_path / f"{family}.onnx")
    labels = tmp_path / "labels.txt"
    labels.write_text("widget\ngadget\nsprocket\n")  # 3 classes: rows of 6 are not 4 + C
    name = f"toy_{family.replace('-', '_')}"
    imported = fovea(stack, "models", "import-onnx", str(source), "--name", name, "--labels", str(labels))
    assert imported.returncode == 0, imported.stderr
    assert f"layout: found {found}" in imported.stdout
    loaded = fovea(stack, "models", "load", name)
    assert loaded.returncode == 0, loaded.stderr

    with stack.client() as client:
        result = client.detect(sample("dog").read_bytes(), model=name, min_score=0.3)
        only_gadgets = client.detect(
            sample("dog").read_bytes(), model=name, min_score=0.3, classes=["gadget"]
        )
        best = client.detect(sample("dog").read_bytes(), model=name, min_score=0.3, max_detections=1)
    got = [(d.label, d.class_id, d.score, d.box) for d in result.detections]
    assert [(label, c) for label, c, _, _ in got] == [(label, c) for label, c, _, _ in E2E_EXPECTED]
    for (_, _, score, box), (_, _, want_score, want_box) in zip(got, E2E_EXPECTED, strict=True):
        assert score == pytest.approx(want_score, abs=1e-4)
        assert box == pytest.approx(want_box, abs=0.02)
    assert [d.label for d in only_gadgets.detections] == ["gadget"]
    assert [d.score for d in best.detections] == pytest.approx([0.9], abs=1e-4)


def test_a_paddledetection_export_is_served_in_photo_pixels(stack: Stack, tmp_path: Path) -> None:
    # image, scale_factor and im_shape in; rows [K, 6] and a count out (PicoDet / PP-YOLOE through
    # paddle2onnx). Stretched as PaddleDetection resizes (--no-letterbox): dog.jpg 768x576 -> 640x640, so
    # x = x_in * 768 / 640 = 1.2 x_in and y = y_in * 576 / 640 = 0.9 y_in:
    #   widget 0.9 at [100, 160, 300, 360] = original [120, 144, 360, 324]
    #   gadget 0.8 at [400, 280, 600, 520] = original [480, 252, 720, 468]
    source = paddle_like(tmp_path / "picodet.onnx", INPUT_BOXES, [0, 1], [0.9, 0.8], im_shape=True)
    labels = tmp_path / "labels.txt"
    labels.write_text("widget\ngadget\nsprocket\n")
    imported = fovea(stack, "models", "import-onnx", str(source), "--name", "toy_paddle", "--labels", str(labels),
                     "--no-letterbox", "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225")  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert "layout: PaddleDetection export (inputs image, scale_factor, im_shape" in imported.stdout
    loaded = fovea(stack, "models", "load", "toy_paddle")
    assert loaded.returncode == 0, loaded.stderr

    with stack.client() as client:
        result = client.detect(sample("dog").read_bytes(), model="toy_paddle", min_score=0.3)
        streamed = client.detect_many([sample("dog").read_bytes()] * 3, model="toy_paddle", min_score=0.3)
    expected = [
        ("widget", 0, 0.9, [120.0, 144.0, 360.0, 324.0]),
        ("gadget", 1, 0.8, [480.0, 252.0, 720.0, 468.0]),
    ]
    got = [(d.label, d.class_id, d.score, d.box) for d in result.detections]
    assert [(label, c) for label, c, _, _ in got] == [(label, c) for label, c, _, _ in expected]
    for (_, _, score, box), (_, _, want_score, want_box) in zip(got, expected, strict=True):
        assert score == pytest.approx(want_score, abs=1e-4)
        assert box == pytest.approx(want_box, abs=0.02)
    assert streamed and all(r.detections == result.detections for r in streamed)
