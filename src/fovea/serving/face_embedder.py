"""``face_embedder``: dlib's ResNet face descriptor (our port, exported to ONNX) in onnxruntime.

Contract: ``CHIP`` uint8 [N, 150, 150, 3] RGB aligned chips (dlib ``get_face_chip``, padding 0.25) ->
``EMBEDDING`` float32 [N, 128] (not normalised; compare by L2 distance). The ONNX file has the same tensor
names, the uint8 -> float normalisation inside, so Triton's native onnxruntime backend can serve it as is.
The config parameters ``EMBEDDING_VERSION`` (stored with every template) and ``DISTANCE_THRESHOLD`` (the
default gallery threshold) describe the model to the faces service (:class:`EmbedderInfo`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fovea.contracts.face_embedder import CHIP_SHAPE, CONTRACT, EMBEDDER_INPUT, EMBEDDER_OUTPUT, EmbedderInfo
from fovea.contracts.tensors import Arrays
from fovea.serving.base import RequestError, run_batched, session_for, torch_instead, weights_path


class FaceEmbedder:
    def __init__(self, session: Any, info: EmbedderInfo) -> None:
        self.session = session
        self.info = info

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """(N,150,150,3) uint8 chips -> (N,128) float32, one onnxruntime call."""
        if len(chips) == 0:
            return np.zeros((0, CONTRACT.outputs[0].dims[0]), np.float32)
        out = self.session.run([EMBEDDER_OUTPUT], {EMBEDDER_INPUT: np.ascontiguousarray(chips)})[0]
        return np.asarray(out, np.float32)

    def execute(self, requests: Sequence[Mapping[str, np.ndarray]]) -> list[Arrays | RequestError]:
        return run_batched(
            requests, CONTRACT.input_dims, lambda b: {EMBEDDER_OUTPUT: self.embed(b[EMBEDDER_INPUT])}
        )

    def describe(self) -> str:
        return f"{self.info.version} in onnxruntime {self.session.get_providers()}"


class TorchChips:
    """An onnxruntime-like session over the torch port (``dlib_resnet_port.pt``, which `fovea models build`
    copies next to the ONNX file) on a torch device: the GPU path of a host whose onnxruntime has no CUDA
    provider (:func:`fovea.serving.base.torch_instead`)."""

    def __init__(self, path: Path, device: str) -> None:
        from fovea.ports.dlib_resnet import load_dlib_resnet

        self.model = load_dlib_resnet(path, device)
        self.device = device

    def run(self, names: Sequence[str], feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        from fovea.ports.dlib_resnet import embed_chips

        return [embed_chips(self.model, feeds[EMBEDDER_INPUT], batch_size=64)]

    def get_providers(self) -> list[str]:
        return [f"torch {self.device} (the port)"]


def load(
    model_dir: Path, params: Mapping[str, str], instance_kind: str, device_id: int | str
) -> FaceEmbedder:
    from fovea.ports.dlib_resnet import PORT_FILENAME

    info = EmbedderInfo.from_parameters(params)  # fails loudly without version / threshold
    device = torch_instead(params.get("DEVICE") or "auto", instance_kind, device_id)
    if device is not None:
        return FaceEmbedder(TorchChips(weights_path(model_dir, PORT_FILENAME), device), info)
    return FaceEmbedder(session_for(model_dir, params, instance_kind, device_id), info)


__all__ = [
    "CHIP_SHAPE",
    "CONTRACT",
    "EMBEDDER_INPUT",
    "EMBEDDER_OUTPUT",
    "EmbedderInfo",
    "FaceEmbedder",
    "TorchChips",
    "load",
]
