"""Head decoders: raw network outputs for one image -> candidate boxes, scores and class ids.

Every decoder has the signature of :data:`Decoder`::

    decode(outputs: Mapping[str, Tensor | ndarray], spec: DetectorSpec, score_threshold: float)
        -> (boxes (K, 4) float32 xyxy in network-input pixels, scores (K,) float32, class_ids (K,) int64)

``outputs`` maps Triton output names (``spec.output_names``) to the tensors of **one** image; a leading
batch dimension of size 1 is accepted and dropped. Inputs are never modified.

Common rules:

* Candidates are per class ("multi-label"): an anchor/cell yields one candidate for **every** class whose
  score is ``> score_threshold`` (better for COCO-style mAP than keeping only the best class). Candidates
  come out in (anchor, class) order, unsorted; NMS is the caller's job (``postprocess.postprocess``).
* At most ``spec.max_candidates`` candidates per image come out: the best by score (ties: lower
  (anchor, class) index), chosen with one ``torch.topk`` over the flattened scores above the threshold
  before any per-candidate work, so a low ``score_threshold`` does not flood NMS.
* Boxes are not clipped to the input; ``preprocess.to_original`` clips them to the original image.
* A family not in :data:`DECODERS` raises ``ValueError`` naming the known ones (see :func:`get_decoder`).

Layouts, per family:

* ``nanodet`` (NanoDet-Plus): per anchor ``[class probs (C, already sigmoid) | box logits (4 * (reg_max+1))]``.
  Either one output ``(N, C + 4 * (reg_max + 1))`` covering all levels (the NanoDet-Plus ONNX export), or
  ``2 * len(strides)`` outputs, per level in order: class probs ``(N_l, C)``, box logits
  ``(N_l, 4 * (reg_max + 1))``. Level ``l`` with stride ``s`` has ``ceil(IH / s) * ceil(IW / s)`` anchors in
  row-major order; anchor ``i`` is centred at ``((i % w) + center_offset) * s, ((i // w) + center_offset) * s``
  with ``w = ceil(IW / s)``. Each side's distance is ``softmax(bins) . [0, 1, ..., reg_max] * s``, sides in
  the order (left, top, right, bottom): ``x1 = cx - l, y1 = cy - t, x2 = cx + r, y2 = cy + b``.
  Score = class prob.
* ``yolo-grid`` (the course's YOLO with anchors, YOLOv2 parameterisation): output ``(S_h, S_w, B, 5 + C)``
  or ``(S_h, S_w, B * (5 + C))``, channels last, ``B = len(spec.anchors[0])``. The last axis is, in the
  course's order, ``(t_o, t_x, t_y, t_h, t_w, c_1 .. c_C)`` (**h before w**) and every value is a raw
  logit: ``p_c = sigmoid(t_o)``, ``cx = (sigmoid(t_x) + col) / S_w * IW``,
  ``cy = (sigmoid(t_y) + row) / S_h * IH``, ``h = anchor_h * exp(t_h)``, ``w = anchor_w * exp(t_w)``
  (anchors in input pixels), class probabilities ``softmax(c)``. Cells with ``p_c <= score_threshold``
  are discarded first; score = ``p_c * P(class)``.
* ``yolov5`` (ultralytics ONNX): ``(N, 5 + C)``, ``(cx, cy, w, h)`` in input pixels, objectness and
  class probs already sigmoid. Anchors with ``obj <= score_threshold`` are discarded; score = ``obj * cls``.
* ``yolox``: ``(N, 5 + C)``, ``(x, y, w, h, obj, cls...)``; obj and cls are already sigmoid (YOLOX's head
  applies it in inference mode). With ``spec.decoded`` the boxes are ``(cx, cy, w, h)`` in input pixels;
  otherwise raw, decoded per level (``IH // s`` rows by ``IW // s`` columns, row-major) as
  ``cx, cy = (pred_xy + (col, row)) * s`` and ``w, h = exp(pred_wh) * s``. Score = ``obj * cls``.
* ``yolov8`` (ultralytics ONNX): ``(4 + C, N)`` or ``(N, 4 + C)`` (the axis of length ``4 + C`` is the
  channel axis; when both are, ``(4 + C, N)`` is assumed), ``(cx, cy, w, h)`` in input pixels, class
  probs, no objectness. Score = class prob.
* ``candidates`` (boxes decoded and capped inside the graph, NMS still to do; Fovea's NanoDet): three
  outputs in ``spec.output_names`` order, boxes ``(K, 4)`` xyxy in input pixels, scores ``(K,)`` and class
  ids ``(K,)``, best first. Candidates with ``score <= score_threshold`` are dropped, then the best
  ``spec.max_candidates`` are kept (the graph's ``K`` is the most there can be).

End-to-end families (``spec.family.end_to_end``): the outputs are final detections, so the caller skips
NMS and keeps the best ``max_detections`` after the class filter (:func:`rank_final`). Rows scoring
``<= score_threshold`` and padding rows (a class id outside ``[0, C)``) are dropped:

* ``end2end`` (YOLOv10 / YOLO26 end-to-end heads): one output ``(K, 6)``, a row per detection:
  ``x1 y1 x2 y2 score class`` (``spec.box_format`` ``cxcywh``: ``cx cy w h score class``), in input pixels,
  or fractions of the input size when ``spec.boxes_normalised`` (then multiplied by ``IW, IH, IW, IH``).
* ``detr`` (RT-DETR, D-FINE, RF-DETR, DETR): boxes ``(Q, 4)`` as ``cx cy w h`` fractions of the input size,
  and class scores ``(Q, C)``, or ``(Q, C + 1)`` with a trailing no-object column (dropped), either in one
  output ``(Q, 4 + C)`` or two outputs (boxes, scores) in ``spec.output_names`` order.
  ``spec.score_activation``: ``none`` (probabilities), ``sigmoid`` (per-class logits), ``softmax`` (logits
  over the row). One candidate per (query, class) above the threshold, the best ``spec.max_candidates``
  (RT-DETR's own post-processing is this top-k over queries x classes, without NMS).
* ``nms-in-graph`` (EfficientNMS-style exports): outputs in ``spec.output_names`` order: an optional
  count ``(1,)`` (``num_dets``), boxes ``(K, 4)`` xyxy in input pixels (or fractions with
  ``spec.boxes_normalised``), scores ``(K,)``, class ids ``(K,)``. Only the first ``count`` rows are read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import torch
from torch import Tensor

from fovea.common.detectors.boxes import box_cxcywh_to_xyxy
from fovea.common.detectors.nms import top_k
from fovea.contracts.detector import DetectorSpec, HeadFamily

__all__ = [
    "DECODERS",
    "Decoded",
    "Decoder",
    "RawOutputs",
    "decode",
    "decode_candidates",
    "decode_detr",
    "decode_end2end",
    "decode_nms_in_graph",
    "decode_nanodet",
    "decode_yolo_grid",
    "decode_yolov5",
    "decode_yolov8",
    "decode_yolox",
    "get_decoder",
    "rank_final",
    "select_candidates",
    "top_candidates",
]

RawOutputs = Mapping[str, Tensor | np.ndarray]
Decoded = tuple[Tensor, Tensor, Tensor]
Decoder = Callable[[RawOutputs, DetectorSpec, float], Decoded]


def _check_threshold(score_threshold: float) -> None:
    if not 0.0 <= score_threshold < 1.0:
        raise ValueError(f"score_threshold must be in [0, 1), got {score_threshold}")


def _output(outputs: RawOutputs, name: str, ndim: int) -> Tensor:
    """Fetch output ``name`` as float32 with ``ndim`` dims (a leading batch of 1 is dropped)."""
    if name not in outputs:
        raise ValueError(f"missing model output {name!r}; got {sorted(outputs)}")
    tensor = torch.as_tensor(outputs[name]).to(torch.float32)
    if tensor.ndim == ndim + 1 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.ndim != ndim:
        raise ValueError(f"output {name!r} must have {ndim} dims (one image), got {tuple(tensor.shape)}")
    return tensor


def _check_width(tensor: Tensor, width: int, what: str) -> None:
    if tensor.shape[-1] != width:
        raise ValueError(f"{what}: expected last dim {width}, got shape {tuple(tensor.shape)}")


def top_candidates(
    class_scores: Tensor, score_threshold: float, max_candidates: int | None
) -> tuple[Tensor, Tensor]:
    """The (anchor, class) pairs scoring ``> score_threshold``, at most ``max_candidates`` of the best.

    Args:
        class_scores: ``(N, C)`` per-class scores.
        score_threshold: strict lower bound on kept scores.
        max_candidates: cap (>= 0), None for no cap; ties at the cut keep the lower (anchor, class) index.

    Returns:
        anchor indices ``(K,)`` and class ids ``(K,)``, both int64, in (anchor, class) order.
    """
    if max_candidates is not None and max_candidates < 0:
        raise ValueError(f"max_candidates must be >= 0, got {max_candidates}")
    num_classes = class_scores.shape[1]
    flat = class_scores.reshape(-1)
    index = torch.nonzero(flat > score_threshold).squeeze(1)
    if max_candidates is not None and index.shape[0] > max_candidates:
        index = index[top_k(flat[index], max_candidates)]
    return torch.div(index, num_classes, rounding_mode="floor"), index % num_classes


def select_candidates(
    boxes: Tensor, class_scores: Tensor, score_threshold: float, max_candidates: int | None = None
) -> Decoded:
    """One candidate per (anchor, class) with score ``> score_threshold``, the best ``max_candidates``.

    Args:
        boxes: ``(N, 4)`` xyxy.
        class_scores: ``(N, C)`` per-class scores.
        score_threshold: strict lower bound on kept scores.
        max_candidates: cap on the candidates (see :func:`top_candidates`); None for no cap.

    Returns:
        boxes ``(K, 4)`` float32, scores ``(K,)`` float32, class ids ``(K,)`` int64, in (anchor, class)
        order.
    """
    anchor, cls = top_candidates(class_scores, score_threshold, max_candidates)
    return (
        boxes[anchor].to(torch.float32),
        class_scores[anchor, cls].to(torch.float32),
        cls.to(torch.int64),
    )


# --- nanodet -------------------------------------------------------------------------------------


def _nanodet_priors(spec: DetectorSpec, device: torch.device) -> tuple[Tensor, Tensor]:
    """Anchor centres ``(N, 2)`` and strides ``(N,)`` over all levels, in output order."""
    in_w, in_h = spec.input_size
    centres, strides = [], []
    for stride in spec.strides:
        w, h = math.ceil(in_w / stride), math.ceil(in_h / stride)
        index = torch.arange(w * h, device=device)
        col = (index % w).to(torch.float32)
        row = torch.div(index, w, rounding_mode="floor").to(torch.float32)
        centres.append(torch.stack((col, row), dim=1).add(spec.center_offset).mul(stride))
        strides.append(torch.full((w * h,), float(stride), device=device))
    return torch.cat(centres), torch.cat(strides)


def _nanodet_tensors(outputs: RawOutputs, spec: DetectorSpec, bins: int) -> tuple[Tensor, Tensor]:
    """Class probs ``(N, C)`` and box logits ``(N, 4 * bins)`` over all levels."""
    num_classes = spec.num_classes
    if len(spec.output_names) == 1:
        name = spec.output_names[0]
        merged = _output(outputs, name, 2)
        _check_width(merged, num_classes + 4 * bins, f"nanodet output {name!r}")
        return merged[:, :num_classes], merged[:, num_classes:]
    cls_parts, reg_parts = [], []
    for cls_name, reg_name in zip(spec.output_names[0::2], spec.output_names[1::2], strict=True):
        cls_part, reg_part = _output(outputs, cls_name, 2), _output(outputs, reg_name, 2)
        _check_width(cls_part, num_classes, f"nanodet class output {cls_name!r}")
        _check_width(reg_part, 4 * bins, f"nanodet box output {reg_name!r}")
        if cls_part.shape[0] != reg_part.shape[0]:
            raise ValueError(f"nanodet outputs {cls_name!r} and {reg_name!r} differ in anchor count")
        cls_parts.append(cls_part)
        reg_parts.append(reg_part)
    return torch.cat(cls_parts), torch.cat(reg_parts)


def decode_nanodet(outputs: RawOutputs, spec: DetectorSpec, score_threshold: float) -> Decoded:
    """Decode a NanoDet(-Plus) head; layout in the module docstring."""
    _check_threshold(score_threshold)
    if spec.reg_max is None:
        raise ValueError("nanodet spec needs reg_max")
    bins = spec.reg_max + 1
    cls, reg = _nanodet_tensors(outputs, spec, bins)
    centres, strides = _nanodet_priors(spec, cls.device)
    if cls.shape[0] != centres.shape[0]:
        raise ValueError(
            f"nanodet output has {cls.shape[0]} anchors, expected {centres.shape[0]} for input "
            f"{spec.input_size} and strides {spec.strides}"
        )
    anchor, class_ids = top_candidates(cls, score_threshold, spec.max_candidates)
    # boxes only for the chosen candidates: the bin softmax is the costly part of the decode
    project = torch.arange(bins, dtype=torch.float32, device=reg.device)
    dist = (reg[anchor].reshape(-1, 4, bins).softmax(dim=-1) * project).sum(dim=-1)  # l,t,r,b in strides
    dist = dist * strides[anchor, None]
    centre = centres[anchor]
    boxes = torch.cat((centre - dist[:, :2], centre + dist[:, 2:]), dim=1)
    return boxes.to(torch.float32), cls[anchor, class_ids].to(torch.float32), class_ids


# --- yolo-grid -----------------------------------------------------------------------------------


def _yolo_grid_tensor(outputs: RawOutputs, spec: DetectorSpec, num_anchors: int) -> Tensor:
    """The output as ``(S_h, S_w, B, 5 + C)``."""
    name = spec.output_names[0]
    depth = 5 + spec.num_classes
    if name not in outputs:
        raise ValueError(f"missing model output {name!r}; got {sorted(outputs)}")
    raw = torch.as_tensor(outputs[name]).to(torch.float32)
    if raw.ndim == 5 and raw.shape[0] == 1:
        raw = raw[0]
    if raw.ndim == 4 and tuple(raw.shape[2:]) == (num_anchors, depth):
        return raw
    if raw.ndim == 4 and raw.shape[0] == 1:
        raw = raw[0]
    if raw.ndim == 3 and raw.shape[2] == num_anchors * depth:
        return raw.reshape(raw.shape[0], raw.shape[1], num_anchors, depth)
    raise ValueError(
        f"yolo-grid output {name!r} must be (S_h, S_w, {num_anchors}, {depth}) or "
        f"(S_h, S_w, {num_anchors * depth}), got {tuple(raw.shape)}"
    )


def decode_yolo_grid(outputs: RawOutputs, spec: DetectorSpec, score_threshold: float) -> Decoded:
    """Decode the course's S x S x B x (5 + C) YOLO grid (raw logits, YOLOv2 parameterisation)."""
    _check_threshold(score_threshold)
    if spec.anchors is None or len(spec.anchors) != 1:
        raise ValueError("yolo-grid spec needs anchors for exactly one level")
    anchors = torch.tensor(spec.anchors[0], dtype=torch.float32)  # (B, 2) as (w, h)
    grid = _yolo_grid_tensor(outputs, spec, anchors.shape[0])
    rows, cols = grid.shape[0], grid.shape[1]
    anchors = anchors.to(grid.device)
    in_w, in_h = spec.input_size
    p_c = grid[..., 0].sigmoid()  # (S_h, S_w, B)
    row, col, anchor = torch.nonzero(p_c > score_threshold, as_tuple=True)
    cells = grid[row, col, anchor]  # (K, 5 + C)
    cx = (cells[:, 1].sigmoid() + col) / cols * in_w
    cy = (cells[:, 2].sigmoid() + row) / rows * in_h
    h = anchors[anchor, 1] * cells[:, 3].exp()
    w = anchors[anchor, 0] * cells[:, 4].exp()
    boxes = box_cxcywh_to_xyxy(torch.stack((cx, cy, w, h), dim=1))
    class_scores = p_c[row, col, anchor][:, None] * cells[:, 5:].softmax(dim=1)
    return select_candidates(boxes, class_scores, score_threshold, spec.max_candidates)


