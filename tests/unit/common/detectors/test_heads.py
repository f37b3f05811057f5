"""Each family: encode known boxes into the family's raw layout (test-side encoders), decode, compare."""

import math
from typing import Any

import numpy as np
import pytest
import torch

from fovea.common.detectors.heads import DECODERS, decode, get_decoder
from fovea.contracts.detector import DetectorSpec, HeadFamily

LABELS = ["pedestrian", "car", "motorcycle"]


def _spec(family: str, **overrides: Any) -> DetectorSpec:
    fields: dict[str, Any] = {
        "name": "m",
        "family": family,
        "input_size": (64, 64),
        "labels": LABELS,
        "input_name": "images",
        "output_names": ["out"],
    }
    fields.update(overrides)
    return DetectorSpec.model_validate(fields)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _assert_one(decoded: tuple[torch.Tensor, ...], box: list[float], score: float, class_id: int) -> None:
    boxes, scores, class_ids = decoded
    assert boxes.dtype == torch.float32 and scores.dtype == torch.float32 and class_ids.dtype == torch.int64
    assert boxes.shape == (1, 4), boxes
    assert torch.allclose(boxes[0], torch.tensor(box), atol=1e-4)
    assert scores[0].item() == pytest.approx(score, abs=1e-4)
    assert class_ids.tolist() == [class_id]


def _assert_empty(decoded: tuple[torch.Tensor, ...]) -> None:
    boxes, scores, class_ids = decoded
    assert boxes.shape == (0, 4) and scores.shape == (0,) and class_ids.shape == (0,)
    assert class_ids.dtype == torch.int64


# --- nanodet -------------------------------------------------------------------------------------

NANODET_STRIDES = [8, 16, 32]  # 64 x 64 input: 8*8 + 4*4 + 2*2 = 84 anchors


def _nanodet_distribution(distance_bins: float, reg_max: int) -> list[float]:
    """Logits whose softmax puts mass (1 - f) on bin k and f on bin k + 1, so the expectation is k + f."""
    k = min(int(distance_bins), reg_max - 1)
    f = distance_bins - k
    probs = [0.0] * (reg_max + 1)
    probs[k], probs[k + 1] = 1 - f, f
    return [math.log(p) if p > 0 else -40.0 for p in probs]


def _nanodet_encode(
    anchors: dict[int, tuple[list[float], list[float]]], spec: DetectorSpec
) -> tuple[torch.Tensor, torch.Tensor]:
    """``{anchor index: (class probs, [l, t, r, b] in pixels)}`` -> class probs (N, C), box logits (N, 4(R+1))."""
    assert spec.reg_max is not None
    n = sum(math.ceil(64 / s) ** 2 for s in spec.strides)
    strides = [s for s in spec.strides for _ in range(math.ceil(64 / s) ** 2)]
    cls = torch.zeros(n, len(LABELS))
    reg = torch.tensor([_nanodet_distribution(0.0, spec.reg_max) * 4] * n)
    for index, (probs, ltrb) in anchors.items():
        cls[index] = torch.tensor(probs)
        reg[index] = torch.tensor(
            [v for d in ltrb for v in _nanodet_distribution(d / strides[index], spec.reg_max)]
        )
    return cls, reg


@pytest.mark.parametrize("center_offset", [0.0, 0.5])
def test_nanodet_single_output(center_offset: float) -> None:
    spec = _spec("nanodet", strides=NANODET_STRIDES, reg_max=7, center_offset=center_offset)
    # anchor 64 + 6 is level 1 (stride 16, 4 x 4 grid), cell 6 -> col 2, row 1
    cx, cy = (2 + center_offset) * 16, (1 + center_offset) * 16
    ltrb = [10.0, 20.5, 30.25, 5.0]  # in bins: 0.625, 1.28, 1.89, 0.3125
    cls, reg = _nanodet_encode({70: ([0.1, 0.8, 0.2], ltrb)}, spec)
    decoded = decode({"out": torch.cat((cls, reg), dim=1)[None]}, spec, 0.5)
    _assert_one(decoded, [cx - 10.0, cy - 20.5, cx + 30.25, cy + 5.0], 0.8, 1)


