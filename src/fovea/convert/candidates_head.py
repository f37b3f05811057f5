"""Box decoding and a top-k over every (anchor, class) score, appended to an imported grid detector's graph.

A grid detector's raw outputs are large: an imported NanoDet at 416 px hands back 3549 x 124 floats
(1.7 MB) per image, which Triton copies out of the python backend, into the caller's buffer, and the
detection service then decodes in torch. Appended to the served graph, the decoding of
:mod:`fovea.common.detectors.heads` runs inside onnxruntime and only the best ``k`` (anchor, class) pairs
leave Triton: boxes ``(N, k, 4)`` float32 xyxy in network-input pixels, scores ``(N, k)`` float32, class
ids ``(N, k)`` int32, best first (the ``candidates`` family, 16 KB per image at ``k`` = 1000). The service
then keeps the scores above the request's minimum and runs class-aware NMS, as before.

The same decoding as the torch decoders, family by family (their docstrings hold the layouts):

* ``nanodet``: box distances are the softmax expectation of each side's bins times the stride, decoded
  for the chosen anchors only (the softmax is the costly part); score = class prob;
* ``yolo-grid``: ``p_c = sigmoid(t_o)``, centres from the cell and ``sigmoid(t_x, t_y)``, sizes from the
  anchors and ``exp(t_h, t_w)``; score = ``p_c * softmax(c)``;
* ``yolov5``, ``yolox``: score = ``obj * cls`` (raw YOLOX boxes decoded on its grid first);
* ``yolov8``: score = class prob, the ``(4 + C, A)`` layout transposed.

Per-class candidates are what the decoders make too: a cell yields one per class. The decoders drop a
cell whose objectness (``p_c``, ``obj``) is at or under the minimum score before scoring it; the product
``obj * cls`` is never above ``obj``, so keeping the products above the minimum keeps the same pairs.
:func:`candidate_errors` checks a graph against the torch decoder on an image before it is written.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence

import numpy as np
import onnx
import torch
from torch import Tensor

from fovea.common.detectors.heads import get_decoder
from fovea.contracts.detector import DetectorSpec, HeadFamily

__all__ = [
    "GRID_FAMILIES",
    "OUTPUT_NAMES",
    "GridCandidates",
    "append_candidates",
    "candidate_errors",
    "candidates_spec",
]

GRID_FAMILIES = (
    HeadFamily.NANODET,
    HeadFamily.YOLO_GRID,
    HeadFamily.YOLOV5,
    HeadFamily.YOLOX,
    HeadFamily.YOLOV8,
)
"""Families whose raw outputs the graph can decode: one score per (anchor, class), NMS still to do."""
OUTPUT_NAMES = ("BOXES", "SCORES", "CLASSES")
"""The appended graph's outputs (and Triton's), in the ``candidates`` family's order."""
_RAW_INPUT = "fovea_raw_{}"
_PREFIX = "fovea_candidates/"
MIN_OPSET, MAX_OPSET = 11, 20
"""Opsets the head can be exported at (TopK with a tensor k needs 10+; the exporter's range)."""


def _cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    centre, size = boxes[..., :2], boxes[..., 2:4]
    return torch.cat((centre - size / 2, centre + size / 2), dim=-1)


