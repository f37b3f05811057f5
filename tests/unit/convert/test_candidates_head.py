"""In-graph decoding of imported grid detectors (fovea.convert.candidates_head) against the torch decoders.

Random raw outputs of every grid family, decoded by the exported ONNX head in onnxruntime and by the
service's decoder in ``fovea.common.detectors.heads``: the same candidates above the minimum score.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx_detectors import constant_detector, yolov5_predictions, yolov8_predictions

from fovea.common.detectors.heads import decode
from fovea.contracts.detector import DetectorSpec, HeadFamily
from fovea.convert.candidates_head import OUTPUT_NAMES, candidate_errors, export_head
from fovea.convert.onnx_import import ImportOptions, import_onnx
from fovea.serving.onnx_detector import load_from_repository

RNG = np.random.default_rng(3)
LABELS = [f"c{i}" for i in range(7)]


def spec_for(family: str, outputs: list[str], **fields: object) -> DetectorSpec:
    return DetectorSpec.model_validate(
        {
            "name": "toy",
            "family": family,
            "input_size": (128, 96),
            "labels": LABELS,
            "input_name": "INPUT",
            "output_names": outputs,
            "max_candidates": 50,
            **fields,
        }
    )


def probs(*shape: int) -> np.ndarray:
    """Probabilities skewed low, as a detector's are (most cells empty)."""
    return (RNG.random(shape, dtype=np.float32) ** 3).astype(np.float32)


def pixels_cxcywh(batch: int, anchors: int) -> np.ndarray:
    centre = RNG.random((batch, anchors, 2), dtype=np.float32) * 100
    size = RNG.random((batch, anchors, 2), dtype=np.float32) * 40 + 2
    return np.concatenate((centre, size), -1)


