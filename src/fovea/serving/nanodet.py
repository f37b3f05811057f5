"""NanoDet (COCO-80) served with onnxruntime: ``model_repository/nanodet/1/model.onnx``.

The graph comes from ``fovea models build`` (:func:`fovea.convert.nanodet.convert_nanodet_onnx`): the TF.js port
exported to ONNX behind a uint8 input, so the detection service sends the letterboxed image as it is
(``[N, 416, 416, 3]`` RGB, 0.5 MB) and the cast, RGB -> BGR, ``(x - mean) / std`` and NHWC -> NCHW run in the
graph. Tensor names in the ONNX file equal the Triton names, so Triton's native onnxruntime backend can serve
the same file (``platform: "onnxruntime_onnx"``) where it exists.

Outputs, per image, the best 1,000 (cell, class) pairs, best first (decoded in the graph by
:class:`fovea.ports.nanodet.NanoDetCandidates`): ``BOXES`` ``(1000, 4)`` float32 xyxy in input pixels,
``SCORES`` ``(1000,)`` float32, ``CLASSES`` ``(1000,)`` int32: 16 KB instead of 1.7 MB of raw head outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fovea.contracts.nanodet import CONTRACT
from fovea.contracts.tensors import Arrays
from fovea.serving.base import (
    RequestError,
    UInt8ImageModel,
    run_batched,
    session_for,
    torch_instead,
    weights_path,
)

__all__ = ["CONTRACT", "TorchCandidates", "load"]


class TorchCandidates:
    """The same candidates from the torch port (:class:`fovea.ports.nanodet.NanoDetCandidates` over
    ``nanodet_port.pt``, which `fovea models build` copies next to the ONNX file) on a torch device: the
    GPU path of a host whose onnxruntime has no CUDA provider. The uint8 image is moved to the device as it
    is; RGB -> BGR, ``(x - mean) / std`` and NHWC -> NCHW run there."""

    def __init__(self, port_path: Path, device: str) -> None:
        import torch

        from fovea.ports.nanodet import NANODET_METADATA, NanoDetCandidates, load_nanodet

        self.device = device
        self.module = NanoDetCandidates(load_nanodet(port_path, device)).to(device).eval()
        shape = (1, 3, 1, 1)
        self.mean = torch.tensor(NANODET_METADATA["mean"], dtype=torch.float32, device=device).view(shape)
        self.std = torch.tensor(NANODET_METADATA["std"], dtype=torch.float32, device=device).view(shape)
        self.bgr = NANODET_METADATA["channel_order"] == "BGR"

    def run(self, batch: Arrays) -> Arrays:
        """The outputs of one gathered batch ``{"INPUT": (N, 416, 416, 3) uint8}``."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(batch["INPUT"]).to(self.device).permute(0, 3, 1, 2).float()
            x = ((x.flip(1) if self.bgr else x) - self.mean) / self.std
            outputs: Any = self.module(x)
            arrays = [t.cpu().numpy() for t in outputs]
        return dict(zip(CONTRACT.output_names, arrays, strict=True))

    def execute(self, requests: Sequence[Mapping[str, np.ndarray]]) -> list[Arrays | RequestError]:
        return run_batched(requests, CONTRACT.input_dims, self.run, CONTRACT.input_dtypes)

    def describe(self) -> str:
        return f"torch {self.device} (NanoDet's port)"


def load(
    model_dir: Path, params: Mapping[str, str], instance_kind: str, device_id: int | str
) -> UInt8ImageModel | TorchCandidates:
    """Open ``model_dir / WEIGHTS`` with the providers ``DEVICE`` and the instance ask for; or the torch port
    (:class:`TorchCandidates`) where ``DEVICE`` asks for it or a GPU is there that only torch can use."""
    from fovea.ports.nanodet import PORT_FILENAME

    device = torch_instead(params.get("DEVICE") or "auto", instance_kind, device_id)
    if device is not None:
        return TorchCandidates(weights_path(model_dir, PORT_FILENAME), device)
    return UInt8ImageModel(session_for(model_dir, params, instance_kind, device_id), CONTRACT)
