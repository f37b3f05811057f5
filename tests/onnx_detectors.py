"""Small synthetic ONNX detectors for the import tests, built with ``onnx.helper`` (nothing downloaded).

Each graph's output is a constant (the "predictions") plus ``0 * mean(input)``, so it depends on the input,
keeps the batch dimension first and always predicts the same boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

Box = tuple[float, float, float, float]  # xyxy, network-input pixels


def constant_detector(
    path: Path,
    per_image: np.ndarray,
    *,
    input_size: tuple[int, int] = (640, 640),
    batch: int | None = None,
    input_shape: Sequence[int | str] | None = None,
    input_name: str = "images",
    output_name: str = "output0",
    extra_input: bool = False,
    keep_batch: bool = True,
) -> Path:
    """Write an ONNX model whose output is ``per_image`` for every image of the batch.

    Args:
        per_image: the output of one image, any shape.
        input_size: ``(width, height)`` of the declared input ``[batch, 3, H, W]``.
        batch: fixed batch size, or ``None`` for a dynamic (symbolic) batch.
        input_shape: declare this input shape instead (e.g. NHWC or dynamic H and W).
        extra_input: add a second (unused) input, which importers must refuse.
        keep_batch: ``False`` drops the batch axis from the output (a malformed export).
    """
    width, height = input_size
    batch_dim: int | str = batch if batch is not None else "batch"
    shape = list(input_shape) if input_shape is not None else [batch_dim, 3, height, width]
    rank = per_image.ndim
    ones = [1] * rank
    nodes = [
        helper.make_node("ReduceMean", [input_name], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Flatten", ["mean"], ["flat"], axis=1),  # (B, 1)
        helper.make_node("Reshape", ["flat", "shape"], ["ones"]),  # (B, 1, ..., 1)
        helper.make_node("Mul", ["ones", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "predictions"], ["batched"]),  # (B, *per_image.shape)
    ]
    if keep_batch:
        nodes.append(helper.make_node("Identity", ["batched"], [output_name]))
        out_shape: list[int | str] = [batch_dim, *per_image.shape]
    else:
        nodes.append(helper.make_node("ReduceMax", ["batched"], [output_name], axes=[0], keepdims=0))
        out_shape = list(per_image.shape)
    inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape)]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1, 2]))
    initializers = [
        numpy_helper.from_array(np.array([0, *ones], dtype=np.int64), "shape"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        numpy_helper.from_array(per_image.astype(np.float32)[None], "predictions"),
    ]
    graph = helper.make_graph(
        nodes,
        "constant_detector",
        inputs,
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, out_shape)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="fovea-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def yolov8_predictions(
    boxes: Sequence[Box],
    class_ids: Sequence[int],
    scores: Sequence[float],
    num_classes: int,
    anchors: int = 100,
) -> np.ndarray:
    """``(4 + C, anchors)``: anchor ``i`` holds box ``i`` (cx, cy, w, h) with its class score; the rest 0."""
    out = np.zeros((4 + num_classes, anchors), dtype=np.float32)
    for i, ((x1, y1, x2, y2), c, s) in enumerate(zip(boxes, class_ids, scores, strict=True)):
        out[:4, i] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
        out[4 + c, i] = s
    return out


def yolov5_predictions(
    boxes: Sequence[Box],
    class_ids: Sequence[int],
    scores: Sequence[float],
    num_classes: int,
    anchors: int = 100,
) -> np.ndarray:
    """``(anchors, 5 + C)``: objectness 1 and the class score on anchor ``i``; the rest 0."""
    out = np.zeros((anchors, 5 + num_classes), dtype=np.float32)
    for i, ((x1, y1, x2, y2), c, s) in enumerate(zip(boxes, class_ids, scores, strict=True)):
        out[i, :5] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, 1.0]
        out[i, 5 + c] = s
    return out


def constant_outputs(
    path: Path,
    per_image: dict[str, np.ndarray],
    *,
    input_size: tuple[int, int] = (640, 640),
    batch: int | None = None,
) -> Path:
    """Write an ONNX model with several outputs, ``name -> per_image[name]`` for every image of the batch,
    each of its array's dtype (float32, int32 or int64), in the dict's order."""
    width, height = input_size
    batch_dim: int | str = batch if batch is not None else "batch"
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Flatten", ["mean"], ["flat"], axis=1),  # (B, 1)
        helper.make_node("Mul", ["flat", "zero"], ["zeros"]),  # (B, 1) of 0.0
    ]
    initializers = [numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero")]
    outputs = []
    for k, (name, array) in enumerate(per_image.items()):
        elem = helper.np_dtype_to_tensor_dtype(array.dtype)
        initializers += [
            numpy_helper.from_array(np.array([0, *([1] * array.ndim)], dtype=np.int64), f"shape{k}"),
            numpy_helper.from_array(array[None], f"predictions{k}"),
        ]
        nodes += [
            helper.make_node("Reshape", ["zeros", f"shape{k}"], [f"ones{k}"]),  # (B, 1, ..., 1)
            helper.make_node("Cast", [f"ones{k}"], [f"typed{k}"], to=elem),
            helper.make_node("Add", [f"typed{k}", f"predictions{k}"], [name]),
        ]
        outputs.append(helper.make_tensor_value_info(name, elem, [batch_dim, *array.shape]))
    graph = helper.make_graph(
        nodes,
        "constant_outputs",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch_dim, 3, height, width])],
        outputs,
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="fovea-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def end2end_predictions(
    boxes: Sequence[Box],
    class_ids: Sequence[int],
    scores: Sequence[float],
    rows: int = 300,
    *,
    normalise_by: tuple[int, int] | None = None,
) -> np.ndarray:
    """``(rows, 6)``: row ``i`` = box ``i`` (x1 y1 x2 y2, divided by ``normalise_by`` = (width, height)
    when given), its score and class; the rest 0 (score 0: dropped)."""
    out = np.zeros((rows, 6), dtype=np.float32)
    scale = np.array([*normalise_by, *normalise_by], np.float32) if normalise_by else np.ones(4, np.float32)
    for i, (box, c, s) in enumerate(zip(boxes, class_ids, scores, strict=True)):
        out[i, :4] = np.asarray(box, np.float32) / scale
        out[i, 4:] = [s, c]
    return out


def detr_predictions(
    boxes: Sequence[Box],
    class_ids: Sequence[int],
    scores: Sequence[float],
    num_classes: int,
    queries: int = 300,
    *,
    input_size: tuple[int, int] = (640, 640),
    logits: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``(queries, 4)`` as cx cy w h fractions of ``input_size`` and scores ``(queries, C)``: query
    ``i`` holds box ``i`` with its class score, the rest score 0 (``logits``: the inverse sigmoid, -20
    for 0)."""
    width, height = input_size
    out_boxes = np.full((queries, 4), 0.5, dtype=np.float32)
    out_scores = np.zeros((queries, num_classes), dtype=np.float32)
    for i, ((x1, y1, x2, y2), c, s) in enumerate(zip(boxes, class_ids, scores, strict=True)):
        out_boxes[i] = [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height]
        out_scores[i, c] = s
    if logits:
        clipped = np.clip(out_scores, 1e-9, 1 - 1e-9)
        out_scores = np.where(out_scores > 0, np.log(clipped / (1 - clipped)), -20.0).astype(np.float32)
    return out_boxes, out_scores