def nanodet_case(single: bool) -> tuple[DetectorSpec, list[np.ndarray]]:
    strides, bins, c = [8, 16, 32], 8, len(LABELS)
    cells = [-(-128 // s) * -(-96 // s) for s in strides]
    if single:
        total = sum(cells)
        raw = [
            np.concatenate((probs(2, total, c), RNG.normal(size=(2, total, 4 * bins)).astype(np.float32)), -1)
        ]
        return spec_for("nanodet", ["ALL"], strides=strides, reg_max=bins - 1, center_offset=0.5), raw
    raw = []
    for n in cells:
        raw += [probs(2, n, c), RNG.normal(size=(2, n, 4 * bins)).astype(np.float32)]
    names = [f"O{i}" for i in range(len(raw))]
    return spec_for("nanodet", names, strides=strides, reg_max=bins - 1), raw


def yolo_grid_case(flat: bool) -> tuple[DetectorSpec, list[np.ndarray]]:
    b, c = 3, len(LABELS)
    grid = RNG.normal(size=(2, 6, 8, b, 5 + c)).astype(np.float32)
    grid[..., 0] -= 1  # most cells empty
    grid[..., 5:] *= 4  # confident classes
    raw = grid.reshape(2, 6, 8, b * (5 + c)) if flat else grid
    anchors = [[(10.0, 14.0), (30.0, 20.0), (50.0, 60.0)]]
    return spec_for("yolo-grid", ["GRID"], anchors=anchors), [raw]


def yolov5_case() -> tuple[DetectorSpec, list[np.ndarray]]:
    pred = np.concatenate((pixels_cxcywh(2, 300), probs(2, 300, 1 + len(LABELS))), -1)
    return spec_for("yolov5", ["OUT"]), [pred]


def yolox_case(decoded: bool) -> tuple[DetectorSpec, list[np.ndarray]]:
    strides = [8, 16, 32]
    anchors = sum((128 // s) * (96 // s) for s in strides)
    boxes = pixels_cxcywh(2, anchors) if decoded else RNG.normal(size=(2, anchors, 4)).astype(np.float32)
    pred = np.concatenate((boxes, probs(2, anchors, 1 + len(LABELS))), -1)
    return spec_for("yolox", ["OUT"], strides=strides, decoded=decoded), [pred]


def yolov8_case(channels_first: bool) -> tuple[DetectorSpec, list[np.ndarray]]:
    pred = np.concatenate((pixels_cxcywh(2, 300), probs(2, 300, len(LABELS))), -1)
    return spec_for("yolov8", ["OUT"]), [pred.transpose(0, 2, 1).copy() if channels_first else pred]


CASES = {
    "nanodet per level": lambda: nanodet_case(single=False),
    "nanodet one output": lambda: nanodet_case(single=True),
    "yolo-grid": lambda: yolo_grid_case(flat=False),
    "yolo-grid flat": lambda: yolo_grid_case(flat=True),
    "yolov5": yolov5_case,
    "yolox raw": lambda: yolox_case(decoded=False),
    "yolox decoded": lambda: yolox_case(decoded=True),
    "yolov8 (4 + C, N)": lambda: yolov8_case(channels_first=True),
    "yolov8 (N, 4 + C)": lambda: yolov8_case(channels_first=False),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("min_score", [0.001, 0.3])
def test_the_graph_keeps_the_candidates_the_decoder_keeps(case: str, min_score: float) -> None:
    spec, raw = CASES[case]()
    head = export_head(spec, [r.shape[1:] for r in raw], spec.max_candidates, opset=17)
    session = ort.InferenceSession(head.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {i.name: r for i, r in zip(session.get_inputs(), raw, strict=True)})
    assert [o.name for o in session.get_outputs()] == list(OUTPUT_NAMES)
    assert outputs[0].shape[:2] == outputs[1].shape == outputs[2].shape == (2, 50)
    assert outputs[2].dtype == np.int32
    for image in range(2):
        kept, got, score_error, box_error = candidate_errors(
            [r[image : image + 1] for r in raw], [o[image : image + 1] for o in outputs], spec, min_score
        )
        assert kept == got > 0, (kept, got)
        assert score_error <= 1e-5 and box_error <= 1e-3, (score_error, box_error)


def test_k_is_capped_at_anchors_times_classes() -> None:
    spec = spec_for("yolov5", ["OUT"]).model_copy(update={"max_candidates": 1000})
    head = export_head(spec, [(4, 5 + len(LABELS))], 1000, opset=17)
    session = ort.InferenceSession(head.SerializeToString(), providers=["CPUExecutionProvider"])
    pred = np.concatenate((pixels_cxcywh(1, 4), probs(1, 4, 1 + len(LABELS))), -1)
    boxes, scores, classes = session.run(None, {"fovea_raw_0": pred})
    assert boxes.shape == (1, 4 * len(LABELS), 4) and np.all(np.diff(scores[0]) <= 0)


BOXES = [(100.0, 160.0, 300.0, 360.0), (400.0, 280.0, 600.0, 520.0)]


@pytest.mark.parametrize("family", ["yolov8", "yolov5"])
def test_import_serves_candidates_by_default(tmp_path: Path, family: str) -> None:
    make = yolov8_predictions if family == "yolov8" else yolov5_predictions
    source = constant_detector(tmp_path / f"{family}.onnx", make(BOXES, [0, 1], [0.9, 0.8], num_classes=2))
    result = import_onnx(source, tmp_path / "repo", "toy", ImportOptions(family, ["widget", "gadget"]))
    spec = result.spec
    assert spec.family is HeadFamily.CANDIDATES and spec.decoded_from is HeadFamily(family)
    assert spec.output_names == list(OUTPUT_NAMES) and result.warnings == []
    config = (tmp_path / "repo/toy/config.pbtxt").read_text()
    assert 'name: "BOXES" data_type: TYPE_FP32 dims: [ 200, 4 ]' in config
    assert 'name: "CLASSES" data_type: TYPE_INT32 dims: [ 200 ]' in config
    assert "decoded inside" in (tmp_path / "repo/toy/MODEL_CARD.md").read_text()
    runner = load_from_repository(tmp_path / "repo/toy")  # what Triton's initialize does
    (out,) = runner.execute([{"INPUT": np.zeros((2, 640, 640, 3), np.uint8)}])
    assert isinstance(out, dict) and out["BOXES"].shape == (2, 200, 4)
    boxes, scores, class_ids = decode({n: out[n][1] for n in OUTPUT_NAMES}, spec, 0.5)
    assert boxes.tolist() == [list(b) for b in BOXES]
    assert scores.tolist() == pytest.approx([0.9, 0.8]) and class_ids.tolist() == [0, 1]
