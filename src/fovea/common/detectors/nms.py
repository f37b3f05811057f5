"""Non-maximum suppression: a vectorised torch implementation and its plain-Python reference.

Convention (the course's, see ``cnn-course.md``, "Non-max suppression algorithm"): walk the boxes by
decreasing score; keep a box unless it was suppressed; a kept box **suppresses every later box whose IoU
with it is >= iou_threshold** (torchvision suppresses on ``>``; we do not). Equal scores are broken by
index: the lower index comes first (a stable sort). IoU is computed in float64 by both implementations with
the formula and operation order of :func:`fovea.common.detectors.boxes.box_iou`, so they agree exactly, ties and
boundary cases included.

The fast version processes the score-sorted boxes in blocks of ``_BLOCK`` boxes:

1. a ``(B, B)`` "j suppresses i" matrix is computed for the block, vectorised; the greedy scan over it (the
   one inherently sequential step) runs on the CPU over ``B`` rows of booleans, as torchvision's CUDA
   kernel does with its bitmask;
2. the block's kept boxes then suppress the later still-alive boxes, in column chunks of ``_CHUNK`` so that
   memory stays at ``O(B * CHUNK)`` whatever the number of boxes.

Pairs that do not overlap on both axes have intersection exactly 0, so (for a positive threshold) four
comparisons rule them out and the float64 IoU is only computed for overlapping pairs.

Class-aware ``batched_nms`` masks the suppression matrix with "same class" for small inputs and runs one
``nms`` per class for large ones (less pairwise work); both give the reference's answer.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["batched_nms", "nms", "reference_batched_nms", "reference_nms", "top_k"]

_BLOCK = 256
_CHUNK = 8192
_PER_CLASS_MIN_BOXES = 2048


def top_k(scores: Tensor, k: int) -> Tensor:
    """Indices of the ``k`` highest scores, in increasing index order (not score order).

    The cut is deterministic: among scores equal to the ``k``-th best, the lower indices are taken, as a
    stable descending sort would. Costs one ``torch.topk`` plus a few linear passes, not a full sort.

    Args:
        scores: ``(N,)`` scores without NaN.
        k: how many to keep, >= 0; all ``N`` when ``k >= N``.

    Returns:
        ``(min(k, N),)`` int64 indices, ascending.
    """
    if scores.ndim != 1:
        raise ValueError(f"scores must have shape (N,), got {tuple(scores.shape)}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    n = scores.shape[0]
    if k >= n:
        return torch.arange(n, device=scores.device)
    if k == 0:
        return _empty_keep(scores.device)
    kth = torch.topk(scores, k, sorted=False).values.min()
    chosen = scores > kth
    ties = torch.nonzero(scores == kth).squeeze(1)[: k - int(chosen.sum())]
    chosen[ties] = True
    return torch.nonzero(chosen).squeeze(1)


def _check_inputs(boxes: Tensor, scores: Tensor, iou_threshold: float) -> None:
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {tuple(boxes.shape)}")
    if scores.shape != (boxes.shape[0],):
        raise ValueError(f"scores must have shape ({boxes.shape[0]},), got {tuple(scores.shape)}")
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    if boxes.numel() and not bool(torch.isfinite(boxes).all()):
        raise ValueError("boxes contain NaN or infinite values")
    if scores.numel() and bool(torch.isnan(scores).any()):
        raise ValueError("scores contain NaN")


def _empty_keep(device: torch.device) -> Tensor:
    return torch.empty(0, dtype=torch.int64, device=device)


def _score_order(scores: Tensor) -> Tensor:
    """``(N,)`` int64 indices by decreasing score, lower index first among equal scores."""
    return torch.sort(scores, descending=True, stable=True).indices


def _resolve_block(suppress: Tensor, alive: Tensor) -> Tensor:
    """Greedy keep mask inside one block: the one sequential step, a scan over ``B`` rows on the CPU.

    Args:
        suppress: ``(B, B)`` bool, ``suppress[j, i]`` = box ``j`` would suppress box ``i``; only ``j < i``
            is read.
        alive: ``(B,)`` bool, boxes not suppressed by earlier blocks.

    Returns:
        ``(B,)`` bool keep mask on ``alive``'s device.
    """
    rows = torch.triu(suppress, diagonal=1).cpu().numpy()
    removed = ~alive.cpu().numpy()
    for i in range(rows.shape[0]):
        if not removed[i]:
            removed |= rows[i]
    return torch.from_numpy(~removed).to(alive.device)


def _pair_iou(a: Tensor, b: Tensor) -> Tensor:
    """Element-wise IoU of paired xyxy boxes, ``(P, 4)``, ``(P, 4)`` -> ``(P,)``.

    Same formula and operation order as ``box_iou`` and ``_reference_iou`` (0 where the union is 0).
    """
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    w = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    h = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp(min=0)
    inter = w * h
    union = area_a + area_b - inter
    positive = union > 0
    return torch.where(positive, inter / torch.where(positive, union, torch.ones_like(union)), 0.0)


def _suppression(
    rows: Tensor, cols: Tensor, row_cls: Tensor | None, col_cls: Tensor | None, iou_threshold: float
) -> Tensor:
    """Which row box suppresses which column box.

    A pair whose boxes do not overlap on both axes has intersection exactly 0, hence IoU 0, so for a
    positive threshold only the overlapping pairs (found with four cheap comparisons) need an IoU.

    Args:
        rows: ``(R, 4)`` float64 xyxy.
        cols: ``(C, 4)`` float64 xyxy.
        row_cls: ``(R,)`` int64 class ids, or None (class-agnostic).
        col_cls: ``(C,)`` int64 class ids, or None.
        iou_threshold: suppress on IoU >= this.

    Returns:
        ``(R, C)`` bool.
    """
    same = torch.ones(rows.shape[0], cols.shape[0], dtype=torch.bool, device=rows.device)
    if row_cls is not None and col_cls is not None:
        same = row_cls[:, None] == col_cls[None, :]
    if iou_threshold <= 0.0:
        return same  # IoU >= 0 always holds
    candidate = (
        same
        & (cols[None, :, 0] < rows[:, None, 2])
        & (rows[:, None, 0] < cols[None, :, 2])
        & (cols[None, :, 1] < rows[:, None, 3])
        & (rows[:, None, 1] < cols[None, :, 3])
    )
    r, c = torch.nonzero(candidate, as_tuple=True)
    result = torch.zeros_like(candidate)
    result[r, c] = _pair_iou(rows[r], cols[c]) >= iou_threshold
    return result


def _greedy_sorted(boxes: Tensor, class_ids: Tensor | None, iou_threshold: float) -> Tensor:
    """Greedy NMS over boxes already sorted by decreasing score.

    Args:
        boxes: ``(N, 4)`` float64 xyxy, in score order.
        class_ids: ``(N,)`` int64 or None (one class).
        iou_threshold: suppress on IoU >= this.

    Returns:
        ``(N,)`` bool keep mask, in the same (sorted) order.
    """
    n = boxes.shape[0]
    suppressed = torch.zeros(n, dtype=torch.bool, device=boxes.device)
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        block = boxes[start:stop]
        block_cls = None if class_ids is None else class_ids[start:stop]
        keep = _resolve_block(
            _suppression(block, block, block_cls, block_cls, iou_threshold), ~suppressed[start:stop]
        )
        suppressed[start:stop] = ~keep
        kept = block[keep]
        kept_cls = None if block_cls is None else block_cls[keep]
        if kept.shape[0] == 0 or stop == n:
            continue
        later = torch.nonzero(~suppressed[stop:]).squeeze(1) + stop
        for chunk in later.split(_CHUNK):
            chunk_cls = None if class_ids is None else class_ids[chunk]
            hit = _suppression(kept, boxes[chunk], kept_cls, chunk_cls, iou_threshold).any(dim=0)
            suppressed[chunk[hit]] = True
    return ~suppressed


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Class-agnostic greedy NMS (suppress on IoU >= ``iou_threshold``).

    Works on CPU and CUDA tensors; memory is bounded by blocks (see the module docstring).

    Args:
        boxes: ``(N, 4)`` xyxy, any floating dtype (compared in float64).
        scores: ``(N,)`` scores.
        iou_threshold: in ``[0, 1]``; a later box with IoU >= it against a kept box is dropped.

    Returns:
        ``(K,)`` int64 indices into ``boxes`` of the kept boxes, by decreasing score (ties: lower index
        first).
    """
    _check_inputs(boxes, scores, iou_threshold)
    if boxes.shape[0] == 0:
        return _empty_keep(boxes.device)
    order = _score_order(scores)
    keep = _greedy_sorted(boxes.to(torch.float64)[order], None, iou_threshold)
    return order[keep]