def nms_in_graph_predictions(
    boxes: Sequence[Box], class_ids: Sequence[int], scores: Sequence[float], k: int = 100
) -> dict[str, np.ndarray]:
    """EfficientNMS-style outputs: ``num_dets (1,) int32``, ``det_boxes (k, 4)`` xyxy pixels,
    ``det_scores (k,)``, ``det_classes (k,) int32``. Rows past ``num_dets`` hold a decoy (a box scored 0.99)
    that must be ignored."""
    out_boxes = np.zeros((k, 4), dtype=np.float32)
    out_scores = np.zeros(k, dtype=np.float32)
    out_classes = np.zeros(k, dtype=np.int32)
    for i, (box, c, s) in enumerate(zip(boxes, class_ids, scores, strict=True)):
        out_boxes[i], out_scores[i], out_classes[i] = box, s, c
    n = len(boxes)
    out_boxes[n], out_scores[n] = (10.0, 10.0, 50.0, 50.0), 0.99
    return {
        "num_dets": np.array([n], dtype=np.int32),
        "det_boxes": out_boxes,
        "det_scores": out_scores,
        "det_classes": out_classes,
    }


def dfine_like(
    path: Path,
    boxes: Sequence[Box],
    class_ids: Sequence[int],
    scores: Sequence[float],
    *,
    queries: int = 300,
    input_size: tuple[int, int] = (640, 640),
) -> Path:
    """A graph laid out like D-FINE's (and RT-DETR's) ``tools/deployment/export_onnx.py`` export: inputs
    ``images`` ``[N, 3, H, W]`` and ``orig_target_sizes`` ``[N, 2]`` int64 (width, height); outputs ``labels``
    ``[N, Q]`` int64, ``boxes`` ``[N, Q, 4]`` xyxy = normalised boxes times the given size, ``scores``
    ``[N, Q]``. Query ``i`` holds box ``i`` (``boxes`` are in ``input_size`` pixels), the rest score 0."""
    width, height = input_size
    normalised = np.zeros((1, queries, 4), np.float32)
    labels = np.zeros((1, queries), np.int64)
    conf = np.zeros((1, queries), np.float32)
    for i, ((x1, y1, x2, y2), c, s) in enumerate(zip(boxes, class_ids, scores, strict=True)):
        normalised[0, i] = [x1 / width, y1 / height, x2 / width, y2 / height]
        labels[0, i], conf[0, i] = c, s
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Flatten", ["mean"], ["flat"], axis=1),
        helper.make_node("Mul", ["flat", "zero"], ["zeros"]),  # (B, 1) of 0.0
        helper.make_node("Cast", ["orig_target_sizes"], ["sizes"], to=TensorProto.FLOAT),
        helper.make_node("Concat", ["sizes", "sizes"], ["whwh"], axis=1),  # (B, 4)
        helper.make_node("Unsqueeze", ["whwh", "axis1"], ["scale"]),  # (B, 1, 4)
        helper.make_node("Mul", ["scale", "normalised"], ["sized"]),  # (1 or B, Q, 4)
        helper.make_node("Unsqueeze", ["zeros", "axis1"], ["zeros3"]),  # (B, 1, 1)
        helper.make_node("Add", ["sized", "zeros3"], ["boxes"]),  # (B, Q, 4) as the model's batch
        helper.make_node("Cast", ["zeros"], ["zeros_int"], to=TensorProto.INT64),
        helper.make_node("Add", ["zeros_int", "label_values"], ["labels"]),
        helper.make_node("Add", ["zeros", "score_values"], ["scores"]),
    ]
    initializers = [
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(normalised, "normalised"),
        numpy_helper.from_array(labels, "label_values"),
        numpy_helper.from_array(conf, "score_values"),
    ]
    graph = helper.make_graph(
        nodes,
        "dfine_like",
        [
            helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, height, width]),
            helper.make_tensor_value_info("orig_target_sizes", TensorProto.INT64, ["N", 2]),
        ],
        [
            helper.make_tensor_value_info("labels", TensorProto.INT64, ["N", queries]),
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", queries, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", queries]),
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="fovea-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def paddle_like(
    path: Path,
    boxes: Sequence[Box],
    class_ids: Sequence[int],
    scores: Sequence[float],
    *,
    input_size: tuple[int, int] = (640, 640),
    im_shape: bool = False,
    index_output: bool = False,
    opset: int = 17,
) -> Path:
    """A graph laid out like a PaddleDetection export with NMS in the graph (PicoDet, PP-YOLOE through
    paddle2onnx): inputs ``image`` ``[N, 3, H, W]``, ``scale_factor`` ``[N, 2]`` (y, x) and, with
    ``im_shape``, ``im_shape`` ``[N, 2]`` (H, W); outputs ``multiclass_nms3_0.tmp_0`` ``[K, 6]`` = class,
    score, x1 y1 x2 y2 for every image one after the other, and ``multiclass_nms3_0.tmp_2`` ``[N]`` int32, rows
    per image (with ``index_output``, ``multiclass_nms3_0.tmp_1`` ``[K, 1]`` int32 as well).

    Every image gets the same rows: box ``i`` (``boxes`` in input pixels) divided by its ``scale_factor``, as
    the real post-processing maps boxes to the original image; with ``im_shape``, clipped to ``im_shape /
    scale_factor``; and Paddle's padding row ``[-1, 0, 0, 0, 0, 0]`` last."""
    width, height = input_size
    table = np.zeros((len(boxes) + 1, 6), np.float32)
    for i, (box, c, s) in enumerate(zip(boxes, class_ids, scores, strict=True)):
        table[i] = [c, s, *box]
    table[-1, 0] = -1
    r = table.shape[0]
    nodes = [
        helper.make_node("Shape", ["image"], ["image_shape"]),
        helper.make_node("Gather", ["image_shape", "zero_index"], ["n"]),  # [N]
        helper.make_node("Concat", ["n", "one"], ["repeats"], axis=0),
        helper.make_node("Tile", ["table", "repeats"], ["tiled"]),  # (N * R, 6)
        helper.make_node("Concat", ["n", "r4"], ["per_row_shape"], axis=0),  # [N, R, 4]
        helper.make_node("Gather", ["scale_factor", "xyxy"], ["scale4"], axis=1),  # (N, 4) sx sy sx sy
        helper.make_node("Reshape", ["scale4", "n14"], ["scale3"]),
        helper.make_node("Expand", ["scale3", "per_row_shape"], ["scale_rows3"]),
        helper.make_node("Reshape", ["scale_rows3", "k4"], ["scale_rows"]),  # (N * R, 4)
        helper.make_node("Slice", ["tiled", "two", "six", "one"], ["input_boxes"]),
        helper.make_node("Div", ["input_boxes", "scale_rows"], ["scaled" if im_shape else "original"]),
    ]
    if im_shape:
        nodes += [
            helper.make_node("Div", ["im_shape", "scale_factor"], ["origin"]),  # (N, 2) h w
            helper.make_node("Gather", ["origin", "xyxy"], ["origin4"], axis=1),  # w h w h
            helper.make_node("Reshape", ["origin4", "n14"], ["origin3"]),
            helper.make_node("Expand", ["origin3", "per_row_shape"], ["origin_rows3"]),
            helper.make_node("Reshape", ["origin_rows3", "k4"], ["origin_rows"]),
            helper.make_node("Min", ["scaled", "origin_rows"], ["original"]),
        ]
    nodes += [
        helper.make_node("Slice", ["tiled", "zero_index", "two", "one"], ["class_score"]),
        helper.make_node("Concat", ["class_score", "original"], ["multiclass_nms3_0.tmp_0"], axis=1),
        helper.make_node("Expand", ["rows_per_image", "n"], ["multiclass_nms3_0.tmp_2"]),
    ]
    if index_output:
        nodes += [
            helper.make_node("Slice", ["tiled", "zero_index", "one", "one"], ["first_column"]),
            helper.make_node("Cast", ["first_column"], ["multiclass_nms3_0.tmp_1"], to=TensorProto.INT32),
        ]
    initializers = [
        numpy_helper.from_array(table, "table"),
        numpy_helper.from_array(np.array([0], np.int64), "zero_index"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
        numpy_helper.from_array(np.array([2], np.int64), "two"),
        numpy_helper.from_array(np.array([6], np.int64), "six"),
        numpy_helper.from_array(np.array([r, 4], np.int64), "r4"),
        numpy_helper.from_array(np.array([-1, 1, 4], np.int64), "n14"),
        numpy_helper.from_array(np.array([-1, 4], np.int64), "k4"),
        numpy_helper.from_array(np.array([1, 0, 1, 0], np.int64), "xyxy"),
        numpy_helper.from_array(np.array([r], np.int32), "rows_per_image"),
    ]
    inputs = [
        helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, height, width]),
        helper.make_tensor_value_info("scale_factor", TensorProto.FLOAT, ["N", 2]),
    ]
    if im_shape:
        inputs.append(helper.make_tensor_value_info("im_shape", TensorProto.FLOAT, ["N", 2]))
    outputs = [
        helper.make_tensor_value_info("multiclass_nms3_0.tmp_0", TensorProto.FLOAT, ["K", 6]),
        helper.make_tensor_value_info("multiclass_nms3_0.tmp_2", TensorProto.INT32, ["N"]),
    ]
    if index_output:
        outputs.append(helper.make_tensor_value_info("multiclass_nms3_0.tmp_1", TensorProto.INT32, ["K", 1]))
    graph = helper.make_graph(nodes, "paddle_like", inputs, outputs, initializers)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="PaddlePaddle"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
