"""``face_mesh``: MediaPipe face mesh (468 3D landmarks from a face crop), our TF.js port exported to ONNX, in
onnxruntime.

Contract: ``CROP`` uint8 [N, 192, 192, 3] RGB face crops (:func:`fovea.faces.recognition.core.mesh.crop_matrix`: the
detector's box enlarged 1.5x, square, eye line level) -> ``MESH`` float32 [N, 468, 3] (x, y in crop pixels,
x right, y down; z on the same scale, negative towards the camera) and ``FACE_SCORE`` float32 [N, 1] (the
probability that the crop holds a face). The ONNX file has the same tensor names and the /255 inside, so
Triton's native onnxruntime backend can serve it as is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fovea.contracts.face_mesh import CONTRACT, CROP_SIZE, MESH_INPUT, MESH_OUTPUTS, POINTS
from fovea.contracts.tensors import Arrays
from fovea.serving.base import RequestError, run_batched, session_for


class FaceMesh:
    def __init__(self, session: Any) -> None:
        self.session = session

    def run(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """(N,192,192,3) uint8 crops -> ``MESH`` (N,468,3) and ``FACE_SCORE`` (N,1) float32, one call."""
        if len(crops) == 0:
            return {"MESH": np.zeros((0, POINTS, 3), np.float32), "FACE_SCORE": np.zeros((0, 1), np.float32)}
        mesh, score = self.session.run(list(MESH_OUTPUTS), {MESH_INPUT: np.ascontiguousarray(crops)})
        return {"MESH": np.asarray(mesh, np.float32), "FACE_SCORE": np.asarray(score, np.float32)}

    def execute(self, requests: Sequence[Mapping[str, np.ndarray]]) -> list[Arrays | RequestError]:
        return run_batched(requests, CONTRACT.input_dims, lambda b: self.run(b[MESH_INPUT]))

    def describe(self) -> str:
        return f"MediaPipe face mesh (human-models 3.0.4) in onnxruntime {self.session.get_providers()}"


def load(model_dir: Path, params: Mapping[str, str], instance_kind: str, device_id: int | str) -> FaceMesh:
    return FaceMesh(session_for(model_dir, params, instance_kind, device_id))


__all__ = ["CONTRACT", "CROP_SIZE", "MESH_INPUT", "MESH_OUTPUTS", "POINTS", "FaceMesh", "load"]