# --- yolov5 / yolox / yolov8 ---------------------------------------------------------------------


def decode_yolov5(outputs: RawOutputs, spec: DetectorSpec, score_threshold: float) -> Decoded:
    """Decode an ultralytics YOLOv5 export ``(N, 5 + C)``: pixels cxcywh, sigmoid obj and cls."""
    _check_threshold(score_threshold)
    name = spec.output_names[0]
    pred = _output(outputs, name, 2)
    _check_width(pred, 5 + spec.num_classes, f"yolov5 output {name!r}")
    pred = pred[pred[:, 4] > score_threshold]
    return select_candidates(
        box_cxcywh_to_xyxy(pred[:, :4]), pred[:, 4:5] * pred[:, 5:], score_threshold, spec.max_candidates
    )


def _yolox_grid(spec: DetectorSpec, device: torch.device) -> tuple[Tensor, Tensor]:
    """Cell ``(col, row)`` offsets ``(N, 2)`` and strides ``(N, 1)`` over all levels, as YOLOX orders them."""
    in_w, in_h = spec.input_size
    grids, strides = [], []
    for stride in spec.strides:
        w, h = in_w // stride, in_h // stride
        index = torch.arange(w * h, device=device)
        col = (index % w).to(torch.float32)
        row = torch.div(index, w, rounding_mode="floor").to(torch.float32)
        grids.append(torch.stack((col, row), dim=1))
        strides.append(torch.full((w * h, 1), float(stride), device=device))
    return torch.cat(grids), torch.cat(strides)


