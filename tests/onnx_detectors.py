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
        inputs.append(helper.make_tensor_value_info("scale_factor", TensorProto.FLOAT, [1, 2]))
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
