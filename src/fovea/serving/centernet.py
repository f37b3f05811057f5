"""CenterNet (MobileNetV3, COCO-80) served with onnxruntime: ``model_repository/centernet/1/model.onnx``.

The graph comes from ``fovea models build`` (:func:`fovea.convert.centernet.convert_centernet_onnx`): the TF.js
port exported to ONNX behind a uint8 input (``[N, 512, 512, 3]`` RGB as the detection service letterboxes it;
the network takes 0..255 values, so the graph only casts), followed by CenterNet's decode
(:class:`fovea.ports.centernet.CenterNetCandidates`: 3x3 peak max-pool, top-k over (cell, class), boxes from
the four side distances). Tensor names in the ONNX file equal the Triton names, so Triton's native onnxruntime
backend can serve the same file (``platform: "onnxruntime_onnx"``) where it exists.

Outputs, per image, the best 100 peaks, best first: ``BOXES`` ``(100, 4)`` float32 xyxy in input pixels,
``SCORES`` ``(100,)`` float32, ``CLASSES`` ``(100,)`` int32 (the ``candidates`` family of the service).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fovea.contracts.centernet import CONTRACT
from fovea.serving.base import UInt8ImageModel, session_for

__all__ = ["CONTRACT", "load"]


def load(
    model_dir: Path, params: Mapping[str, str], instance_kind: str, device_id: int | str
) -> UInt8ImageModel:
    """Open ``model_dir / WEIGHTS`` with the providers ``DEVICE`` and the instance ask for."""
    return UInt8ImageModel(session_for(model_dir, params, instance_kind, device_id), CONTRACT)
