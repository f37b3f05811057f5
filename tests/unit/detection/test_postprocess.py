import pytest
import torch

from fovea.detection.core.postprocess import Detection, postprocess, to_detections

# boxes 0, 1, 2 overlap pairwise with IoU > 0.8 (e.g. 0 and 1: 95 / 105); box 3 is far away
BOXES = torch.tensor(
    [[0.0, 0.0, 10.0, 10.0], [0.5, 0.0, 10.5, 10.0], [0.0, 0.5, 10.0, 10.5], [50.0, 50.0, 60.0, 60.0]]
)
SCORES = torch.tensor([0.6, 0.9, 0.8, 0.7])
CLASSES = torch.tensor([0, 0, 1, 2])


def test_nms_per_class_sorted_by_score() -> None:
    boxes, scores, class_ids = postprocess(BOXES, SCORES, CLASSES, iou_threshold=0.5, max_detections=10)
    # class 0: box 1 (0.9) suppresses box 0; box 2 (class 1) survives although it overlaps box 1
    assert scores.tolist() == pytest.approx([0.9, 0.8, 0.7])
    assert class_ids.tolist() == [0, 1, 2]
    assert torch.equal(boxes, BOXES[[1, 2, 3]])
    assert boxes.dtype == torch.float32 and class_ids.dtype == torch.int64


def test_class_filter_and_cap() -> None:
    _, scores, class_ids = postprocess(
        BOXES, SCORES, CLASSES, iou_threshold=0.5, max_detections=10, class_filter={0, 2}
    )
    assert class_ids.tolist() == [0, 2]
    assert scores.tolist() == pytest.approx([0.9, 0.7])
    _, scores, _ = postprocess(BOXES, SCORES, CLASSES, iou_threshold=0.5, max_detections=2)
    assert scores.tolist() == pytest.approx([0.9, 0.8])
    boxes, _, _ = postprocess(BOXES, SCORES, CLASSES, iou_threshold=0.5, max_detections=0)
    assert boxes.shape == (0, 4)
    boxes, _, _ = postprocess(BOXES, SCORES, CLASSES, iou_threshold=0.5, max_detections=5, class_filter=set())
    assert boxes.shape == (0, 4)


def test_empty_input() -> None:
    boxes, scores, class_ids = postprocess(
        torch.zeros(0, 4),
        torch.zeros(0),
        torch.zeros(0, dtype=torch.int64),
        iou_threshold=0.5,
        max_detections=5,
    )
    assert boxes.shape == (0, 4) and scores.shape == (0,) and class_ids.dtype == torch.int64


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_detections"):
        postprocess(BOXES, SCORES, CLASSES, iou_threshold=0.5, max_detections=-1)
    with pytest.raises(ValueError, match="shape"):
        postprocess(BOXES, SCORES[:2], CLASSES, iou_threshold=0.5, max_detections=1)


def test_to_detections() -> None:
    detections = to_detections(BOXES[:2], SCORES[:2], torch.tensor([1, 0]), ["cat", "dog"])
    assert detections[0] == Detection((0.0, 0.0, 10.0, 10.0), pytest.approx(0.6), 1, "dog")
    assert detections[1].label == "cat"
    with pytest.raises(ValueError, match="class id 5"):
        to_detections(BOXES[:1], SCORES[:1], torch.tensor([5]), ["cat"])