def decode_yolox(outputs: RawOutputs, spec: DetectorSpec, score_threshold: float) -> Decoded:
    """Decode a YOLOX export ``(N, 5 + C)``, raw or already decoded (``spec.decoded``)."""
    _check_threshold(score_threshold)
    name = spec.output_names[0]
    pred = _output(outputs, name, 2)
    _check_width(pred, 5 + spec.num_classes, f"yolox output {name!r}")
    cxcywh = pred[:, :4]
    if not spec.decoded:
        grid, strides = _yolox_grid(spec, pred.device)
        if grid.shape[0] != pred.shape[0]:
            raise ValueError(
                f"yolox output has {pred.shape[0]} anchors, expected {grid.shape[0]} for input "
                f"{spec.input_size} and strides {spec.strides}"
            )
        cxcywh = torch.cat(((pred[:, :2] + grid) * strides, pred[:, 2:4].exp() * strides), dim=1)
    keep = pred[:, 4] > score_threshold
    return select_candidates(
        box_cxcywh_to_xyxy(cxcywh[keep]),
        pred[keep, 4:5] * pred[keep, 5:],
        score_threshold,
        spec.max_candidates,
    )


def decode_yolov8(outputs: RawOutputs, spec: DetectorSpec, score_threshold: float) -> Decoded:
    """Decode an ultralytics YOLOv8 export ``(4 + C, N)`` or ``(N, 4 + C)``: pixels cxcywh, class probs."""
    _check_threshold(score_threshold)
    name = spec.output_names[0]
    pred = _output(outputs, name, 2)
    depth = 4 + spec.num_classes
    if pred.shape[0] == depth:
        pred = pred.T
    _check_width(pred, depth, f"yolov8 output {name!r} (either axis)")
    return select_candidates(
        box_cxcywh_to_xyxy(pred[:, :4]), pred[:, 4:], score_threshold, spec.max_candidates
    )


