"""PaddleDetection exports (fovea.convert.onnx_import.paddledet): found by their inputs, adapted into an
nms-in-graph graph (scale_factor / im_shape bound, rows split per image by the count), imported and served.

The exports are synthetic (tests/onnx_detectors.py ``paddle_like``): the same rows for every image, in
original-image pixels (input pixels divided by scale_factor, clipped to im_shape / scale_factor).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from onnx_detectors import paddle_like, yolov8_predictions

from fovea.common.detectors.heads import decode
from fovea.contracts.detector import HeadFamily
from fovea.convert.onnx_import import ImportOptions, import_onnx, model_config_json, preflight
from fovea.convert.onnx_import.paddledet import PaddleExport, adapt_paddle, find_paddle
from fovea.convert.onnx_import.signature import OnnxSignature, TensorInfo
from fovea.serving.onnx_detector import load_from_repository

LABELS = ["widget", "gadget", "sprocket"]
# In input pixels (xyxy): a widget 0.9 and a sprocket 0.8
BOXES = [(100.0, 160.0, 300.0, 360.0), (400.0, 280.0, 600.0, 520.0)]
IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


def served(model_dir: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    (result,) = load_from_repository(model_dir).execute([{"INPUT": images}])  # as Triton's initialize does
    assert isinstance(result, dict), result
    return result


def test_two_inputs_become_an_nms_in_graph_model(tmp_path: Path) -> None:
    source = paddle_like(tmp_path / "picodet.onnx", BOXES, [0, 2], [0.9, 0.8])
    repo = tmp_path / "repo"
    result = import_onnx(source, repo, "picodet", ImportOptions(None, LABELS))
    spec = result.spec
    assert spec.family is HeadFamily.NMS_IN_GRAPH and not spec.boxes_normalised
    assert spec.output_names == ["NUM_DETS", "BOXES", "SCORES", "CLASSES"]
    assert result.layout.startswith("PaddleDetection export (inputs image, scale_factor; rows ")
    assert "scale_factor is fed [1, 1], so boxes come out in input pixels" in result.layout
    assert "found nms-in-graph" in result.layout and "input pixels (scale_factor 1)" in result.layout
    # the defaults (letterbox, x / 255) are not PicoDet's: both said
    assert len(result.warnings) == 2
    assert "--no-letterbox" in result.warnings[0] and "--mean 0.485,0.456,0.406" in result.warnings[1]
    model = onnx.load(str(repo / "picodet" / "1" / "model.onnx"))
    assert [i.name for i in model.graph.input] == ["INPUT"]
    assert [o.name for o in model.graph.output] == spec.output_names
    config = json.loads(model_config_json((repo / "picodet" / "config.pbtxt").read_text()))
    assert [(o["name"], o["data_type"], o["dims"]) for o in config["output"]] == [
        ("NUM_DETS", "TYPE_INT32", ["1"]),
        ("BOXES", "TYPE_FP32", ["300", "4"]),
        ("SCORES", "TYPE_FP32", ["300"]),
        ("CLASSES", "TYPE_INT32", ["300"]),
    ]
    assert "PaddleDetection export" in (repo / "picodet" / "MODEL_CARD.md").read_text()
    assert not (repo / "picodet" / "paddle.onnx").exists()
    assert preflight(repo / "picodet").startswith("onnxruntime")
    out = served(repo / "picodet", np.zeros((3, 640, 640, 3), np.uint8))
    # 2 boxes + Paddle's padding row per image; the padding row (class -1) is not a detection
    assert out["NUM_DETS"].tolist() == [[3], [3], [3]] and out["BOXES"].shape == (3, 300, 4)
    for i in range(3):
        boxes, scores, class_ids = decode({n: a[i] for n, a in out.items()}, spec, 0.5)
        np.testing.assert_allclose(boxes.numpy(), np.array(BOXES), atol=1e-4)
        assert scores.tolist() == pytest.approx([0.9, 0.8]) and class_ids.tolist() == [0, 2]


def test_three_inputs_im_shape_is_height_then_width(tmp_path: Path) -> None:
    # 640 x 480 input; the second box reaches x 700, y 520: clipped to im_shape / scale_factor = (480, 640)
    # as H, W, so to x2 640, y2 480 (were im_shape fed W, H, x2 would be clipped to 480)
    source = paddle_like(
        tmp_path / "ppyoloe.onnx",
        [BOXES[0], (500.0, 400.0, 700.0, 520.0)],
        [0, 2],
        [0.9, 0.8],
        input_size=(640, 480),
        im_shape=True,
        index_output=True,
    )
    repo = tmp_path / "repo"
    options = ImportOptions(None, LABELS, letterbox=False, **IMAGENET)  # type: ignore[arg-type]
    result = import_onnx(source, repo, "ppyoloe", options)
    assert result.warnings == []
    assert "inputs image, scale_factor, im_shape" in result.layout
    assert (
        "multiclass_nms3_0.tmp_1 dropped" in result.layout and "im_shape the input's [H, W]" in result.layout
    )
    assert result.spec.input_size == (640, 480) and not result.spec.letterbox
    out = served(repo / "ppyoloe", np.zeros((2, 480, 640, 3), np.uint8))
    boxes, scores, class_ids = decode({n: a[1] for n, a in out.items()}, result.spec, 0.5)
    np.testing.assert_allclose(boxes.numpy(), [BOXES[0], (500.0, 400.0, 640.0, 480.0)], atol=1e-4)
    assert class_ids.tolist() == [0, 2]


def _rows_and_count_graph() -> tuple[onnx.ModelProto, PaddleExport]:
    """The rows and count are inputs here, so the split can be fed any rows: image, scale_factor, rows
    [K, 6], count [N] int32 in; the rows and count out as they came."""
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 8, 8])
    scale = helper.make_tensor_value_info("scale_factor", TensorProto.FLOAT, ["N", 2])
    rows = helper.make_tensor_value_info("rows", TensorProto.FLOAT, ["K", 6])
    count = helper.make_tensor_value_info("count", TensorProto.INT32, ["N"])
    nodes = [
        helper.make_node("Identity", ["rows"], ["rows_out"]),
        helper.make_node("Identity", ["count"], ["count_out"]),
        helper.make_node("Identity", ["scale_factor"], ["scale_seen"]),
    ]
    outputs = [
        helper.make_tensor_value_info("rows_out", TensorProto.FLOAT, ["K", 6]),
        helper.make_tensor_value_info("count_out", TensorProto.INT32, ["N"]),
        helper.make_tensor_value_info("scale_seen", TensorProto.FLOAT, ["N", 2]),
    ]
    graph = helper.make_graph(nodes, "split", [image, scale, rows, count], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    export = PaddleExport(
        TensorInfo("image", "tensor(float)", (None, 3, 8, 8)),
        TensorInfo("scale_factor", "tensor(float)", (None, 2)),
        None,
        TensorInfo("rows_out", "tensor(float)", (None, 6)),
        TensorInfo("count_out", "tensor(int32)", (None,)),
    )
    return model, export


def test_rows_are_split_per_image_by_the_count() -> None:
    model, export = _rows_and_count_graph()
    adapted = adapt_paddle(model, export, (8, 8), rows_per_image=2)
    adapted.graph.output.append(helper.make_tensor_value_info("scale_seen", TensorProto.FLOAT, ["N", 2]))
    session = ort.InferenceSession(adapted.SerializeToString(), providers=["CPUExecutionProvider"])
    # row r = class r, score r / 10, box (r, r, r + 1, r + 1); images get 2, 0 and 3 rows (the third's last
    # row is past rows_per_image = 2: dropped)
    rows = np.array([[r, r / 10, r, r, r + 1, r + 1] for r in range(5)], np.float32)
    feed = {"image": np.zeros((3, 3, 8, 8), np.float32), "rows": rows, "count": np.array([2, 0, 3], np.int32)}
    num, boxes, scores, classes, scale = session.run(None, feed)
    assert num.tolist() == [[2], [0], [2]] and num.dtype == np.int32
    assert classes.tolist() == [[0, 1], [-1, -1], [2, 3]] and classes.dtype == np.int32
    np.testing.assert_allclose(scores, [[0.0, 0.1], [0.0, 0.0], [0.2, 0.3]], atol=1e-6)
    np.testing.assert_allclose(boxes[2], [[2, 2, 3, 3], [3, 3, 4, 4]])
    assert not boxes[1].any()
    np.testing.assert_array_equal(scale, np.ones((3, 2)))  # scale_factor: 1 for every image of the batch
    # no rows at all (the NMS kept nothing)
    empty = {**feed, "rows": np.zeros((0, 6), np.float32), "count": np.array([0, 0, 0], np.int32)}
    num, _, scores, classes, _ = session.run(None, empty)
    assert num.tolist() == [[0], [0], [0]] and (classes == -1).all() and not scores.any()


def test_an_opset_before_11_is_refused() -> None:
    model, export = _rows_and_count_graph()
    model.opset_import[0].version = 10
    with pytest.raises(ValueError, match="opset 10; export it with paddle2onnx --opset_version 11"):
        adapt_paddle(model, export, (8, 8))


def _signature(inputs: list[tuple[str, str, tuple]], outputs: list[tuple[str, str, tuple]]) -> OnnxSignature:
    return OnnxSignature(
        tuple(TensorInfo(*i) for i in inputs),  # type: ignore[arg-type]
        tuple(TensorInfo(*o) for o in outputs),  # type: ignore[arg-type]
    )


F, I32 = "tensor(float)", "tensor(int32)"
IMAGE = ("image", F, (None, 3, 640, 640))
SCALE = ("scale_factor", F, (None, 2))
ROWS = ("multiclass_nms3_0.tmp_0", F, (None, 6))
COUNT = ("multiclass_nms3_0.tmp_2", I32, (None,))


def test_found_by_the_scale_factor_input() -> None:
    assert find_paddle(_signature([IMAGE], [ROWS])) is None
    assert find_paddle(_signature([IMAGE, ("orig_target_sizes", F, (None, 2))], [ROWS])) is None
    found = find_paddle(_signature([("im_shape", F, (None, 2)), SCALE, IMAGE], [COUNT, ROWS]))
    assert found is not None and found.image.name == "image" and found.rows.name == ROWS[0]
    assert found.im_shape is not None and found.count.name == COUNT[0]


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        ([IMAGE, SCALE, ("mask", F, (None, 1))], [ROWS, COUNT], r"\['mask'\] is neither"),
        ([IMAGE, SCALE, SCALE], [ROWS, COUNT], "takes one image"),
        ([IMAGE, ("scale_factor", F, (None, 3))], [ROWS, COUNT], "scale_factor is float \\[N, 2\\]"),
        ([IMAGE, SCALE, ("im_shape", "tensor(int64)", (None, 2))], [ROWS, COUNT], "im_shape is float"),
        # exported without NMS: boxes and per-class scores
        (
            [IMAGE, SCALE],
            [("boxes", F, (None, 8400, 4)), ("scores", F, (None, 80, 8400))],
            "without exclude_nms",
        ),
        ([IMAGE, SCALE], [ROWS, COUNT, ("extra", F, (None, 4))], "plus at most the NMS's indices"),
    ],
)
def test_half_paddle_layouts_are_refused(inputs: list, outputs: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        find_paddle(_signature(inputs, outputs))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ImportOptions("end2end", LABELS), "read as nms-in-graph, not end2end: leave out --family"),
        (ImportOptions(None, LABELS, outputs=["a", "b"]), "--outputs does not apply"),
        (ImportOptions(None, LABELS, boxes="normalised"), "leave out --boxes"),
    ],
)
def test_options_that_do_not_fit_are_refused(tmp_path: Path, options: ImportOptions, message: str) -> None:
    source = paddle_like(tmp_path / "picodet.onnx", BOXES, [0, 2], [0.9, 0.8])
    with pytest.raises(ValueError, match=message):
        import_onnx(source, tmp_path / "repo", "picodet", options)
    assert not (tmp_path / "repo" / "picodet").exists()


def test_a_yolo_graph_with_a_scale_factor_input_is_refused(tmp_path: Path) -> None:
    from onnx_detectors import constant_detector

    predictions = yolov8_predictions(BOXES, [0, 1], [0.9, 0.8], num_classes=3)
    source = constant_detector(tmp_path / "v8.onnx", predictions)
    model = onnx.load(str(source))
    model.graph.input.append(helper.make_tensor_value_info("scale_factor", TensorProto.FLOAT, ["batch", 2]))
    onnx.save(model, str(source))
    with pytest.raises(ValueError, match="is read with NMS in the graph: outputs rows \\[K, 6\\]"):
        import_onnx(source, tmp_path / "repo", "v8", ImportOptions("yolov8", LABELS))