def test_nanodet_per_level_outputs_and_multi_label() -> None:
    names = ["cls8", "reg8", "cls16", "reg16", "cls32", "reg32"]
    spec = _spec("nanodet", strides=NANODET_STRIDES, reg_max=7, output_names=names)
    # anchor 80 + 3 is level 2 (stride 32, 2 x 2 grid), cell 3 -> col 1, row 1 -> centre (32, 32)
    cls, reg = _nanodet_encode({83: ([0.9, 0.0, 0.6], [100.0, 40.0, 8.0, 200.0])}, spec)
    splits = [64, 16, 4]
    outputs: dict[str, np.ndarray] = {}
    for level, (c, r) in enumerate(zip(cls.split(splits), reg.split(splits), strict=True)):
        outputs[names[2 * level]] = c.numpy()
        outputs[names[2 * level + 1]] = r.numpy()
    boxes, scores, class_ids = decode(outputs, spec, 0.5)
    # both classes above 0.5 give a candidate, in (anchor, class) order
    assert class_ids.tolist() == [0, 2]
    assert torch.allclose(scores, torch.tensor([0.9, 0.6]))
    assert torch.allclose(boxes, torch.tensor([[-68.0, -8.0, 40.0, 232.0]] * 2), atol=1e-4)


def test_nanodet_threshold_and_anchor_count() -> None:
    spec = _spec("nanodet", strides=NANODET_STRIDES, reg_max=7)
    cls, reg = _nanodet_encode({0: ([0.7, 0.0, 0.0], [8.0, 8.0, 8.0, 8.0])}, spec)
    merged = torch.cat((cls, reg), dim=1)
    assert decode({"out": merged}, spec, 0.69)[0].shape == (1, 4)
    _assert_empty(decode({"out": merged}, spec, 0.71))
    with pytest.raises(ValueError, match="84"):
        decode({"out": merged[:80]}, spec, 0.5)
    with pytest.raises(ValueError, match="last dim"):
        decode({"out": merged[:, :-1]}, spec, 0.5)


# --- yolo-grid -----------------------------------------------------------------------------------

GRID_ANCHORS = [(20.0, 40.0), (50.0, 25.0)]


def _yolo_grid_encode(
    objects: list[tuple[list[float], int, float, int, float]], spec: DetectorSpec, rows: int, cols: int
) -> torch.Tensor:
    """``[(cxcywh pixels, anchor, p_c, class, class prob)]`` -> raw logits (S_h, S_w, B, 5 + C).

    Layout (t_o, t_x, t_y, t_h, t_w, class logits), h before w as in the course. Empty cells get
    t_o = -20 (p_c ~ 2e-9).
    """
    in_w, in_h = spec.input_size
    grid = torch.zeros(rows, cols, len(GRID_ANCHORS), 5 + len(LABELS))
    grid[..., 0] = -20.0
    for (cx, cy, w, h), anchor, p_c, class_id, class_prob in objects:
        gx, gy = cx / in_w * cols, cy / in_h * rows
        col, row = int(gx), int(gy)
        anchor_w, anchor_h = GRID_ANCHORS[anchor]
        # softmax of [a, 0, 0, ...] gives class_prob at a = log(p (C - 1) / (1 - p))
        class_logits = [0.0] * len(LABELS)
        class_logits[class_id] = math.log(class_prob * (len(LABELS) - 1) / (1 - class_prob))
        grid[row, col, anchor] = torch.tensor(
            [_logit(p_c), _logit(gx - col), _logit(gy - row), math.log(h / anchor_h), math.log(w / anchor_w)]
            + class_logits
        )
    return grid


