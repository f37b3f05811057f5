"""Decoded candidates -> final detections: class filter, top-k cap, class-aware NMS, cap, sorted by score."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from fovea.common.detectors.nms import batched_nms, top_k

__all__ = ["Detection", "postprocess", "to_detections"]


@dataclass(frozen=True)
class Detection:
    """One detection; ``box`` is xyxy in the pixels of whatever image it was mapped to."""

    box: tuple[float, float, float, float]
    score: float
    class_id: int
    label: str


def postprocess(
    boxes: Tensor,
    scores: Tensor,
    class_ids: Tensor,
    *,
    iou_threshold: float,
    max_detections: int,
    class_filter: set[int] | None = None,
    max_candidates: int | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Keep the wanted classes and the ``max_candidates`` best, run class-aware NMS, keep ``max_detections``.

    Args:
        boxes: ``(N, 4)`` xyxy.
        scores: ``(N,)``.
        class_ids: ``(N,)`` integer class ids.
        iou_threshold: NMS suppresses a box with IoU >= this against a better box of its class.
        max_detections: at most this many results (>= 0).
        class_filter: class ids to keep; None keeps all.
        max_candidates: at most this many candidates (the best by score, ties: lower index) go into NMS;
            None for no cap. The decoders already cap at ``spec.max_candidates``; this bounds NMS for
            candidates from elsewhere.

    Returns:
        boxes ``(K, 4)`` float32, scores ``(K,)`` float32, class ids ``(K,)`` int64, by decreasing score
        (ties: lower input index first).
    """
    if max_detections < 0:
        raise ValueError(f"max_detections must be >= 0, got {max_detections}")
    if max_candidates is not None and max_candidates < 0:
        raise ValueError(f"max_candidates must be >= 0, got {max_candidates}")
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {tuple(boxes.shape)}")
    if scores.shape != (boxes.shape[0],) or class_ids.shape != (boxes.shape[0],):
        raise ValueError(
            f"scores and class_ids must have shape ({boxes.shape[0]},), "
            f"got {tuple(scores.shape)} and {tuple(class_ids.shape)}"
        )
    index = torch.arange(boxes.shape[0], device=boxes.device)
    if class_filter is not None:
        wanted = torch.tensor(sorted(class_filter), dtype=torch.int64, device=class_ids.device)
        index = index[torch.isin(class_ids.to(torch.int64), wanted)]
    if max_candidates is not None:
        index = index[top_k(scores[index], max_candidates)]
    keep = index[batched_nms(boxes[index], scores[index], class_ids[index], iou_threshold)]
    keep = keep[:max_detections]
    return boxes[keep].to(torch.float32), scores[keep].to(torch.float32), class_ids[keep].to(torch.int64)


def to_detections(boxes: Tensor, scores: Tensor, class_ids: Tensor, labels: Sequence[str]) -> list[Detection]:
    """Turn the ``(K, 4)``, ``(K,)``, ``(K,)`` triple into :class:`Detection` objects, naming classes.

    Raises:
        ValueError: a class id outside ``labels``.
    """
    result = []
    for box, score, class_id in zip(boxes.tolist(), scores.tolist(), class_ids.tolist(), strict=True):
        if not 0 <= class_id < len(labels):
            raise ValueError(f"class id {class_id} outside the {len(labels)} labels")
        x1, y1, x2, y2 = box
        result.append(Detection((x1, y1, x2, y2), score, int(class_id), labels[class_id]))
    return result