def batched_nms(boxes: Tensor, scores: Tensor, class_ids: Tensor, iou_threshold: float) -> Tensor:
    """Class-aware greedy NMS: a box only suppresses boxes of its own class.

    Args:
        boxes: ``(N, 4)`` xyxy.
        scores: ``(N,)`` scores.
        class_ids: ``(N,)`` integer class ids.
        iou_threshold: in ``[0, 1]``; suppress on IoU >= it.

    Returns:
        ``(K,)`` int64 indices of the kept boxes, by decreasing score (ties: lower index first).
    """
    _check_inputs(boxes, scores, iou_threshold)
    if class_ids.shape != scores.shape:
        raise ValueError(f"class_ids must have shape {tuple(scores.shape)}, got {tuple(class_ids.shape)}")
    if class_ids.is_floating_point() or class_ids.is_complex():
        raise ValueError(f"class_ids must be integers, got {class_ids.dtype}")
    if boxes.shape[0] == 0:
        return _empty_keep(boxes.device)
    class_ids = class_ids.to(torch.int64)
    if boxes.shape[0] < _PER_CLASS_MIN_BOXES:
        order = _score_order(scores)
        keep = _greedy_sorted(boxes.to(torch.float64)[order], class_ids[order], iou_threshold)
        return order[keep]
    kept = [
        idx[nms(boxes[idx], scores[idx], iou_threshold)]
        for idx in (torch.nonzero(class_ids == c).squeeze(1) for c in torch.unique(class_ids))
    ]
    merged = torch.sort(torch.cat(kept)).values  # index order, so the stable sort below breaks ties by index
    return merged[_score_order(scores[merged])]


