"""PaddleDetection exports (PicoDet, PP-YOLOE, ... through ``paddle2onnx``, NMS in the graph) made into an
``nms-in-graph`` graph with one image input, before the rest of the import reads them.

Such an export takes ``image`` ``[N, 3, H, W]`` float, ``scale_factor`` ``[N, 2]`` float (``resized /
original`` as ``y, x``) and sometimes ``im_shape`` ``[N, 2]`` float (the resized ``H, W``); it gives the
rows of every image of the batch one after the other, ``[K, 6]`` = ``class, score, x1, y1, x2, y2`` in
original-image pixels (the graph divides by ``scale_factor`` and clips to ``im_shape / scale_factor``),
a count ``[N]`` int32 of rows per image, and sometimes the NMS's indices (dropped).

The detection service sends the network input itself (letterboxed or stretched to ``W x H``) and maps input
pixels back to the photo, so the adapted graph binds ``scale_factor`` to ``[1, 1]`` and ``im_shape`` to
``[H, W]`` (for every image of the batch): the rows come out in input pixels. The count splits the rows into
``boxes [N, M, 4]``, ``scores [N, M]``, ``classes [N, M]`` int32 and ``num_dets [N, 1]`` int32, ``M`` =
:data:`ROWS_PER_IMAGE` (an image's rows past ``M`` are dropped; PP-YOLOE keeps 300, PicoDet 100); slots past an
image's count get class -1 and score 0, which the ``nms-in-graph`` decoder drops, as it drops the padding row
a PaddleDetection export appends (score 0 or class -1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import onnx

from fovea.convert.onnx_import.options import ImportOptions
from fovea.convert.onnx_import.signature import FLOAT_INPUTS, INTEGER_OUTPUTS, OnnxSignature, TensorInfo

SCALE_FACTOR = re.compile(r"scale_factor", re.IGNORECASE)
IM_SHAPE = re.compile(r"im_shape", re.IGNORECASE)
ROWS_PER_IMAGE = 300
"""Rows kept per image (PP-YOLOE's ``keep_top_k``; PicoDet's is 100)."""
MIN_OPSET = 11
"""The split uses ``CumSum`` and ``Range`` (opset 11)."""
OUTPUTS = ("num_dets", "boxes", "scores", "classes")
"""The adapted graph's outputs, in the ``nms-in-graph`` order."""


@dataclass(frozen=True)
class PaddleExport:
    """The tensors of a PaddleDetection export, told by name, shape and type."""

    image: TensorInfo
    scale_factor: TensorInfo
    im_shape: TensorInfo | None
    rows: TensorInfo
    """``[K, 6]`` float: class, score, x1, y1, x2, y2."""
    count: TensorInfo
    """``[N]`` integer: rows per image."""
    dropped: tuple[TensorInfo, ...] = ()
    """Other integer outputs (the NMS's indices), not served."""

    def describe(self) -> str:
        extra = [self.im_shape.name] if self.im_shape else []
        inputs = ", ".join([self.image.name, self.scale_factor.name, *extra])
        dropped = f"; {', '.join(o.name for o in self.dropped)} dropped" if self.dropped else ""
        return (
            f"PaddleDetection export (inputs {inputs}; rows {self.rows.name} [K, 6] = class, score, x1 y1 x2 "
            f"y2 and count {self.count.name} [N]{dropped}): {self.scale_factor.name} is fed [1, 1]"
            + (f" and {self.im_shape.name} the input's [H, W]" if self.im_shape else "")
            + f", so boxes come out in input pixels; the rows are split by the count, {ROWS_PER_IMAGE} per image"
        )


def _pair(info: TensorInfo) -> bool:
    return info.dtype in FLOAT_INPUTS and len(info.shape) == 2 and info.shape[1] in (2, None)


