import random

import pytest
import torch

from fovea.common.detectors.boxes import (
    box_area,
    box_cxcywh_to_xyxy,
    box_iou,
    box_xywh_to_xyxy,
    box_xyxy_to_cxcywh,
    box_xyxy_to_xywh,
    clip_boxes_to_image,
)


def _python_iou(a: list[float], b: list[float]) -> float:
    """Obvious IoU: intersection rectangle area over the sum of areas minus it."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (
        max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1]) + max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) - inter
    )
    return inter / union if union > 0 else 0.0


def test_conversions_known_values() -> None:
    xyxy = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    # centre (20, 40), size 20 x 40
    assert torch.equal(box_xyxy_to_cxcywh(xyxy), torch.tensor([[20.0, 40.0, 20.0, 40.0]]))
    assert torch.equal(box_cxcywh_to_xyxy(torch.tensor([[20.0, 40.0, 20.0, 40.0]])), xyxy)
    assert torch.equal(box_xyxy_to_xywh(xyxy), torch.tensor([[10.0, 20.0, 20.0, 40.0]]))
    assert torch.equal(box_xywh_to_xyxy(torch.tensor([[10.0, 20.0, 20.0, 40.0]])), xyxy)


def test_conversions_round_trip_and_batch_dims() -> None:
    g = torch.Generator().manual_seed(0)
    boxes = torch.rand(2, 5, 4, generator=g) * 100
    boxes[..., 2:] += boxes[..., :2]
    assert torch.allclose(box_cxcywh_to_xyxy(box_xyxy_to_cxcywh(boxes)), boxes, atol=1e-4)
    assert torch.allclose(box_xywh_to_xyxy(box_xyxy_to_xywh(boxes)), boxes, atol=1e-4)


def test_integer_boxes_become_float32() -> None:
    out = box_cxcywh_to_xyxy(torch.tensor([[5, 5, 3, 3]]))
    assert out.dtype == torch.float32
    assert torch.equal(out, torch.tensor([[3.5, 3.5, 6.5, 6.5]]))


def test_empty_inputs_give_typed_empty_outputs() -> None:
    empty = torch.zeros(0, 4)
    assert box_cxcywh_to_xyxy(empty).shape == (0, 4)
    assert box_area(empty).shape == (0,)
    assert box_iou(empty, torch.zeros(3, 4)).shape == (0, 3)
    assert box_iou(empty, empty).dtype == torch.float32
    assert clip_boxes_to_image(empty, (10, 10)).shape == (0, 4)


def test_box_area_clamps_degenerate_sides() -> None:
    boxes = torch.tensor([[0.0, 0.0, 4.0, 3.0], [5.0, 5.0, 5.0, 9.0], [4.0, 0.0, 0.0, 3.0]])
    assert torch.equal(box_area(boxes), torch.tensor([12.0, 0.0, 0.0]))


def test_box_iou_known_values() -> None:
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor(
        [
            [1.0, 1.0, 3.0, 3.0],  # inter 1, union 4 + 4 - 1 = 7
            [0.0, 0.0, 2.0, 2.0],  # identical: 1
            [2.0, 0.0, 4.0, 2.0],  # touching edge: inter 0
            [0.0, 0.0, 1.0, 1.0],  # nested: 1 / 4
        ]
    )
    assert torch.allclose(box_iou(a, b), torch.tensor([[1 / 7, 1.0, 0.0, 0.25]]))


def test_box_iou_zero_area_is_zero_not_nan() -> None:
    point = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    result = box_iou(point, point)
    assert result.item() == 0.0


def test_box_iou_matches_python_reference_on_random_boxes() -> None:
    rng = random.Random(1)
    a = [[rng.uniform(0, 50), rng.uniform(0, 50), 0.0, 0.0] for _ in range(20)]
    b = [[rng.uniform(0, 50), rng.uniform(0, 50), 0.0, 0.0] for _ in range(15)]
    for box in a + b:
        box[2] = box[0] + rng.uniform(0, 30)
        box[3] = box[1] + rng.uniform(0, 30)
    got = box_iou(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))
    expected = torch.tensor([[_python_iou(x, y) for y in b] for x in a], dtype=torch.float64)
    assert torch.equal(got, expected)


def test_inputs_are_not_modified() -> None:
    boxes = torch.tensor([[-5.0, 2.0, 50.0, 60.0]])
    before = boxes.clone()
    clip_boxes_to_image(boxes, (40, 30))
    box_iou(boxes, boxes)
    box_xyxy_to_cxcywh(boxes)
    assert torch.equal(boxes, before)


def test_clip_boxes_to_image() -> None:
    boxes = torch.tensor([[-5.0, 2.0, 50.0, 60.0], [1.0, -1.0, 2.0, 3.0]])
    assert torch.equal(
        clip_boxes_to_image(boxes, (40, 30)), torch.tensor([[0.0, 2.0, 40.0, 30.0], [1.0, 0.0, 2.0, 3.0]])
    )


def test_bad_shapes_raise_value_error() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        box_area(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="2-D"):
        box_iou(torch.zeros(2, 3, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="non-negative"):
        clip_boxes_to_image(torch.zeros(1, 4), (-1, 4))