class GridCandidates(torch.nn.Module):
    """Raw outputs of a grid detector (batch first, ``spec.output_names`` order) -> its best ``k`` candidates.

    Args:
        spec: the imported detector's spec (family, input size, strides, anchors, classes).
        shapes: the per-image shape of each raw output, in ``spec.output_names`` order.
        k: candidates per image (at most anchors x classes).
    """

    centres: Tensor
    strides: Tensor
    project: Tensor
    cells: Tensor
    grid: Tensor
    grid_strides: Tensor

    def __init__(self, spec: DetectorSpec, shapes: Sequence[tuple[int, ...]], k: int) -> None:
        super().__init__()
        if spec.family not in GRID_FAMILIES:
            raise ValueError(f"no in-graph decoding for family {spec.family.value}")
        self.family = spec.family
        self.classes = spec.num_classes
        self.shapes = [tuple(s) for s in shapes]
        self.input_w, self.input_h = spec.input_size
        self.decoded = spec.decoded
        self.single_output = len(shapes) == 1
        if spec.family is HeadFamily.NANODET:
            self._nanodet_buffers(spec)
        elif spec.family is HeadFamily.YOLO_GRID:
            self._yolo_grid_buffers(spec)
        elif spec.family is HeadFamily.YOLOX and not spec.decoded:
            self._yolox_buffers(spec)
        self.transpose = spec.family is HeadFamily.YOLOV8 and self.shapes[0][0] == 4 + self.classes
        anchors = self._anchor_count()
        self.k = min(k, anchors * self.classes)

    def _anchor_count(self) -> int:
        match self.family:
            case HeadFamily.NANODET:
                return int(self.centres.shape[0])
            case HeadFamily.YOLO_GRID:
                return int(self.cells.shape[0])
            case HeadFamily.YOLOV8 if self.transpose:
                return self.shapes[0][1]
            case _:
                return self.shapes[0][0]

    def _nanodet_buffers(self, spec: DetectorSpec) -> None:
        if spec.reg_max is None:
            raise ValueError("nanodet spec needs reg_max")
        centres, strides = [], []
        for stride in spec.strides:
            w, h = math.ceil(self.input_w / stride), math.ceil(self.input_h / stride)
            index = torch.arange(w * h)
            col, row = (index % w).float(), torch.div(index, w, rounding_mode="floor").float()
            centres.append(torch.stack((col, row), 1).add(spec.center_offset).mul(stride))
            strides.append(torch.full((w * h,), float(stride)))
        self.register_buffer("centres", torch.cat(centres))
        self.register_buffer("strides", torch.cat(strides))
        self.register_buffer("project", torch.arange(spec.reg_max + 1, dtype=torch.float32))

    def _yolo_grid_buffers(self, spec: DetectorSpec) -> None:
        if spec.anchors is None or len(spec.anchors) != 1:
            raise ValueError("yolo-grid spec needs anchors for exactly one level")
        anchors = torch.tensor(spec.anchors[0], dtype=torch.float32)  # (B, 2) as (w, h)
        rows, cols = self.shapes[0][0], self.shapes[0][1]
        b = anchors.shape[0]
        index = torch.arange(rows * cols * b)
        cell, anchor = torch.div(index, b, rounding_mode="floor"), index % b
        row, col = torch.div(cell, cols, rounding_mode="floor"), cell % cols
        # per flattened (row, col, anchor): col, row, anchor w, anchor h
        self.register_buffer("cells", torch.stack((col.float(), row.float(), *anchors[anchor].T), 1))
        self.grid_size = (rows, cols, b)

    def _yolox_buffers(self, spec: DetectorSpec) -> None:
        grids, strides = [], []
        for stride in spec.strides:
            w, h = self.input_w // stride, self.input_h // stride
            index = torch.arange(w * h)
            grids.append(
                torch.stack(((index % w).float(), torch.div(index, w, rounding_mode="floor").float()), 1)
            )
            strides.append(torch.full((w * h, 1), float(stride)))
        self.register_buffer("grid", torch.cat(grids))
        self.register_buffer("grid_strides", torch.cat(strides))

    def _scores_and_boxes(self, raw: Sequence[Tensor]) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Per-(anchor, class) scores ``(N, A, C)``, boxes ``(N, A, 4)`` (None for nanodet: decoded after
        the top-k) and nanodet's box logits ``(N, A, 4 * bins)``."""
        c = self.classes
        match self.family:
            case HeadFamily.NANODET:
                if self.single_output:
                    merged = raw[0]
                    return merged[..., :c], None, merged[..., c:]
                return torch.cat(list(raw[0::2]), 1), None, torch.cat(list(raw[1::2]), 1)
            case HeadFamily.YOLO_GRID:
                rows, cols, b = self.grid_size
                grid = raw[0].reshape(raw[0].shape[0], rows * cols * b, 5 + c)
                p_c = grid[..., 0:1].sigmoid()
                cx = (grid[..., 1].sigmoid() + self.cells[:, 0]) / cols * self.input_w
                cy = (grid[..., 2].sigmoid() + self.cells[:, 1]) / rows * self.input_h
                h = self.cells[:, 3] * grid[..., 3].exp()
                w = self.cells[:, 2] * grid[..., 4].exp()
                boxes = _cxcywh_to_xyxy(torch.stack((cx, cy, w, h), -1))
                return p_c * grid[..., 5:].softmax(-1), boxes, None
            case HeadFamily.YOLOV5 | HeadFamily.YOLOX:
                pred = raw[0]
                cxcywh = pred[..., :4]
                if self.family is HeadFamily.YOLOX and not self.decoded:
                    cxcywh = torch.cat(
                        (
                            (pred[..., :2] + self.grid) * self.grid_strides,
                            pred[..., 2:4].exp() * self.grid_strides,
                        ),
                        -1,
                    )
                return pred[..., 4:5] * pred[..., 5:], _cxcywh_to_xyxy(cxcywh), None
            case _:  # yolov8
                pred = raw[0].transpose(1, 2) if self.transpose else raw[0]
                return pred[..., 4:], _cxcywh_to_xyxy(pred[..., :4]), None

    def forward(self, *raw: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        scores, boxes, reg = self._scores_and_boxes(raw)
        n = scores.shape[0]
        best, index = scores.reshape(n, -1).topk(self.k, dim=1)
        anchor = torch.div(index, self.classes, rounding_mode="floor")
        if boxes is None:  # nanodet: decode the chosen anchors' bins only
            assert reg is not None  # for mypy: nanodet always has box logits
            bins = int(self.project.shape[0])
            logits = torch.gather(reg, 1, anchor[..., None].expand(-1, -1, reg.shape[2]))
            dist = (logits.reshape(n, self.k, 4, bins).softmax(-1) * self.project).sum(-1)
            dist = dist * self.strides[anchor][..., None]
            centre = self.centres[anchor]
            picked = torch.cat((centre - dist[..., :2], centre + dist[..., 2:]), -1)
        else:
            picked = torch.gather(boxes, 1, anchor[..., None].expand(-1, -1, 4))
        return picked, best, (index % self.classes).to(torch.int32)


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def export_head(spec: DetectorSpec, shapes: Sequence[tuple[int, ...]], k: int, opset: int) -> onnx.ModelProto:
    """:class:`GridCandidates` as ONNX: inputs ``fovea_raw_<i>`` (batch first, dynamic), outputs
    :data:`OUTPUT_NAMES`."""
    head = GridCandidates(spec, shapes, k).eval()
    names = [_RAW_INPUT.format(i) for i in range(len(shapes))]
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            head,
            tuple(torch.rand(1, *s) for s in shapes),
            buffer,  # type: ignore[arg-type]  # BytesIO works with dynamo=False
            dynamo=False,
            opset_version=opset,
            input_names=names,
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={name: {0: "N"} for name in (*names, *OUTPUT_NAMES)},
        )
    return onnx.load_from_string(buffer.getvalue())


