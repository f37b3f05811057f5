"""Each head family's output layout: the grid families' shape checks, the end-to-end families' readers."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fovea.contracts.detector import HeadFamily
from fovea.convert.onnx_import.options import ImportOptions
from fovea.convert.onnx_import.signature import FLOAT_OUTPUTS, INTEGER_OUTPUTS, TensorInfo

DEFAULT_STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class Layout:
    """How the graph's outputs are read."""

    family: HeadFamily
    order: tuple[int, ...]
    """Output indices in the order the family's decoder takes them (``spec.output_names``)."""
    fields: dict[str, object]
    """Spec fields the layout implies (strides, reg_max, boxes_normalised, ...)."""
    reason: str
    """Which layout and why, for the person importing."""
    warnings: tuple[str, ...] = ()


def describe(outputs: Sequence[TensorInfo], shapes: Sequence[tuple[int, ...]]) -> str:
    return ", ".join(f"{o.name} {s}" for o, s in zip(outputs, shapes, strict=True))


def hint_classes(width: int, extra: int) -> str:
    return f" (the model seems to predict {width - extra} classes)" if width > extra else ""


def check_layout(
    family: HeadFamily,
    shapes: list[tuple[int, ...]],
    num_classes: int,
    input_size: tuple[int, int],
    options: ImportOptions,
) -> dict[str, object]:
    """Check the per-image output shapes against the family's layout; return the spec fields it implies."""
    c = num_classes
    labels = f"{c} labels"
    strides = list(options.strides or DEFAULT_STRIDES)
    in_w, in_h = input_size
    if family is not HeadFamily.NANODET and len(shapes) != 1:
        raise ValueError(f"{family.value} models have one output, this one has {len(shapes)}: {shapes}")
    match family:
        case HeadFamily.YOLOV8:
            shape = shapes[0]
            if len(shape) != 2 or 4 + c not in shape:
                hint = ""
                if len(shape) == 2:
                    channels = min(shape)
                    hint = hint_classes(channels, 4)
                    if 5 + c in shape:
                        hint = " (it fits 5 + C: a yolov5 or yolox export?)"
                raise ValueError(
                    f"yolov8 output per image must be (4 + C, N) or (N, 4 + C) with C = {labels}, "
                    f"got {shape}{hint}"
                )
            return {}
        case HeadFamily.YOLOV5 | HeadFamily.YOLOX:
            shape = shapes[0]
            if len(shape) != 2 or shape[1] != 5 + c:
                hint = ""
                if len(shape) == 2:
                    hint = hint_classes(shape[1], 5)
                    if shape[0] == 5 + c:
                        hint = " (channels first: transpose the export to (N, 5 + C))"
                    elif 4 + c in shape:
                        hint = " (it fits 4 + C: a yolov8 export?)"
                raise ValueError(
                    f"{family.value} output per image must be (N, 5 + C) with C = {labels}, got {shape}{hint}"
                )
            if family is HeadFamily.YOLOX and not options.decoded:
                cells = sum((in_w // s) * (in_h // s) for s in strides)
                if cells != shape[0]:
                    raise ValueError(
                        f"yolox output has {shape[0]} anchors but strides {strides} give {cells} for "
                        f"{in_w}x{in_h}: pass --decoded if the export decodes boxes, or the right --strides"
                    )
                return {"strides": strides}
            return {"decoded": True} if family is HeadFamily.YOLOX else {}
        case HeadFamily.NANODET:
            level_cells = [math.ceil(in_w / s) * math.ceil(in_h / s) for s in strides]
            if any(len(s) != 2 for s in shapes):
                raise ValueError(f"nanodet outputs per image must be 2-D, got {shapes}")
            if len(shapes) == 1:
                (anchors, width) = shapes[0]
                bins, rest = divmod(width - c, 4)
                if rest or bins < 2:
                    raise ValueError(
                        f"nanodet output width {width} is not C + 4 * (reg_max + 1) with C = {labels}"
                    )
                if anchors != sum(level_cells):
                    raise ValueError(
                        f"nanodet output has {anchors} anchors but strides {strides} give {sum(level_cells)} "
                        f"for {in_w}x{in_h}: pass the right --strides"
                    )
                return {"strides": strides, "reg_max": bins - 1}
            if len(shapes) != 2 * len(strides):
                raise ValueError(
                    f"nanodet models have 1 output or 2 per stride ({strides}), this one has {len(shapes)}"
                )
            reg_widths = {s[1] for s in shapes[1::2]}
            for level, (cls, reg) in enumerate(zip(shapes[0::2], shapes[1::2], strict=True)):
                if cls[1] != c or cls[0] != level_cells[level] or reg[0] != level_cells[level]:
                    raise ValueError(
                        f"nanodet level {level} (stride {strides[level]}): expected class output "
                        f"({level_cells[level]}, {c}) and box output ({level_cells[level]}, 4 * bins), got {cls} and {reg}"
                    )
            if len(reg_widths) != 1 or next(iter(reg_widths)) % 4 or next(iter(reg_widths)) < 8:
                raise ValueError(f"nanodet box outputs must all be 4 * (reg_max + 1) wide, got {reg_widths}")
            return {"strides": strides, "reg_max": next(iter(reg_widths)) // 4 - 1}
        case HeadFamily.YOLO_GRID:
            if options.anchors is None or len(options.anchors) != 1:
                raise ValueError(
                    "yolo-grid needs --anchors with exactly one level, e.g. [[[10, 13], [16, 30]]]"
                )
            shape, boxes = shapes[0], len(options.anchors[0])
            fits = (len(shape) == 4 and shape[2:] == (boxes, 5 + c)) or (
                len(shape) == 3 and shape[2] == boxes * (5 + c)
            )
            if not fits:
                raise ValueError(
                    f"yolo-grid output per image must be (S, S, B, 5 + C) or (S, S, B * (5 + C)) with "
                    f"B = {boxes} anchors and C = {labels}, got {shape}"
                )
            return {"anchors": options.anchors}
    raise ValueError(f"no layout check for family {family.value}")  # pragma: no cover


_ROLE_NAMES = {
    "count": re.compile(r"num|count|valid", re.IGNORECASE),
    "boxes": re.compile(r"box|bbox|coord", re.IGNORECASE),
    "scores": re.compile(r"score|conf|prob|logit", re.IGNORECASE),
    "classes": re.compile(r"class|label|cls|idx|index", re.IGNORECASE),
}


def _by_names(outputs: Sequence[TensorInfo], names: Sequence[str], roles: Sequence[str]) -> tuple[int, ...]:
    """``--outputs``: the ONNX names, in the family's order."""
    known = [o.name for o in outputs]
    if len(names) != len(roles) or sorted(names) != sorted(known):
        raise ValueError(
            f"--outputs must name each of the outputs {known} once, in the order {', '.join(roles)}; "
            f"got {list(names)}"
        )
    return tuple(known.index(n) for n in names)


def _boxes_scale(
    boxes: np.ndarray, options: ImportOptions, what: str
) -> tuple[dict[str, object], str, tuple[str, ...]]:
    """``boxes_normalised`` from ``--boxes`` or the trial run's box values (warning when it cannot tell)."""
    if options.boxes is not None:
        if options.boxes not in ("pixels", "normalised"):
            raise ValueError(f"--boxes must be pixels or normalised, got {options.boxes!r}")
        normalised = options.boxes == "normalised"
        units = "as fractions of the input" if normalised else "in input pixels"
        why = f"boxes {units} ({options.boxes_from})"
        return {"boxes_normalised": normalised}, why, ()
    largest = float(np.abs(boxes).max()) if boxes.size else 0.0
    if largest > 1.0:
        return {"boxes_normalised": False}, f"boxes in input pixels (they reach {largest:.4g})", ()
    if largest > 0.0:
        raise ValueError(
            f"{what}: every box value on the trial image lies within [0, 1]: pass --boxes normalised if "
            "the boxes are fractions of the input size (with --box-format cxcywh if they are cx cy w h, as "
            "in RT-DETR's rows of 6), --boxes pixels if they are pixels"
        )
    return (
        {"boxes_normalised": False},
        "boxes in input pixels (assumed)",
        (
            f"{what}: the trial image gave no boxes; boxes are taken as input pixels (--boxes normalised if not)",
        ),
    )


def end2end_layout(
    outputs: Sequence[TensorInfo],
    shapes: Sequence[tuple[int, ...]],
    probed: Sequence[np.ndarray],
    c: int,
    options: ImportOptions,
) -> Layout:
    seen = describe(outputs, shapes)
    if len(shapes) != 1 or len(shapes[0]) != 2 or shapes[0][1] != 6:
        raise ValueError(f"end2end models have one output (K, 6) per image (box, score, class), got {seen}")
    box_format = options.box_format or "xyxy"
    if box_format not in ("xyxy", "cxcywh"):
        raise ValueError(f"--box-format must be xyxy or cxcywh, got {box_format!r}")
    rows = probed[0][0]
    classes = rows[:, 5]
    if classes.size and (np.any(np.abs(classes - np.round(classes)) > 1e-3) or classes.max() >= c):
        raise ValueError(
            f"end2end output {seen}: column 6 should hold class ids 0..{c - 1}, the trial image gave "
            f"{classes.min():.4g}..{classes.max():.4g}: not an end2end layout, or the labels are wrong"
        )
    fields, boxes, warnings = _boxes_scale(rows[:, :4], options, "end2end")
    fields["box_format"] = box_format
    reason = f"rows (K, 6) = {box_format} box, score, class; {boxes}; no NMS"
    return Layout(HeadFamily.END2END, (0,), fields, reason, warnings)


def detr_layout(
    outputs: Sequence[TensorInfo],
    shapes: Sequence[tuple[int, ...]],
    probed: Sequence[np.ndarray],
    c: int,
    options: ImportOptions,
) -> Layout:
    seen = describe(outputs, shapes)
    if any(len(s) != 2 for s in shapes) or len(shapes) not in (1, 2):
        raise ValueError(f"detr models have 1 output (Q, 4 + C) or 2 (Q, 4) and (Q, C), got {seen}")
    if len(shapes) == 1:
        order: tuple[int, ...] = (0,)
        if shapes[0][1] not in (4 + c, 5 + c):
            raise ValueError(
                f"detr output per image must be (Q, 4 + C) or (Q, 5 + C) with C = {c} labels, got {seen}"
                + hint_classes(shapes[0][1], 4)
            )
        scores = probed[0][0][:, 4:]
        width = shapes[0][1] - 4
    else:
        if options.outputs:
            order = _by_names(outputs, options.outputs, ("boxes", "scores"))
        else:
            boxes_first = [i for i in (0, 1) if shapes[i][1] == 4]
            if len(boxes_first) == 2:  # C = 4: names tell
                boxes_first = [i for i in (0, 1) if _ROLE_NAMES["boxes"].search(outputs[i].name)]
            if len(boxes_first) != 1:
                raise ValueError(
                    f"cannot tell the boxes output from the scores output ({seen}): pass --outputs BOXES,SCORES "
                    "(their ONNX names)"
                )
            order = (boxes_first[0], 1 - boxes_first[0])
        boxes_shape, scores_shape = shapes[order[0]], shapes[order[1]]
        if boxes_shape[1] != 4 or scores_shape[1] not in (c, c + 1) or boxes_shape[0] != scores_shape[0]:
            raise ValueError(
                f"detr outputs must be boxes (Q, 4) and scores (Q, C) or (Q, C + 1) with C = {c} labels, got "
                f"{seen}" + hint_classes(scores_shape[1], 0)
            )
        scores = probed[order[1]][0]
        width = scores_shape[1]
    no_object = " (the last column, no-object, is dropped)" if width == c + 1 else ""
    boxes = probed[order[0]][0][:, :4]
    largest = float(np.abs(boxes).max()) if boxes.size else 0.0
    warnings: tuple[str, ...] = ()
    if largest > 1.0:
        warnings = (
            f"detr boxes are read as cx cy w h fractions of the input, but the trial image's reach "
            f"{largest:.4g}: check the export (pixels would need another family)",
        )
    if options.score_activation is not None:
        if options.score_activation not in ("none", "sigmoid", "softmax"):
            raise ValueError(f"--scores must be none, sigmoid or softmax, got {options.score_activation!r}")
        activation, why = options.score_activation, "(--scores)"
    elif scores.size and (scores.min() < -1e-3 or scores.max() > 1 + 1e-3):
        activation = "softmax" if width == c + 1 else "sigmoid"
        why = (
            f"(the trial image's scores range {scores.min():.3g}..{scores.max():.3g}: logits; "
            f"{'C + 1 columns: softmax' if width == c + 1 else 'C columns: sigmoid per class'})"
        )
    else:
        activation, why = "none", "(the trial image's scores lie within [0, 1]: probabilities)"
    reason = (
        f"boxes cx cy w h as fractions of the input, scores with activation {activation} {why}{no_object}; "
        "the best (query, class) pairs, no NMS"
    )
    return Layout(HeadFamily.DETR, order, {"score_activation": activation}, reason, warnings)


def nms_in_graph_layout(
    outputs: Sequence[TensorInfo],
    shapes: Sequence[tuple[int, ...]],
    probed: Sequence[np.ndarray],
    options: ImportOptions,
) -> Layout:
    seen = describe(outputs, shapes)
    roles = ("count", "boxes", "scores", "classes")[4 - len(shapes) :] if len(shapes) in (3, 4) else ()
    if not roles:
        raise ValueError(
            f"nms-in-graph models have 4 outputs (count, boxes, scores, classes) or 3, got {seen}"
        )
    if options.outputs:
        order = _by_names(outputs, options.outputs, roles)
    else:
        found: dict[str, int] = {}
        left = set(range(len(shapes)))
        for i in sorted(left):
            if len(shapes[i]) == 2 and shapes[i][1] == 4:
                found.setdefault("boxes", i)
        left -= set(found.values())
        if "count" in roles:
            small = [i for i in left if int(np.prod(shapes[i])) == 1]
            if len(small) > 1:
                small = [i for i in small if outputs[i].dtype in INTEGER_OUTPUTS] or small
            if len(small) == 1:
                found["count"] = small[0]
                left -= {small[0]}
        integer = [i for i in left if outputs[i].dtype in INTEGER_OUTPUTS]
        if len(integer) == 1 and len(left) == 2:
            found["classes"] = integer[0]
            found["scores"] = next(iter(left - {integer[0]}))
        elif len(left) == 2:
            for role in ("scores", "classes"):
                named = [i for i in left if _ROLE_NAMES[role].search(outputs[i].name)]
                if len(named) == 1:
                    found.setdefault(role, named[0])
        if sorted(found) != sorted(roles) or len(set(found.values())) != len(roles):
            raise ValueError(
                f"cannot tell the outputs' roles ({seen}; found {found or 'none'}): pass --outputs "
                f"{','.join(r.upper() for r in roles)} (their ONNX names, in that order)"
            )
        order = tuple(found[r] for r in roles)
    shaped = dict(zip(roles, (shapes[i] for i in order), strict=True))
    k = shaped["boxes"][0] if len(shaped["boxes"]) == 2 else -1
    if (
        shaped["boxes"] != (k, 4)
        or any(shaped[r] not in ((k,), (k, 1)) for r in ("scores", "classes"))
        or ("count" in shaped and int(np.prod(shaped["count"])) != 1)
    ):
        raise ValueError(
            f"nms-in-graph outputs must be {'count (1,), ' if 'count' in roles else ''}boxes (K, 4), scores (K,) "
            f"and classes (K,); read as {shaped}"
        )
    for role, index in zip(roles, order, strict=True):
        info = outputs[index]
        allowed = FLOAT_OUTPUTS if role in ("boxes", "scores") else FLOAT_OUTPUTS | set(INTEGER_OUTPUTS)
        if info.dtype not in allowed:
            raise ValueError(
                f"nms-in-graph {role} output {info.name!r} is {info.dtype}; expected one of {sorted(allowed)}"
            )
    fields, boxes, warnings = _boxes_scale(probed[order[roles.index("boxes")]][0], options, "nms-in-graph")
    which = ", ".join(f"{r} = {outputs[i].name}" for r, i in zip(roles, order, strict=True))
    reason = f"{which}; boxes x1 y1 x2 y2, {boxes}; final detections, no NMS after"
    return Layout(HeadFamily.NMS_IN_GRAPH, order, fields, reason, warnings)