def _reference_iou(a: list[float], b: list[float]) -> float:
    """IoU of two xyxy boxes with Python floats, same operation order as ``box_iou``."""
    area_a = max(a[2] - a[0], 0.0) * max(a[3] - a[1], 0.0)
    area_b = max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)
    w = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    h = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = w * h
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def reference_batched_nms(
    boxes: Tensor, scores: Tensor, class_ids: Tensor | None, iou_threshold: float
) -> Tensor:
    """Textbook greedy NMS in plain Python, the specification the fast versions are tested against.

    Repeat: pick the remaining box with the highest score (lowest index among equals), output it, drop every
    remaining box (of the same class, when ``class_ids`` is given) whose IoU with it is >= ``iou_threshold``.

    Args:
        boxes: ``(N, 4)`` xyxy.
        scores: ``(N,)``.
        class_ids: ``(N,)`` or None for class-agnostic NMS.
        iou_threshold: in ``[0, 1]``.

    Returns:
        ``(K,)`` int64 kept indices, in the order they were picked.
    """
    _check_inputs(boxes, scores, iou_threshold)
    box_list: list[list[float]] = boxes.to(torch.float64).tolist()
    score_list: list[float] = scores.to(torch.float64).tolist()
    cls_list: list[int] = [0] * len(box_list) if class_ids is None else class_ids.tolist()
    remaining = sorted(range(len(box_list)), key=lambda i: (-score_list[i], i))
    keep: list[int] = []
    while remaining:
        best = remaining.pop(0)
        keep.append(best)
        remaining = [
            i
            for i in remaining
            if cls_list[i] != cls_list[best] or _reference_iou(box_list[best], box_list[i]) < iou_threshold
        ]
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device)


def reference_nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Class-agnostic :func:`reference_batched_nms`: ``(N, 4)``, ``(N,)`` -> ``(K,)`` int64 kept indices."""
    return reference_batched_nms(boxes, scores, None, iou_threshold)
