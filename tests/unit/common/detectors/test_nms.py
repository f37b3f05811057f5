import random

import pytest
import torch

from fovea.common.detectors import nms as nms_module
from fovea.common.detectors.boxes import box_iou
from fovea.common.detectors.nms import batched_nms, nms, reference_batched_nms, reference_nms, top_k

THRESHOLDS = (0.0, 0.3, 0.5, 0.7, 1.0)


def _random_case(
    rng: random.Random, n: int, *, tie_scores: bool, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boxes clustered around a few centres (so that NMS has work to do), some degenerate."""
    centres = [(rng.uniform(0, 200), rng.uniform(0, 200)) for _ in range(max(1, n // 8))]
    boxes = []
    for _ in range(n):
        cx, cy = rng.choice(centres)
        x1, y1 = cx + rng.uniform(-15, 15), cy + rng.uniform(-15, 15)
        w, h = rng.choice((0.0, rng.uniform(1, 60))), rng.uniform(0, 60)
        boxes.append([x1, y1, x1 + w, y1 + h])
    if tie_scores:
        scores = [rng.choice((0.1, 0.5, 0.9)) for _ in range(n)]
    else:
        scores = [rng.random() for _ in range(n)]
    class_ids = [rng.randrange(num_classes) for _ in range(n)]
    return (
        torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        torch.tensor(scores, dtype=torch.float32),
        torch.tensor(class_ids, dtype=torch.int64),
    )


def _assert_greedy(
    boxes: torch.Tensor, scores: torch.Tensor, class_ids: torch.Tensor, t: float, keep: torch.Tensor
) -> None:
    """Independent check of the greedy result for inputs too large for the Python reference.

    In score order (ties by index) a box is kept iff no earlier kept box of its class has IoU >= t with it;
    this characterises the greedy result uniquely.
    """
    order = sorted(range(len(scores)), key=lambda i: (-scores[i].item(), i))
    rank = torch.empty(len(order), dtype=torch.int64)
    rank[torch.tensor(order)] = torch.arange(len(order))
    assert torch.equal(keep, torch.tensor(order)[torch.isin(torch.tensor(order), keep)])
    kept = torch.zeros(len(order), dtype=torch.bool)
    kept[keep] = True
    b = boxes.to(torch.float64)
    for start in range(0, len(order), 1000):
        rows = slice(start, start + 1000)
        hit = (box_iou(b[rows], b[keep]) >= t) & (class_ids[rows, None] == class_ids[None, keep])
        hit &= rank[keep][None, :] < rank[rows, None]  # only earlier kept boxes suppress
        assert torch.equal(hit.any(dim=1), ~kept[rows])


def test_matches_reference_on_random_sets() -> None:
    rng = random.Random(0)
    for trial in range(300):
        n = rng.randrange(0, 60)
        boxes, scores, class_ids = _random_case(rng, n, tie_scores=trial % 2 == 0, num_classes=3)
        t = rng.choice(THRESHOLDS + (rng.random(),))
        assert torch.equal(nms(boxes, scores, t), reference_nms(boxes, scores, t)), (trial, t)
        assert torch.equal(
            batched_nms(boxes, scores, class_ids, t), reference_batched_nms(boxes, scores, class_ids, t)
        ), (trial, t)


@pytest.mark.parametrize("per_class_min_boxes", [0, 10_000])
def test_matches_reference_across_small_blocks_and_chunks(
    monkeypatch: pytest.MonkeyPatch, per_class_min_boxes: int
) -> None:
    # Tiny blocks and chunks exercise the block-to-block suppression and the chunk loop; the class
    # switch exercises both batched paths (class mask and one nms per class).
    monkeypatch.setattr(nms_module, "_BLOCK", 7)
    monkeypatch.setattr(nms_module, "_CHUNK", 5)
    monkeypatch.setattr(nms_module, "_PER_CLASS_MIN_BOXES", per_class_min_boxes)
    rng = random.Random(1)
    for trial in range(60):
        boxes, scores, class_ids = _random_case(
            rng, rng.randrange(0, 80), tie_scores=trial % 3 == 0, num_classes=4
        )
        t = rng.choice(THRESHOLDS)
        assert torch.equal(nms(boxes, scores, t), reference_nms(boxes, scores, t))
        assert torch.equal(
            batched_nms(boxes, scores, class_ids, t), reference_batched_nms(boxes, scores, class_ids, t)
        )


def test_thousands_of_boxes_match_reference() -> None:
    rng = random.Random(2)
    boxes, scores, class_ids = _random_case(rng, 1500, tie_scores=False, num_classes=5)
    assert torch.equal(nms(boxes, scores, 0.5), reference_nms(boxes, scores, 0.5))
    assert torch.equal(
        batched_nms(boxes, scores, class_ids, 0.5), reference_batched_nms(boxes, scores, class_ids, 0.5)
    )


def test_four_thousand_boxes_satisfy_greedy_characterisation() -> None:
    g = torch.Generator().manual_seed(3)
    xy = torch.rand(4000, 2, generator=g) * 600
    boxes = torch.cat((xy, xy + torch.rand(4000, 2, generator=g) * 100 + 1), dim=1)
    scores = torch.rand(4000, generator=g)
    class_ids = torch.randint(0, 80, (4000,), generator=g)
    keep = nms(boxes, scores, 0.5)
    _assert_greedy(boxes, scores, torch.zeros(4000, dtype=torch.int64), 0.5, keep)
    keep = batched_nms(boxes, scores, class_ids, 0.5)  # per-class path (N >= 2048)
    _assert_greedy(boxes, scores, class_ids, 0.5, keep)


def test_ten_thousand_boxes_in_clusters() -> None:
    # 100 clusters, 100 boxes each, 1000 px apart; inside a cluster boxes are 100 px squares shifted by
    # at most 2 px, so any two have IoU >= (98 * 98) / (2 * 100 * 100 - 98 * 98) > 0.92: exactly the best
    # box of each cluster survives at t = 0.9; at t = 0.95 more survive but never two from different
    # clusters interact (IoU 0), which the per-cluster reference checks.
    g = torch.Generator().manual_seed(6)
    cluster = torch.arange(10_000) % 100
    origin = torch.stack(((cluster % 10) * 1000.0, (cluster // 10) * 1000.0), dim=1)
    xy = origin + torch.rand(10_000, 2, generator=g) * 2
    boxes = torch.cat((xy, xy + 100.0), dim=1)
    scores = torch.rand(10_000, generator=g)
    keep = nms(boxes, scores, 0.9)
    best = torch.stack(
        [torch.nonzero(cluster == c).squeeze(1)[scores[cluster == c].argmax()] for c in range(100)]
    )
    assert torch.equal(keep, best[torch.argsort(scores[best], descending=True)])
    keep = nms(boxes, scores, 0.95)
    for c in (0, 37, 99):
        idx = torch.nonzero(cluster == c).squeeze(1)
        assert torch.equal(keep[cluster[keep] == c], idx[reference_nms(boxes[idx], scores[idx], 0.95)])


def test_long_suppression_chain() -> None:
    # Each box overlaps the next with IoU 9.5 / 10.5 > 0.9 and the one after with 9 / 11 < 0.9, scores
    # decreasing along the chain: greedy keeps every other box.
    n = 600
    x = torch.arange(n, dtype=torch.float32) * 0.5
    boxes = torch.stack((x, torch.zeros(n), x + 10, torch.full((n,), 10.0)), dim=1)
    keep = nms(boxes, -torch.arange(n, dtype=torch.float32), 0.9)
    assert torch.equal(keep, torch.arange(0, n, 2))


def test_threshold_is_inclusive() -> None:
    # IoU of [0,0,2,1] and [0,0,1,1] is exactly 1 / 2: suppressed at 0.5 (>=), kept just above.
    boxes = torch.tensor([[0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    scores = torch.tensor([0.9, 0.8])
    assert nms(boxes, scores, 0.5).tolist() == [0]
    assert reference_nms(boxes, scores, 0.5).tolist() == [0]
    assert nms(boxes, scores, 0.5000001).tolist() == [0, 1]


def test_equal_scores_keep_lower_index_first() -> None:
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3 + [[50.0, 50.0, 60.0, 60.0]])
    scores = torch.tensor([0.5, 0.5, 0.5, 0.5])
    assert nms(boxes, scores, 0.5).tolist() == [0, 3]
    # ordering of the output: decreasing score, then index
    scores = torch.tensor([0.2, 0.7, 0.7, 0.9])
    assert nms(boxes, scores, 0.5).tolist() == [3, 1]


def test_identical_boxes_keep_only_the_best() -> None:
    boxes = torch.tensor([[1.0, 2.0, 30.0, 40.0]] * 50)
    scores = torch.linspace(0, 1, 50)
    assert nms(boxes, scores, 0.99).tolist() == [49]
    assert nms(boxes, scores, 1.0).tolist() == [49]  # IoU 1 >= 1


def test_nested_boxes() -> None:
    # inner 5x5 inside outer 10x10: IoU = 25 / 100
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [2.0, 2.0, 7.0, 7.0]])
    scores = torch.tensor([0.6, 0.9])
    assert nms(boxes, scores, 0.25).tolist() == [1]
    assert nms(boxes, scores, 0.26).tolist() == [1, 0]


def test_zero_area_boxes_never_suppress_above_zero_threshold() -> None:
    # IoU with a zero-area box is 0 (union 0 gives 0, not NaN), so only t = 0 suppresses them.
    boxes = torch.tensor([[5.0, 5.0, 5.0, 5.0], [5.0, 5.0, 5.0, 5.0], [0.0, 0.0, 10.0, 10.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.1).tolist() == [0, 1, 2]
    assert nms(boxes, scores, 0.0).tolist() == [0]


def test_empty_input() -> None:
    keep = nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert keep.dtype == torch.int64 and keep.shape == (0,)
    keep = batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5)
    assert keep.dtype == torch.int64 and keep.shape == (0,)
    assert reference_nms(torch.zeros(0, 4), torch.zeros(0), 0.5).shape == (0,)


def test_class_aware_keeps_overlapping_boxes_of_different_classes() -> None:
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 0.0, 11.0, 10.0], [0.0, 1.0, 10.0, 11.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5).tolist() == [0, 1]
    assert batched_nms(boxes, scores, torch.tensor([0, 0, 0]), 0.5).tolist() == [0]
    assert nms(boxes, scores, 0.5).tolist() == [0]


def test_inputs_not_modified_and_other_dtypes() -> None:
    rng = random.Random(4)
    boxes, scores, class_ids = _random_case(rng, 40, tie_scores=True, num_classes=2)
    copies = boxes.clone(), scores.clone(), class_ids.clone()
    expected = reference_batched_nms(boxes, scores, class_ids, 0.4)
    batched_nms(boxes, scores, class_ids, 0.4)
    nms(boxes, scores, 0.4)
    assert all(torch.equal(a, b) for a, b in zip((boxes, scores, class_ids), copies, strict=True))
    assert torch.equal(batched_nms(boxes.double(), scores, class_ids.int(), 0.4), expected)
    int_boxes = boxes.round().to(torch.int64)
    assert torch.equal(nms(int_boxes, scores, 0.4), reference_nms(int_boxes, scores, 0.4))


@pytest.mark.parametrize(
    ("boxes", "scores", "threshold", "message"),
    [
        (torch.zeros(3, 5), torch.zeros(3), 0.5, r"\(N, 4\)"),
        (torch.zeros(3, 4), torch.zeros(2), 0.5, "scores"),
        (torch.zeros(3, 4), torch.zeros(3), 1.5, r"\[0, 1\]"),
        (torch.tensor([[0.0, 0.0, float("nan"), 1.0]]), torch.zeros(1), 0.5, "NaN"),
        (torch.zeros(1, 4), torch.tensor([float("nan")]), 0.5, "NaN"),
    ],
)
def test_bad_input_raises_value_error(
    boxes: torch.Tensor, scores: torch.Tensor, threshold: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        nms(boxes, scores, threshold)


def test_batched_rejects_float_class_ids() -> None:
    with pytest.raises(ValueError, match="integers"):
        batched_nms(torch.zeros(1, 4), torch.zeros(1), torch.zeros(1), 0.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    rng = random.Random(5)
    boxes, scores, class_ids = _random_case(rng, 3000, tie_scores=True, num_classes=3)
    expected = batched_nms(boxes, scores, class_ids, 0.5)
    got = batched_nms(boxes.cuda(), scores.cuda(), class_ids.cuda(), 0.5)
    assert got.device.type == "cuda"
    assert torch.equal(got.cpu(), expected)


def test_top_k_takes_the_best_and_breaks_ties_by_index() -> None:
    scores = torch.tensor([0.5, 0.9, 0.5, 0.1, 0.5, 0.7])
    # best: 0.9 (1), 0.7 (5), then the 0.5s in index order 0, 2, 4
    assert top_k(scores, 3).tolist() == [0, 1, 5]
    assert top_k(scores, 4).tolist() == [0, 1, 2, 5]
    assert top_k(scores, 6).tolist() == list(range(6))
    assert top_k(scores, 60).tolist() == list(range(6))
    assert top_k(scores, 0).tolist() == []
    assert top_k(torch.zeros(0), 5).tolist() == []
    with pytest.raises(ValueError, match="k must be"):
        top_k(scores, -1)


def test_top_k_matches_a_stable_sort() -> None:
    g = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 50, (5000,), generator=g).to(torch.float32)  # many ties
    for k in (1, 7, 100, 2500, 4999):
        expected = torch.sort(torch.sort(scores, descending=True, stable=True).indices[:k]).values
        assert torch.equal(top_k(scores, k), expected)
