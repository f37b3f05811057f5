import pytest
import torch

from fovea.common.detectors.nms import batched_nms, reference_batched_nms
from fovea.detection.core import postprocess as postprocess_module
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


def test_max_candidates_keeps_the_best_before_nms() -> None:
    # with 2 candidates only boxes 1 (0.9) and 2 (0.8) enter NMS; they are of different classes
    _, scores, class_ids = postprocess(
        BOXES, SCORES, CLASSES, iou_threshold=0.5, max_detections=10, max_candidates=2
    )
    assert scores.tolist() == pytest.approx([0.9, 0.8]) and class_ids.tolist() == [0, 1]
    # the class filter applies first: of classes {0, 2}, boxes 1 (0.9) and 3 (0.7) are the best two
    _, scores, _ = postprocess(
        BOXES, SCORES, CLASSES, iou_threshold=0.5, max_detections=10, max_candidates=2, class_filter={0, 2}
    )
    assert scores.tolist() == pytest.approx([0.9, 0.7])
    boxes, _, _ = postprocess(BOXES, SCORES, CLASSES, iou_threshold=0.5, max_detections=10, max_candidates=0)
    assert boxes.shape == (0, 4)
    with pytest.raises(ValueError, match="max_candidates"):
        postprocess(BOXES, SCORES, CLASSES, iou_threshold=0.5, max_detections=1, max_candidates=-1)


def _clustered(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` candidates as a low-threshold detector makes them: many near-duplicates around few objects."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(40, 2, generator=g) * 400
    sizes = 20 + torch.rand(40, 2, generator=g) * 150
    which = torch.randint(0, 40, (n,), generator=g)
    jitter = (torch.rand(n, 4, generator=g) - 0.5) * 30
    half = sizes[which] / 2
    boxes = torch.cat((centres[which] - half, centres[which] + half), dim=1) + jitter
    return boxes, torch.rand(n, generator=g), torch.randint(0, 80, (n,), generator=g)


def test_fifty_thousand_candidates_reach_nms_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Capped, 50k candidates cost one top-k over 50k scores plus NMS over ``cap`` boxes (an uncapped NMS over
    50k clustered boxes takes 30-100x as long): NMS is handed at most ``cap`` boxes. Counted, not timed."""
    cap = 1000
    large = _clustered(50_000, seed=2)
    seen: list[int] = []

    def counting_nms(boxes: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        seen.append(len(boxes))
        return batched_nms(boxes, *args, **kwargs)  # type: ignore[arg-type]

    def run(case: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return postprocess(*case, iou_threshold=0.5, max_detections=100, max_candidates=cap)

    monkeypatch.setattr(postprocess_module, "batched_nms", counting_nms)
    run(large)
    assert seen and max(seen) <= cap

    boxes, scores, class_ids = large
    capped = torch.sort(torch.sort(scores, descending=True, stable=True).indices[:cap]).values
    expected = capped[reference_batched_nms(boxes[capped], scores[capped], class_ids[capped], 0.5)][:100]
    got_boxes, got_scores, got_classes = run(large)
    assert expected.numel() == 100
    assert torch.equal(got_boxes, boxes[expected]) and torch.equal(got_scores, scores[expected])
    assert torch.equal(got_classes, class_ids[expected])