# --- registry ------------------------------------------------------------------------------------


def decode_candidates(outputs: RawOutputs, spec: DetectorSpec, score_threshold: float) -> Decoded:
    """Candidates the graph already decoded (boxes, scores, class ids); layout in the module docstring."""
    _check_threshold(score_threshold)
    missing = [n for n in spec.output_names if n not in outputs]
    if missing:
        raise ValueError(f"missing model outputs {missing}; got {sorted(outputs)}")
    boxes_name, scores_name, classes_name = spec.output_names
    boxes = torch.as_tensor(outputs[boxes_name]).to(torch.float32).reshape(-1, 4)
    scores = torch.as_tensor(outputs[scores_name]).to(torch.float32).reshape(-1)
    class_ids = torch.as_tensor(outputs[classes_name]).to(torch.int64).reshape(-1)
    if not boxes.shape[0] == scores.shape[0] == class_ids.shape[0]:
        raise ValueError(
            f"candidates outputs disagree: {boxes.shape[0]} boxes, {scores.shape[0]} scores, "
            f"{class_ids.shape[0]} class ids"
        )
    keep = torch.nonzero(scores > score_threshold).squeeze(1)
    if spec.max_candidates is not None and keep.shape[0] > spec.max_candidates:
        keep = keep[top_k(scores[keep], spec.max_candidates)]
    return boxes[keep], scores[keep], class_ids[keep]


