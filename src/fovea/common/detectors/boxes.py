"""Box conversions, areas and IoU.

Fovea's one internal box format is **xyxy**: ``(x1, y1, x2, y2)`` in absolute pixels, float32, with
``x1 <= x2`` and ``y1 <= y2`` for a well-formed box. Other formats appear only at the edges (model heads,
COCO files) and are converted with the explicit functions below. Every function takes boxes of shape
``(..., 4)`` or ``(N, 4)`` as stated, returns a new tensor and never modifies its input.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "box_area",
    "box_cxcywh_to_xyxy",
    "box_iou",
    "box_xywh_to_xyxy",
    "box_xyxy_to_cxcywh",
    "box_xyxy_to_xywh",
    "clip_boxes_to_image",
]


def _check_last_dim(boxes: Tensor, name: str = "boxes") -> None:
    if boxes.shape[-1:] != (4,):
        raise ValueError(f"{name} must have shape (..., 4), got {tuple(boxes.shape)}")


def _as_float(boxes: Tensor) -> Tensor:
    """Integer boxes become float32; floating boxes keep their dtype."""
    return boxes if boxes.is_floating_point() else boxes.to(torch.float32)


def box_cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """Convert ``(cx, cy, w, h)`` boxes to ``(x1, y1, x2, y2)``.

    Args:
        boxes: ``(..., 4)`` centre x, centre y, width, height.

    Returns:
        ``(..., 4)`` corners, same dtype (integers become float32).
    """
    _check_last_dim(boxes)
    cx, cy, w, h = _as_float(boxes).unbind(-1)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def box_xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """Convert ``(x1, y1, x2, y2)`` boxes to ``(cx, cy, w, h)``.

    Args:
        boxes: ``(..., 4)`` corners.

    Returns:
        ``(..., 4)`` centre x, centre y, width, height.
    """
    _check_last_dim(boxes)
    x1, y1, x2, y2 = _as_float(boxes).unbind(-1)
    return torch.stack(((x1 + x2) * 0.5, (y1 + y2) * 0.5, x2 - x1, y2 - y1), dim=-1)


def box_xywh_to_xyxy(boxes: Tensor) -> Tensor:
    """Convert ``(x, y, w, h)`` boxes (top-left corner + size, as COCO stores them) to xyxy.

    Args:
        boxes: ``(..., 4)`` left, top, width, height.

    Returns:
        ``(..., 4)`` corners.
    """
    _check_last_dim(boxes)
    x, y, w, h = _as_float(boxes).unbind(-1)
    return torch.stack((x, y, x + w, y + h), dim=-1)


def box_xyxy_to_xywh(boxes: Tensor) -> Tensor:
    """Convert xyxy boxes to ``(x, y, w, h)`` (top-left corner + size, the COCO format).

    Args:
        boxes: ``(..., 4)`` corners.

    Returns:
        ``(..., 4)`` left, top, width, height.
    """
    _check_last_dim(boxes)
    x1, y1, x2, y2 = _as_float(boxes).unbind(-1)
    return torch.stack((x1, y1, x2 - x1, y2 - y1), dim=-1)


def box_area(boxes: Tensor) -> Tensor:
    """Area of xyxy boxes; a degenerate side (``x2 < x1`` or ``y2 < y1``) counts as length 0.

    Args:
        boxes: ``(N, 4)`` xyxy.

    Returns:
        ``(N,)`` areas, ``max(0, x2 - x1) * max(0, y2 - y1)``.
    """
    _check_last_dim(boxes)
    boxes = _as_float(boxes)
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise intersection over union of two sets of xyxy boxes.

    ``iou = inter / union`` with ``inter = max(0, min(x2) - max(x1)) * max(0, min(y2) - max(y1))`` and
    ``union = area1 + area2 - inter``. Where the union is 0 (two zero-area boxes) the IoU is defined as 0,
    never NaN. The arithmetic is done in the inputs' dtype (``nms`` passes float64 so that it matches its
    plain-Python reference bit for bit).

    Args:
        boxes1: ``(N, 4)`` xyxy.
        boxes2: ``(M, 4)`` xyxy, same dtype and device as ``boxes1``.

    Returns:
        ``(N, M)`` IoU in ``[0, 1]``.
    """
    _check_last_dim(boxes1, "boxes1")
    _check_last_dim(boxes2, "boxes2")
    if boxes1.ndim != 2 or boxes2.ndim != 2:
        raise ValueError(f"box_iou expects 2-D inputs, got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}")
    boxes1, boxes2 = _as_float(boxes1), _as_float(boxes2)
    area1 = box_area(boxes1)
    area2 = box_area(boxes2)
    left_top = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])  # (N, M, 2)
    right_bottom = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])  # (N, M, 2)
    wh = (right_bottom - left_top).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    positive = union > 0
    return torch.where(positive, inter / torch.where(positive, union, torch.ones_like(union)), 0.0)


def clip_boxes_to_image(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Clip xyxy boxes to an image of ``size = (width, height)``: x into ``[0, width]``, y into ``[0, height]``.

    Args:
        boxes: ``(..., 4)`` xyxy.
        size: image ``(width, height)`` in pixels.

    Returns:
        ``(..., 4)`` clipped boxes.
    """
    _check_last_dim(boxes)
    width, height = size
    if width < 0 or height < 0:
        raise ValueError(f"image size must be non-negative, got {size}")
    boxes = _as_float(boxes)
    x = boxes[..., 0::2].clamp(min=0, max=width)
    y = boxes[..., 1::2].clamp(min=0, max=height)
    return torch.stack((x[..., 0], y[..., 0], x[..., 1], y[..., 1]), dim=-1)