def find_paddle(signature: OnnxSignature) -> PaddleExport | None:
    """The PaddleDetection layout when the graph has a ``scale_factor`` input, else ``None``.

    Raises:
        ValueError: it has such an input but not the rest of the layout (one ``[N, 3, H, W]`` image, no
            input besides ``scale_factor`` / ``im_shape``, both ``[N, 2]`` float; outputs rows ``[K, 6]``
            float and a count ``[N]`` integer, plus at most one more integer output).
    """
    inputs = signature.inputs
    scales = [i for i in inputs if SCALE_FACTOR.search(i.name)]
    if not scales:
        return None
    names = [i.name for i in inputs]
    shapes = [i for i in inputs if IM_SHAPE.search(i.name)]
    images = [i for i in inputs if len(i.shape) == 4]
    others = [i.name for i in inputs if i not in scales and i not in shapes and i not in images]
    if len(scales) != 1 or len(shapes) > 1 or len(images) != 1 or others:
        raise ValueError(
            f"inputs {names} look like a PaddleDetection export, which takes one image [N, 3, H, W], "
            f"scale_factor [N, 2] and optionally im_shape [N, 2]"
            + (f"; {others} is neither" if others else "")
            + ": export the model with only those inputs"
        )
    for info in (*scales, *shapes):
        if not _pair(info):
            raise ValueError(
                f"input {info.name!r} is {info.dtype} {list(info.shape)}; a PaddleDetection export's "
                f"{'scale_factor' if info in scales else 'im_shape'} is float [N, 2]"
            )
    outputs = signature.outputs
    rows = [
        o
        for o in outputs
        if o.dtype in FLOAT_INPUTS and len(o.shape) == 2 and o.shape[1] in (6, None) and o.shape[0] is None
    ]
    counts = [o for o in outputs if o.dtype in INTEGER_OUTPUTS and len(o.shape) == 1]
    dropped = tuple(o for o in outputs if o not in rows and o not in counts)
    seen = ", ".join(f"{o.name} {o.dtype} {list(o.shape)}" for o in outputs)
    if (
        len(rows) != 1
        or len(counts) != 1
        or len(dropped) > 1
        or any(o.dtype not in INTEGER_OUTPUTS for o in dropped)
    ):
        raise ValueError(
            f"a PaddleDetection export (inputs {names}) is read with NMS in the graph: outputs rows [K, 6] "
            f"float (class, score, x1 y1 x2 y2) and a count [N] int32, plus at most the NMS's indices; this "
            f"one has {seen}: export it with its post-processing and NMS (PaddleDetection's "
            "tools/export_model.py without exclude_nms / exclude_post_process, then paddle2onnx)"
        )
    return PaddleExport(images[0], scales[0], shapes[0] if shapes else None, rows[0], counts[0], dropped)