# --- end-to-end: final detections, no NMS after ---------------------------------------------------


def _input_scale(spec: DetectorSpec, device: torch.device) -> Tensor:
    """``(IW, IH, IW, IH)`` float32, to turn fractions of the input into input pixels."""
    in_w, in_h = spec.input_size
    return torch.tensor([in_w, in_h, in_w, in_h], dtype=torch.float32, device=device)


def _final_rows(
    boxes: Tensor, scores: Tensor, class_ids: Tensor, spec: DetectorSpec, score_threshold: float
) -> Decoded:
    """Drop rows at or under the threshold and padding (class id outside ``[0, C)``); keep the best
    ``spec.max_candidates``, in row order."""
    valid = (scores > score_threshold) & (class_ids >= 0) & (class_ids < spec.num_classes)
    keep = torch.nonzero(valid).squeeze(1)
    if keep.shape[0] > spec.max_candidates:
        keep = keep[top_k(scores[keep], spec.max_candidates)]
    return boxes[keep].to(torch.float32), scores[keep].to(torch.float32), class_ids[keep].to(torch.int64)


def decode_end2end(outputs: RawOutputs, spec: DetectorSpec, score_threshold: float) -> Decoded:
    """Final detections ``(K, 6)``: box, score, class per row; layout in the module docstring."""
    _check_threshold(score_threshold)
    name = spec.output_names[0]
    pred = _output(outputs, name, 2)
    _check_width(pred, 6, f"end2end output {name!r}")
    boxes = pred[:, :4]
    if spec.boxes_normalised:
        boxes = boxes * _input_scale(spec, pred.device)
    if spec.box_format == "cxcywh":
        boxes = box_cxcywh_to_xyxy(boxes)
    return _final_rows(boxes, pred[:, 4], pred[:, 5].round().to(torch.int64), spec, score_threshold)