def test_yolo_grid_round_trip() -> None:
    spec = _spec("yolo-grid", input_size=(96, 96), anchors=[GRID_ANCHORS])
    # centre (50, 20) is in cell col 1, row 0 of a 3 x 3 grid (32 px cells); 30 wide, 45 high
    grid = _yolo_grid_encode([([50.0, 20.0, 30.0, 45.0], 0, 0.9, 1, 0.8)], spec, 3, 3)
    # score = p_c * P(car) = 0.9 * 0.8
    _assert_one(decode({"out": grid}, spec, 0.5), [35.0, -2.5, 65.0, 42.5], 0.72, 1)


def test_yolo_grid_flat_layout_batch_and_non_square_grid() -> None:
    spec = _spec("yolo-grid", input_size=(128, 64), anchors=[GRID_ANCHORS])
    objects = [([100.0, 40.0, 60.0, 20.0], 1, 0.95, 2, 0.9), ([10.0, 10.0, 8.0, 16.0], 0, 0.99, 0, 0.99)]
    grid = _yolo_grid_encode(objects, spec, 2, 4)  # 2 rows x 4 cols of 32 px cells
    flat = grid.reshape(1, 2, 4, 2 * (5 + len(LABELS))).numpy()
    boxes, scores, class_ids = decode({"out": flat}, spec, 0.5)
    # cell order: (row 0, col 0) before (row 1, col 3)
    assert class_ids.tolist() == [0, 2]
    assert torch.allclose(boxes, torch.tensor([[6.0, 2.0, 14.0, 18.0], [70.0, 30.0, 130.0, 50.0]]), atol=1e-4)
    assert torch.allclose(scores, torch.tensor([0.99 * 0.99, 0.95 * 0.9]), atol=1e-4)


def test_yolo_grid_discards_p_c_at_or_below_threshold() -> None:
    spec = _spec("yolo-grid", input_size=(96, 96), anchors=[GRID_ANCHORS])
    grid = _yolo_grid_encode([([50.0, 50.0, 20.0, 20.0], 0, 0.5, 0, 0.999)], spec, 3, 3)
    # t_o = logit(0.5) = 0 gives p_c exactly 0.5: discarded at threshold 0.5 (p_c <= threshold) ...
    _assert_empty(decode({"out": grid}, spec, 0.5))
    # ... kept just below, with score 0.5 * 0.999
    _assert_one(decode({"out": grid}, spec, 0.49), [40.0, 40.0, 60.0, 60.0], 0.4995, 0)
    # p_c = 0.6 passes 0.55 but its class score does not
    grid = _yolo_grid_encode([([50.0, 50.0, 20.0, 20.0], 0, 0.6, 0, 0.8)], spec, 3, 3)
    _assert_empty(decode({"out": grid}, spec, 0.55))  # 0.6 * 0.8 = 0.48


def test_yolo_grid_bad_shape() -> None:
    spec = _spec("yolo-grid", anchors=[GRID_ANCHORS])
    with pytest.raises(ValueError, match=r"\(S_h, S_w, 2, 8\)"):
        decode({"out": torch.zeros(3, 3, 3, 8)}, spec, 0.5)


# --- yolov5 / yolox / yolov8 ---------------------------------------------------------------------


def test_yolov5_round_trip() -> None:
    spec = _spec("yolov5")
    pred = torch.zeros(6, 5 + len(LABELS))
    pred[4] = torch.tensor([30.0, 20.0, 10.0, 8.0, 0.9, 0.1, 0.2, 0.7])
    pred[5] = torch.tensor([30.0, 20.0, 10.0, 8.0, 0.5, 0.0, 1.0, 0.0])  # obj 0.5: discarded first
    _assert_one(decode({"out": pred[None]}, spec, 0.5), [25.0, 16.0, 35.0, 24.0], 0.63, 2)
    _assert_empty(decode({"out": pred}, spec, 0.64))