def paddle_options(options: ImportOptions) -> tuple[ImportOptions, list[str]]:
    """``options`` for the adapted graph (boxes in pixels; its outputs tell ``nms-in-graph``) and warnings about the
    preprocessing PaddleDetection's configs usually use.

    Raises:
        ValueError: a family other than ``nms-in-graph``, or ``--outputs`` (the adapted graph's outputs are
            Fovea's).
    """
    if options.family not in (None, "nms-in-graph"):
        raise ValueError(
            f"a PaddleDetection export with NMS in the graph is read as nms-in-graph, not {options.family}: "
            "leave out --family"
        )
    if options.outputs is not None:
        raise ValueError(
            "--outputs does not apply to a PaddleDetection export (its outputs are told by shape)"
        )
    if options.boxes not in (None, "pixels"):
        raise ValueError(
            "a PaddleDetection export gives boxes in pixels (scale_factor is fed 1): leave out --boxes"
        )
    warnings = []
    if options.letterbox:
        warnings.append(
            "PaddleDetection's PicoDet and PP-YOLOE configs resize without keeping the aspect ratio "
            "(infer_cfg.yml: Resize keep_ratio: false): pass --no-letterbox to match, unless yours keeps it"
        )
    if tuple(options.mean) == (0.0, 0.0, 0.0) and tuple(options.std) == (1.0, 1.0, 1.0):
        warnings.append(
            "normalised as x / 255 only: right where infer_cfg.yml's NormalizeImage has mean 0 and std 1 "
            "(PP-YOLOE+); PicoDet and PP-YOLOE use ImageNet's: --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225"
        )
    return replace(options, boxes="pixels", boxes_from="scale_factor 1"), warnings


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def adapt_paddle(
    model: onnx.ModelProto,
    export: PaddleExport,
    input_size: tuple[int, int],
    rows_per_image: int = ROWS_PER_IMAGE,
) -> onnx.ModelProto:
    """``model`` (not modified) with ``scale_factor`` / ``im_shape`` bound for every image of the batch and
    the rows split per image into :data:`OUTPUTS` (see the module docstring).

    Args:
        input_size: the network input's ``(width, height)``.

    Raises:
        ValueError: the model's opset is older than :data:`MIN_OPSET`, or a name the adapter adds is taken.
    """
    from onnx import TensorProto, helper, numpy_helper

    opset = _opset(model)
    if opset < MIN_OPSET:
        raise ValueError(
            f"the PaddleDetection export uses opset {opset}; export it with paddle2onnx --opset_version 11 or later"
        )
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    taken = {o.name for o in graph.output} | {n for node in graph.node for n in node.output}
    clash = sorted(taken & set(OUTPUTS))
    if clash:
        raise ValueError(f"the graph already has tensors named {clash}")
    width, height = input_size
    bound = [(export.scale_factor, [1.0, 1.0])]
    if export.im_shape is not None:
        bound.append((export.im_shape, [float(height), float(width)]))

    def p(name: str) -> str:
        return f"fovea_paddle_{name}"

    def const(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(value, p(name)))
        return p(name)

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    nodes: list[onnx.NodeProto] = []
    # [N, 2] inputs: constant rows expanded to the image's batch
    n = node(
        "Gather",
        [node("Shape", [export.image.name], p("image_shape")), const("zero", np.array([0], np.int64))],
        p("n"),
    )
    pair = node("Concat", [n, const("two", np.array([2], np.int64))], p("pair_shape"), axis=0)
    for info, value in bound:
        dtype = FLOAT_INPUTS[info.dtype]
        nodes.append(
            helper.make_node(
                "Expand",
                [const(f"{info.name}_value", np.array([value], dtype)), pair],
                [info.name],
                name=p(info.name),
            )
        )
    prefix, nodes = nodes, []
    # rows [K, 6] + count [N] -> [N, M, 6] by index: image i's slot j is row start[i] + j, or the pad row
    m = rows_per_image
    count = node("Cast", [export.count.name], p("count"), to=TensorProto.INT64)
    ends = node("CumSum", [count, const("axis0", np.array(0))], p("ends"))
    starts = node(
        "Reshape",
        [node("Sub", [ends, count], p("starts_flat")), const("column", np.array([-1, 1]))],
        p("starts"),
    )
    counts = node("Reshape", [count, p("column")], p("counts"))
    slots = const("slots", np.arange(m, dtype=np.int64).reshape(1, m))
    index = node("Add", [starts, slots], p("index"))
    valid = node("Less", [slots, counts], p("valid"))
    rows = export.rows.name
    if export.rows.dtype != "tensor(float)":
        rows = node("Cast", [rows], p("rows_float"), to=TensorProto.FLOAT)
    k = node("Gather", [node("Shape", [rows], p("rows_shape")), p("zero")], p("k"))
    pad = const("pad_row", np.array([[-1, 0, 0, 0, 0, 0]], np.float32))
    padded = node("Concat", [rows, pad], p("padded"), axis=0)
    picked = node(
        "Gather", [padded, node("Where", [valid, index, k], p("picked_index"))], p("picked"), axis=0
    )
    axis2 = const("axis2", np.array([2]))

    def columns(start: int, end: int, name: str) -> str:
        return node(
            "Slice",
            [picked, const(f"{name}_start", np.array([start])), const(f"{name}_end", np.array([end])), axis2],
            p(name),
        )

    flat = const("flat", np.array([0, -1]))
    node(
        "Cast",
        [node("Reshape", [columns(0, 1, "class_column"), flat], p("class_float"))],
        "classes",
        to=TensorProto.INT32,
    )
    node("Reshape", [columns(1, 2, "score_column"), flat], "scores")
    node("Identity", [columns(2, 6, "box_columns")], "boxes")
    limit = const("limit", np.array(m))
    kept = node("Where", [node("Less", [count, limit], p("under")), count, limit], p("kept"))
    node("Cast", [node("Reshape", [kept, p("column")], p("kept_column"))], "num_dets", to=TensorProto.INT32)

    body = list(graph.node)
    graph.ClearField("node")
    graph.node.extend([*prefix, *body, *nodes])
    names = {info.name for info, _ in bound}
    keep = [i for i in graph.input if i.name not in names]
    graph.ClearField("input")
    graph.input.extend(keep)
    batch = export.image.shape[0] or "N"
    graph.ClearField("output")
    graph.output.extend(
        [
            helper.make_tensor_value_info("num_dets", TensorProto.INT32, [batch, 1]),
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [batch, m, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, m]),
            helper.make_tensor_value_info("classes", TensorProto.INT32, [batch, m]),
        ]
    )
    onnx.checker.check_model(out)
    return out
