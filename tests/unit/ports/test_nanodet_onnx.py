"""The served NanoDet ONNX graph (uint8 NHWC in, normalised inside) against the TF.js reference and the port.

The reference input (``tests/fixtures/nanodet-reference``) is already normalised float NCHW BGR; it was made
from a uint8 RGB image, so ``round(x * std + mean)`` recovers that image exactly (the error of the float
round trip is far below 0.5) and the served graph can be checked end to end on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from fovea.convert.nanodet import (
    PORT_TOLERANCE,
    check_images,
    convert_nanodet,
    default_artifact_path,
    export_core_onnx,
    port_errors,
    served_onnx,
)
from fovea.ports.nanodet import NANODET_METADATA, ONNX_INPUT, ONNX_OUTPUTS, load_nanodet

REFERENCE_FILES = ("Identity", "Identity_1", "Identity_2", "Identity_3", "Identity_4", "Identity_5")
SHAPES = ((2704, 80), (676, 80), (169, 80), (2704, 44), (676, 44), (169, 44))


@pytest.fixture(scope="module")
def port() -> torch.nn.Module:
    path = default_artifact_path()
    return load_nanodet(path if path.exists() else convert_nanodet(path))


@pytest.fixture(scope="module")
def core(port: torch.nn.Module) -> Any:
    return export_core_onnx(port)


@pytest.fixture(scope="module")
def served(core: Any) -> Any:
    return served_onnx(core)


def _session(model: Any) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _reference(fixtures: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    directory = fixtures / "nanodet-reference"
    x = np.load(directory / "input_astronaut_416_nchw_bgr_meanstd.npy")
    return x, [np.load(directory / f"out_{name}.npy") for name in REFERENCE_FILES]


def test_core_graph_matches_tfjs_reference(core: Any, fixtures: Path) -> None:
    x, expected = _reference(fixtures)
    got = _session(core).run(list(ONNX_OUTPUTS), {"NORMALISED": x})
    errors = {n: float(np.abs(g - e).max()) for n, g, e in zip(ONNX_OUTPUTS, got, expected, strict=True)}
    print("core graph vs TF.js, max abs error:", errors)
    assert errors and max(errors.values()) <= PORT_TOLERANCE, errors


def test_served_graph_on_uint8_matches_tfjs_reference(served: Any, fixtures: Path) -> None:
    x, expected = _reference(fixtures)
    mean = np.asarray(NANODET_METADATA["mean"], np.float32)[:, None, None]
    std = np.asarray(NANODET_METADATA["std"], np.float32)[:, None, None]
    bgr = x[0] * std + mean  # (3, 416, 416), BGR, 0..255 up to float error
    assert np.abs(bgr - np.round(bgr)).max() < 1e-3
    rgb = np.round(bgr[::-1].transpose(1, 2, 0)).astype(np.uint8)[None]  # (1, 416, 416, 3)
    got = _session(served).run(list(ONNX_OUTPUTS), {ONNX_INPUT: rgb})
    errors = {n: float(np.abs(g - e).max()) for n, g, e in zip(ONNX_OUTPUTS, got, expected, strict=True)}
    print("served graph (uint8) vs TF.js, max abs error:", errors)
    assert errors and max(errors.values()) <= PORT_TOLERANCE, errors


def test_served_graph_matches_port(served: Any, port: torch.nn.Module) -> None:
    errors = port_errors(served, port, check_images(seed=1))
    print("served graph vs port(preprocess(uint8)), max abs error:", errors)
    assert errors and max(errors.values()) <= PORT_TOLERANCE, errors


def test_served_signature_is_the_triton_contract(served: Any) -> None:
    (image,) = served.graph.input
    dims = [d.dim_value or d.dim_param for d in image.type.tensor_type.shape.dim]
    assert image.name == ONNX_INPUT == "INPUT"
    assert image.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert dims == ["N", 416, 416, 3]
    outputs = [
        (o.name, [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim])
        for o in served.graph.output
    ]
    assert outputs == [(n, ["N", *s]) for n, s in zip(ONNX_OUTPUTS, SHAPES, strict=True)]
    assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for o in served.graph.output)
    assert max(op.version for op in served.opset_import if op.domain in ("", "ai.onnx")) >= 17


def test_batch_axis_is_dynamic(served: Any) -> None:
    images = check_images()  # two images
    session = _session(served)
    pair = session.run(list(ONNX_OUTPUTS), {ONNX_INPUT: images})
    single = session.run(list(ONNX_OUTPUTS), {ONNX_INPUT: images[1:]})
    for p, s, shape in zip(pair, single, SHAPES, strict=True):
        assert p.shape == (2, *shape)
        np.testing.assert_allclose(p[1:], s, rtol=0, atol=1e-5)