def append_candidates(
    served: onnx.ModelProto, spec: DetectorSpec, shapes: Sequence[tuple[int, ...]], k: int
) -> onnx.ModelProto:
    """``served`` (outputs named ``spec.output_names``) followed by the decoding and top-k: outputs
    :data:`OUTPUT_NAMES`.

    Raises:
        ValueError: the family has no in-graph decoding, or the graph's opset is outside
            [:data:`MIN_OPSET`, :data:`MAX_OPSET`].
    """
    opset = _opset(served)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset {opset} is outside {MIN_OPSET}..{MAX_OPSET}")
    taken = {o.name for o in served.graph.output} - set(spec.output_names)
    if taken & set(OUTPUT_NAMES):
        raise ValueError(f"the graph already has outputs named {sorted(taken & set(OUTPUT_NAMES))}")
    head = onnx.compose.add_prefix(
        export_head(spec, shapes, k, opset), _PREFIX, rename_inputs=False, rename_outputs=False
    )
    head.ir_version = served.ir_version
    io_map = [(name, _RAW_INPUT.format(i)) for i, name in enumerate(spec.output_names)]
    return onnx.compose.merge_models(
        served, head, io_map, producer_name=served.producer_name or "fovea import-onnx"
    )


def candidates_spec(spec: DetectorSpec) -> DetectorSpec:
    """The spec of the appended graph: family ``candidates`` over :data:`OUTPUT_NAMES`, the raw family kept
    in ``decoded_from``."""
    return spec.model_copy(
        update={
            "family": HeadFamily.CANDIDATES,
            "output_names": list(OUTPUT_NAMES),
            "decoded_from": spec.family,
        }
    )


def candidate_errors(
    raw_outputs: Sequence[np.ndarray],
    graph_outputs: Sequence[np.ndarray],
    spec: DetectorSpec,
    min_score: float,
) -> tuple[int, int, float, float]:
    """Compare one image's graph candidates with the torch decoder on the raw outputs (both above
    ``min_score``, at most ``spec.max_candidates``).

    Args:
        raw_outputs: the raw outputs of one image (batch 1), in ``spec.output_names`` order.
        graph_outputs: the appended graph's boxes, scores, class ids for the same image (batch 1).
        spec: the raw family's spec.
        min_score: the score both keep above.

    Returns:
        (decoder's count, graph's count, max abs score difference, max abs box difference in input
        pixels) over the candidates sorted by (class, score, box); ``inf`` differences when the counts
        differ.
    """
    decoder = get_decoder(spec.family)
    boxes, scores, classes = decoder(dict(zip(spec.output_names, raw_outputs, strict=True)), spec, min_score)
    g_boxes, g_scores, g_classes = (np.asarray(o)[0] for o in graph_outputs)
    keep = g_scores > min_score
    g_boxes, g_scores, g_classes = g_boxes[keep], g_scores[keep], g_classes[keep].astype(np.int64)
    if len(g_scores) != len(scores):
        return len(scores), len(g_scores), math.inf, math.inf

    def ordered(b: np.ndarray, s: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.lexsort((b[:, 0], -s, c))
        return s[order], b[order]

    s1, b1 = ordered(boxes.numpy(), scores.numpy(), classes.numpy())
    s2, b2 = ordered(g_boxes, g_scores, g_classes)
    score_error = float(np.abs(s1 - s2).max(initial=0.0))
    box_error = float(np.abs(b1 - b2).max(initial=0.0))
    return len(scores), len(g_scores), score_error, box_error
