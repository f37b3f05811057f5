"""Which layout the outputs are: the head family given or told from the outputs, read by its family."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fovea.contracts.detector import HeadFamily
from fovea.convert.onnx_import.families import (
    Layout,
    check_layout,
    describe,
    detr_layout,
    end2end_layout,
    nms_in_graph_layout,
)
from fovea.convert.onnx_import.options import ImportOptions
from fovea.convert.onnx_import.signature import FLOAT_OUTPUTS, OnnxSignature, TensorInfo


def _family(value: str) -> HeadFamily:
    try:
        return HeadFamily(value)
    except ValueError:
        known = ", ".join(f.value for f in HeadFamily)
        raise ValueError(f"unknown head family {value!r}; known: {known}") from None


def _guess_family(
    outputs: Sequence[TensorInfo], shapes: Sequence[tuple[int, ...]], probed: Sequence[np.ndarray], c: int
) -> tuple[HeadFamily, str]:
    """The family the outputs' shapes (and, where shapes allow two, the trial run's values) point to."""
    seen = describe(outputs, shapes)
    flags = "pass --family (nanodet, yolo-grid, yolov5, yolox, yolov8, end2end, detr or nms-in-graph)"
    box_like = [i for i, s in enumerate(shapes) if len(s) == 2 and s[1] == 4]
    flat = [i for i, s in enumerate(shapes) if len(s) == 1 or (len(s) == 2 and s[1] == 1)]
    if len(shapes) in (3, 4) and len(box_like) == 1 and len(flat) == len(shapes) - 1:
        count = "a count, " if len(shapes) == 4 else ""
        return HeadFamily.NMS_IN_GRAPH, (
            f"nms-in-graph: {len(shapes)} outputs ({seen}) are {count}boxes (K, 4) and two (K,) vectors: "
            "final detections from the graph (an EfficientNMS-style NMS, or a DETR's top-k as D-FINE exports it)"
        )
    if len(shapes) == 2 and all(len(s) == 2 for s in shapes) and len(box_like) >= 1:
        other = shapes[1 - box_like[0]]
        if other[0] == shapes[box_like[0]][0] and other[1] in (c, c + 1):
            extra = " plus a no-object column" if other[1] == c + 1 else ""
            largest = float(np.abs(probed[box_like[0]]).max()) if probed[box_like[0]].size else 0.0
            if largest > 1.0:
                raise ValueError(
                    f"2 outputs ({seen}) look like boxes and per-class scores, but the boxes reach {largest:.4g} "
                    "on the trial image: pixels, not the fractions a DETR gives. A YOLO graph split into boxes "
                    "and scores before NMS is not a supported layout: export it with its single output (or "
                    "with NMS in the graph); pass --family detr if it is a DETR all the same"
                )
            return HeadFamily.DETR, (
                f"detr: 2 outputs ({seen}) are boxes (Q, 4) and scores (Q, C = {c}{extra}) per query"
            )
    if len(shapes) != 1 or len(shapes[0]) != 2:
        raise ValueError(f"cannot tell the head layout from the outputs ({seen}): {flags}")
    rows, width = shapes[0]
    if width == 6 and c > 2:
        return HeadFamily.END2END, (
            f"end2end: one output ({seen}) of rows of 6 (box, score, class) with C = {c} classes: final "
            "detections"
        )
    if rows == 4 + c and width != 4 + c:
        return HeadFamily.YOLOV8, f"yolov8: one output ({seen}), channels first (4 + C = {4 + c}, anchors)"
    if width == 4 + c and c > 2:
        boxes = probed[0][0][:, :4]
        if boxes.size and float(np.abs(boxes).max()) <= 1.0 and float(np.abs(boxes).max()) > 0:
            return HeadFamily.DETR, (
                f"detr: one output ({seen}) of (queries, 4 + C = {4 + c}) whose boxes on the trial image "
                "all lie within [0, 1] (fractions of the input, as DETR models give them)"
            )
        if boxes.size and float(np.abs(boxes).max()) > 1.0:
            return HeadFamily.YOLOV8, (
                f"yolov8: one output ({seen}) of (anchors, 4 + C = {4 + c}) whose boxes on the trial image "
                f"reach {float(np.abs(boxes).max()):.4g} (input pixels)"
            )
        raise ValueError(
            f"one output ({seen}) of (N, 4 + C) fits yolov8 (boxes in pixels) and detr (boxes as fractions) "
            "and the trial image gave no boxes to tell: pass --family yolov8 or --family detr"
        )
    if width == 5 + c and c > 1:
        raise ValueError(
            f"one output ({seen}) of (N, 5 + C) fits yolov5 and yolox: pass --family yolov5 or "
            "--family yolox (with --decoded when the export decodes boxes to pixels)"
        )
    fits = [
        name
        for name, ok in (
            ("end2end (rows of 6)", width == 6),
            ("yolov8 (4 + C)", 4 + c in (rows, width)),
            ("yolov5 / yolox (5 + C)", width == 5 + c),
            ("detr (4 + C)", width == 4 + c),
        )
        if ok
    ]
    if len(fits) > 1:
        raise ValueError(f"one output ({seen}) with C = {c} fits {', '.join(fits)}: pass --family")
    raise ValueError(f"cannot tell the head layout from the outputs ({seen}) with C = {c} classes: {flags}")


def find_layout(
    signature: OnnxSignature,
    shapes: list[tuple[int, ...]],
    probed: Sequence[np.ndarray],
    input_size: tuple[int, int],
    options: ImportOptions,
) -> Layout:
    """How to read the outputs: the family (``options.family``, or told from the shapes), the order of the
    outputs for its decoder, the spec fields it implies, and why.

    Raises:
        ValueError: the outputs do not fit the family, or (no family given) fit several or none; the
            message names the flags that settle it.
    """
    outputs = signature.outputs
    c = len(options.labels)
    if options.family is None:
        family, why = _guess_family(outputs, shapes, probed, c)
        why = f"found {why}"
    else:
        family = _family(options.family)
        why = f"{family.value} (--family)"
    if family is not HeadFamily.NMS_IN_GRAPH:
        for info in outputs:
            if info.dtype not in FLOAT_OUTPUTS:
                raise ValueError(
                    f"output {info.name!r} is {info.dtype}; {family.value} outputs must be floating point"
                )
    if options.outputs is not None and family not in (HeadFamily.DETR, HeadFamily.NMS_IN_GRAPH):
        raise ValueError(f"--outputs is for detr and nms-in-graph only, not {family.value}")
    match family:
        case HeadFamily.END2END:
            layout = end2end_layout(outputs, shapes, probed, c, options)
        case HeadFamily.DETR:
            layout = detr_layout(outputs, shapes, probed, c, options)
        case HeadFamily.NMS_IN_GRAPH:
            layout = nms_in_graph_layout(outputs, shapes, probed, options)
        case HeadFamily.CANDIDATES:
            raise ValueError("candidates is Fovea's own NanoDet layout, not an import family")
        case _:
            fields = check_layout(family, shapes, c, input_size, options)
            layout = Layout(
                family, tuple(range(len(outputs))), fields, f"outputs {describe(outputs, shapes)}"
            )
    return Layout(layout.family, layout.order, layout.fields, f"{why}: {layout.reason}", layout.warnings)


def score_warnings(family: HeadFamily, probed: Sequence[np.ndarray], num_classes: int) -> list[str]:
    """Scores outside [0, 1] on the trial run mean the export lacks its sigmoid (a warning: zeros are
    not a real image)."""
    if family not in (HeadFamily.YOLOV8, HeadFamily.YOLOV5, HeadFamily.YOLOX):
        return []
    pred = probed[0][0]
    if family is HeadFamily.YOLOV8:
        pred = pred.T if pred.shape[0] == 4 + num_classes else pred
        scores = pred[:, 4:]
    else:
        scores = pred[:, 4:]
    if scores.size and (scores.min() < -1e-3 or scores.max() > 1 + 1e-3):
        return [
            f"scores on a trial image range {scores.min():.3g}..{scores.max():.3g}, outside [0, 1]: "
            f"{family.value} expects probabilities (sigmoid applied in the export)"
        ]
    return []