def _yolox_encode(
    objects: list[tuple[int, list[float], float, int, float]], spec: DetectorSpec
) -> torch.Tensor:
    """``[(anchor index, cxcywh pixels, obj, class, cls prob)]`` -> raw (N, 5 + C); level grids are
    ``64 // s`` square, row-major, levels in stride order."""
    levels = [(s, 64 // s) for s in spec.strides]
    table = [(s, i % n, i // n) for s, n in levels for i in range(n * n)]
    pred = torch.zeros(len(table), 5 + len(LABELS))
    for index, (cx, cy, w, h), obj, class_id, cls_prob in objects:
        stride, col, row = table[index]
        pred[index, :4] = torch.tensor(
            [cx / stride - col, cy / stride - row, math.log(w / stride), math.log(h / stride)]
        )
        pred[index, 4] = obj
        pred[index, 5 + class_id] = cls_prob
    return pred


def test_yolox_raw_round_trip() -> None:
    spec = _spec("yolox", strides=[8, 16, 32])
    # anchor 64 + 9: stride 16, col 1, row 2; the box centre may lie outside its cell
    pred = _yolox_encode([(73, [40.0, 20.0, 12.0, 50.0], 0.8, 0, 0.9)], spec)
    _assert_one(decode({"out": pred}, spec, 0.5), [34.0, -5.0, 46.0, 45.0], 0.72, 0)
    with pytest.raises(ValueError, match="84"):
        decode({"out": pred[:83]}, spec, 0.5)


def test_yolox_decoded_round_trip() -> None:
    spec = _spec("yolox", decoded=True)
    pred = torch.zeros(3, 5 + len(LABELS))
    pred[1] = torch.tensor([40.0, 20.0, 12.0, 50.0, 0.8, 0.0, 0.9, 0.0])
    _assert_one(decode({"out": pred}, spec, 0.5), [34.0, -5.0, 46.0, 45.0], 0.72, 1)


@pytest.mark.parametrize("layout", ["channels_first", "channels_last", "batched"])
def test_yolov8_layouts(layout: str) -> None:
    spec = _spec("yolov8")
    pred = torch.zeros(10, 4 + len(LABELS))
    pred[7] = torch.tensor([32.0, 16.0, 8.0, 4.0, 0.0, 0.55, 0.3])
    raw = {"channels_first": pred.T, "channels_last": pred, "batched": pred.T[None]}[layout]
    _assert_one(decode({"out": raw}, spec, 0.5), [28.0, 14.0, 36.0, 18.0], 0.55, 1)
    _assert_empty(decode({"out": raw}, spec, 0.56))


def test_yolov8_wrong_channels() -> None:
    with pytest.raises(ValueError, match="either axis"):
        decode({"out": torch.zeros(8, 10)}, _spec("yolov8"), 0.5)


# --- common --------------------------------------------------------------------------------------


def test_registry_covers_every_family() -> None:
    assert set(DECODERS) == set(HeadFamily)
    assert get_decoder("yolox") is DECODERS[HeadFamily.YOLOX]


def test_unknown_family_lists_known_ones() -> None:
    with pytest.raises(
        ValueError,
        match="unknown head family 'yolov9'; known: candidates, nanodet, yolo-grid, yolov5, yolox, yolov8, "
        "end2end, detr, nms-in-graph",
    ):
        get_decoder("yolov9")


def test_missing_output_and_bad_threshold() -> None:
    spec = _spec("yolov8")
    with pytest.raises(ValueError, match="missing model output 'out'"):
        decode({"other": torch.zeros(7, 3)}, spec, 0.5)
    with pytest.raises(ValueError, match="score_threshold"):
        decode({"out": torch.zeros(7, 3)}, spec, 1.5)


def test_empty_outputs_and_inputs_not_modified() -> None:
    spec = _spec("yolov8")
    _assert_empty(decode({"out": torch.zeros(7, 0)}, spec, 0.5))
    pred = torch.rand(7, 20)
    before = pred.clone()
    decode({"out": pred}, spec, 0.1)
    assert torch.equal(pred, before)


# --- candidate cap -------------------------------------------------------------------------------


def _random_outputs(family: str, spec: DetectorSpec) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    match family:
        case "nanodet":
            n = sum(math.ceil(64 / s) ** 2 for s in NANODET_STRIDES)
            cls = torch.rand(n, len(LABELS), generator=g)
            cls[::5] = 0.25  # equal scores straddling the cut
            assert spec.reg_max is not None
            reg = torch.randn(n, 4 * (spec.reg_max + 1), generator=g)
            return {"out": torch.cat((cls, reg), dim=1)}
        case "yolov8":
            boxes = torch.rand(300, 4, generator=g) * 64
            return {"out": torch.cat((boxes, torch.rand(300, len(LABELS), generator=g)), dim=1)}
        case _:  # yolov5: obj and class probs
            boxes = torch.rand(300, 4, generator=g) * 64
            return {"out": torch.cat((boxes, torch.rand(300, 1 + len(LABELS), generator=g)), dim=1)}


@pytest.mark.parametrize("family", ["nanodet", "yolov8", "yolov5"])
@pytest.mark.parametrize("cap", [1, 17, 40, 100])
def test_cap_keeps_the_best_candidates_in_anchor_class_order(family: str, cap: int) -> None:
    extra: dict[str, Any] = {"strides": NANODET_STRIDES, "reg_max": 7} if family == "nanodet" else {}
    uncapped_spec = _spec(family, max_candidates=100_000, **extra)
    capped_spec = _spec(family, max_candidates=cap, **extra)
    outputs = _random_outputs(family, uncapped_spec)
    all_boxes, all_scores, all_classes = decode(outputs, uncapped_spec, 0.2)
    assert all_scores.numel() > 100
    # expected: a stable sort by decreasing score, the first ``cap``, back in (anchor, class) order
    best = torch.sort(torch.sort(all_scores, descending=True, stable=True).indices[:cap]).values
    boxes, scores, class_ids = decode(outputs, capped_spec, 0.2)
    assert torch.equal(scores, all_scores[best]) and torch.equal(class_ids, all_classes[best])
    assert torch.allclose(boxes, all_boxes[best], atol=1e-5)


def test_cap_is_a_spec_field_with_bounds() -> None:
    assert _spec("yolov8").max_candidates == 1000 and _spec("yolov8").max_detections is None
    with pytest.raises(ValueError, match="max_candidates"):
        _spec("yolov8", max_candidates=0)
    with pytest.raises(ValueError, match="max_candidates"):
        _spec("yolov8", max_candidates=100_001)


# --- end-to-end families ---------------------------------------------------------------------------


def test_end_to_end_families_skip_nms() -> None:
    assert {f for f in HeadFamily if f.end_to_end} == {
        HeadFamily.END2END,
        HeadFamily.DETR,
        HeadFamily.NMS_IN_GRAPH,
    }


def test_end2end_rows_in_pixels_and_normalised() -> None:
    # rows: x1 y1 x2 y2 score class; row 1 is below the threshold, row 2 padding (class -1), row 3 too low
    rows = torch.tensor(
        [
            [8.0, 16.0, 40.0, 48.0, 0.9, 1.0],
            [0.0, 0.0, 10.0, 10.0, 0.2, 0.0],
            [1.0, 1.0, 5.0, 5.0, 0.95, -1.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        ]
    )
    _assert_one(decode({"out": rows[None]}, _spec("end2end"), 0.3), [8.0, 16.0, 40.0, 48.0], 0.9, 1)
    normalised = rows.clone()
    normalised[:, :4] /= 64.0  # input 64x64
    spec = _spec("end2end", boxes_normalised=True)
    _assert_one(decode({"out": normalised}, spec, 0.3), [8.0, 16.0, 40.0, 48.0], 0.9, 1)
    # cx cy w h: (24, 32, 32, 32) is the same box
    cxcywh = torch.tensor([[24.0, 32.0, 32.0, 32.0, 0.9, 1.0]])
    _assert_one(
        decode({"out": cxcywh}, _spec("end2end", box_format="cxcywh"), 0.3), [8.0, 16.0, 40.0, 48.0], 0.9, 1
    )
    with pytest.raises(ValueError, match="expected last dim 6"):
        decode({"out": torch.zeros(10, 7)}, _spec("end2end"), 0.3)


@pytest.mark.parametrize("activation", ["none", "sigmoid", "softmax"])
def test_detr_queries_one_and_two_outputs(activation: str) -> None:
    # query 0: box cx, cy, w, h = (0.375, 0.5, 0.5, 0.5) of 64x64 = xyxy (8, 16, 40, 48), car 0.9
    boxes = torch.tensor([[0.375, 0.5, 0.5, 0.5], [0.5, 0.5, 0.1, 0.1]])
    probs = torch.tensor([[0.05, 0.9, 0.05], [0.1, 0.1, 0.1]])
    if activation == "none":
        scores = probs
    elif activation == "sigmoid":
        scores = torch.log(probs / (1 - probs))
    else:  # softmax over C + 1 columns (last = no object): log-probabilities, any constant shift
        scores = torch.log(torch.cat((probs, 1 - probs.sum(1, keepdim=True)), dim=1)) + 3.0
    spec = _spec("detr", score_activation=activation)
    _assert_one(
        decode({"out": torch.cat((boxes, scores), dim=1)}, spec, 0.3), [8.0, 16.0, 40.0, 48.0], 0.9, 1
    )
    two = _spec("detr", score_activation=activation, output_names=["boxes", "scores"])
    _assert_one(
        decode({"boxes": boxes[None], "scores": scores[None]}, two, 0.3), [8.0, 16.0, 40.0, 48.0], 0.9, 1
    )
    # top-k over (query, class) pairs, no NMS: at 0.01 all 6 class scores of the 2 queries come out
    assert decode({"boxes": boxes, "scores": scores}, two, 0.01)[0].shape == (6, 4)


def test_detr_refuses_a_wrong_width() -> None:
    with pytest.raises(ValueError, match=r"\(Q, 4 \+ 3\)"):
        decode({"out": torch.zeros(5, 9)}, _spec("detr"), 0.3)


def test_nms_in_graph_reads_only_the_first_count_rows() -> None:
    names = ["num", "det_boxes", "det_scores", "det_classes"]
    boxes = torch.tensor([[8.0, 16.0, 40.0, 48.0], [1.0, 1.0, 9.0, 9.0], [0.0, 0.0, 0.0, 0.0]])
    outputs = {
        "num": np.array([1], np.int32),
        "det_boxes": boxes.numpy(),
        "det_scores": np.array([0.9, 0.99, 0.0], np.float32),  # row 1 is past the count
        "det_classes": np.array([2, 0, 0], np.int32),
    }
    spec = _spec("nms-in-graph", output_names=names)
    _assert_one(decode(outputs, spec, 0.3), [8.0, 16.0, 40.0, 48.0], 0.9, 2)
    without_count = _spec("nms-in-graph", output_names=names[1:])
    assert decode(outputs, without_count, 0.3)[2].tolist() == [2, 0]  # no count: every row above 0.3
    normalised = _spec("nms-in-graph", output_names=names, boxes_normalised=True)
    scaled = {**outputs, "det_boxes": boxes.numpy() / 64.0}
    _assert_one(decode(scaled, normalised, 0.3), [8.0, 16.0, 40.0, 48.0], 0.9, 2)


def test_rank_final_filters_sorts_and_caps() -> None:
    from fovea.common.detectors.heads import rank_final

    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [5, 5, 15, 15], [1, 1, 2, 2]])
    scores = torch.tensor([0.5, 0.9, 0.7, 0.7])
    class_ids = torch.tensor([0, 0, 1, 2])
    # identical boxes 0 and 1 both stay: no NMS
    kept = rank_final(boxes, scores, class_ids, max_detections=10)
    assert kept[1].tolist() == pytest.approx([0.9, 0.7, 0.7, 0.5]) and kept[2].tolist() == [0, 1, 2, 0]
    kept = rank_final(boxes, scores, class_ids, max_detections=2, class_filter={0, 2})
    assert kept[2].tolist() == [0, 2] and kept[0].shape == (2, 4)
    assert rank_final(boxes[:0], scores[:0], class_ids[:0], max_detections=5)[0].shape == (0, 4)
    with pytest.raises(ValueError, match="max_detections"):
        rank_final(boxes, scores, class_ids, max_detections=-1)