def _detr_tensors(outputs: RawOutputs, spec: DetectorSpec) -> tuple[Tensor, Tensor]:
    """Boxes ``(Q, 4)`` and raw class scores ``(Q, C)`` or ``(Q, C + 1)``."""
    c = spec.num_classes
    if len(spec.output_names) == 1:
        name = spec.output_names[0]
        pred = _output(outputs, name, 2)
        if pred.shape[1] not in (4 + c, 5 + c):
            raise ValueError(
                f"detr output {name!r}: expected (Q, 4 + {c}) or (Q, 5 + {c}), got {tuple(pred.shape)}"
            )
        return pred[:, :4], pred[:, 4:]
    boxes_name, scores_name = spec.output_names
    boxes, scores = _output(outputs, boxes_name, 2), _output(outputs, scores_name, 2)
    _check_width(boxes, 4, f"detr boxes output {boxes_name!r}")
    if scores.shape[1] not in (c, c + 1) or scores.shape[0] != boxes.shape[0]:
        raise ValueError(
            f"detr scores output {scores_name!r}: expected ({boxes.shape[0]}, {c}) or ({boxes.shape[0]}, "
            f"{c + 1}), got {tuple(scores.shape)}"
        )
    return boxes, scores


def decode_detr(outputs: RawOutputs, spec: DetectorSpec, score_threshold: float) -> Decoded:
    """DETR-family queries: normalised cxcywh boxes and per-class scores; top-k over (query, class)."""
    _check_threshold(score_threshold)
    boxes, scores = _detr_tensors(outputs, spec)
    match spec.score_activation:
        case "sigmoid":
            scores = scores.sigmoid()
        case "softmax":
            scores = scores.softmax(dim=1)
    scores = scores[:, : spec.num_classes]  # a trailing no-object column is not a class
    boxes = box_cxcywh_to_xyxy(boxes * _input_scale(spec, boxes.device))
    return select_candidates(boxes, scores, score_threshold, spec.max_candidates)


def decode_nms_in_graph(outputs: RawOutputs, spec: DetectorSpec, score_threshold: float) -> Decoded:
    """Detections after the graph's own NMS: [count,] boxes, scores, classes; layout in the module
    docstring."""
    _check_threshold(score_threshold)
    missing = [n for n in spec.output_names if n not in outputs]
    if missing:
        raise ValueError(f"missing model outputs {missing}; got {sorted(outputs)}")
    *count_name, boxes_name, scores_name, classes_name = spec.output_names
    boxes = torch.as_tensor(outputs[boxes_name]).to(torch.float32).reshape(-1, 4)
    scores = torch.as_tensor(outputs[scores_name]).to(torch.float32).reshape(-1)
    class_ids = torch.as_tensor(outputs[classes_name]).to(torch.float32).round().to(torch.int64).reshape(-1)
    if not boxes.shape[0] == scores.shape[0] == class_ids.shape[0]:
        raise ValueError(
            f"nms-in-graph outputs disagree: {boxes.shape[0]} boxes, {scores.shape[0]} scores, "
            f"{class_ids.shape[0]} class ids"
        )
    if count_name:
        count = int(torch.as_tensor(outputs[count_name[0]]).reshape(-1)[0])
        boxes, scores, class_ids = boxes[:count], scores[:count], class_ids[:count]
    if spec.boxes_normalised:
        boxes = boxes * _input_scale(spec, boxes.device)
    return _final_rows(boxes, scores, class_ids, spec, score_threshold)


def rank_final(
    boxes: Tensor,
    scores: Tensor,
    class_ids: Tensor,
    *,
    max_detections: int,
    class_filter: set[int] | None = None,
) -> Decoded:
    """What end-to-end outputs get instead of NMS: the wanted classes, the best ``max_detections``.

    Args:
        boxes: ``(N, 4)`` xyxy; scores ``(N,)``; class_ids ``(N,)``.
        max_detections: at most this many results (>= 0).
        class_filter: class ids to keep; None keeps all.

    Returns:
        boxes ``(K, 4)`` float32, scores ``(K,)`` float32, class ids ``(K,)`` int64, by decreasing score
        (ties: lower input index first).
    """
    if max_detections < 0:
        raise ValueError(f"max_detections must be >= 0, got {max_detections}")
    if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.shape != (boxes.shape[0],):
        raise ValueError(
            f"boxes (N, 4) and scores (N,) expected, got {tuple(boxes.shape)}, {tuple(scores.shape)}"
        )
    if class_ids.shape != scores.shape:
        raise ValueError(f"class_ids must have shape {tuple(scores.shape)}, got {tuple(class_ids.shape)}")
    index = torch.arange(boxes.shape[0], device=boxes.device)
    if class_filter is not None:
        wanted = torch.tensor(sorted(class_filter), dtype=torch.int64, device=class_ids.device)
        index = index[torch.isin(class_ids.to(torch.int64), wanted)]
    order = torch.sort(scores[index], descending=True, stable=True).indices
    keep = index[order][:max_detections]
    return boxes[keep].to(torch.float32), scores[keep].to(torch.float32), class_ids[keep].to(torch.int64)


DECODERS: dict[HeadFamily, Decoder] = {
    HeadFamily.CANDIDATES: decode_candidates,
    HeadFamily.NANODET: decode_nanodet,
    HeadFamily.YOLO_GRID: decode_yolo_grid,
    HeadFamily.YOLOV5: decode_yolov5,
    HeadFamily.YOLOX: decode_yolox,
    HeadFamily.YOLOV8: decode_yolov8,
    HeadFamily.END2END: decode_end2end,
    HeadFamily.DETR: decode_detr,
    HeadFamily.NMS_IN_GRAPH: decode_nms_in_graph,
}


def get_decoder(family: HeadFamily | str) -> Decoder:
    """The decoder for ``family``; call it at start-up so an unknown family fails early.

    Raises:
        ValueError: unknown family; the message lists the known ones.
    """
    known = ", ".join(f.value for f in DECODERS)
    try:
        return DECODERS[HeadFamily(family)]
    except (ValueError, KeyError):
        raise ValueError(f"unknown head family {family!r}; known: {known}") from None


def decode(outputs: RawOutputs, spec: DetectorSpec, score_threshold: float) -> Decoded:
    """Decode with ``spec.family``'s decoder (see :data:`DECODERS`)."""
    return get_decoder(spec.family)(outputs, spec, score_threshold)
