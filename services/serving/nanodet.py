"""NanoDet (COCO-80) served with onnxruntime: ``model_repository/nanodet/1/model.onnx``.

The graph comes from ``fovea models build`` (:func:`fovea.models.nanodet.convert_nanodet_onnx`): the TF.js port
exported to ONNX behind a uint8 input, so the detection service sends the letterboxed image as it is
(``[N, 416, 416, 3]`` RGB, 0.5 MB) and the cast, RGB -> BGR, ``(x - mean) / std`` and NHWC -> NCHW run in the
graph. Tensor names in the ONNX file equal the Triton names, so Triton's native onnxruntime backend can serve
the same file (``platform: "onnxruntime_onnx"``) where it exists.

Outputs, per image, the best 1,000 (cell, class) pairs, best first (decoded in the graph by
:class:`fovea.models.nanodet.NanoDetCandidates`): ``BOXES`` ``(1000, 4)`` float32 xyxy in input pixels,
``SCORES`` ``(1000,)`` float32, ``CLASSES`` ``(1000,)`` int32: 16 KB instead of 1.7 MB of raw head outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fovea.serving.base import ONNX_MODEL_PARAMETERS, Contract, TensorSpec, UInt8ImageModel, session_for

__all__ = ["CONTRACT", "load"]

CONTRACT = Contract(
    name="nanodet",
    inputs=(TensorSpec("INPUT", "uint8", (416, 416, 3)),),
    outputs=(
        TensorSpec("BOXES", "float32", (1000, 4)),
        TensorSpec("SCORES", "float32", (1000,)),
        TensorSpec("CLASSES", "int32", (1000,)),
    ),
    parameters=ONNX_MODEL_PARAMETERS,
)


def load(
    model_dir: Path, params: Mapping[str, str], instance_kind: str, device_id: int | str
) -> UInt8ImageModel:
    """Open ``model_dir / WEIGHTS`` with the providers ``DEVICE`` and the instance ask for."""
    return UInt8ImageModel(session_for(model_dir, params, instance_kind, device_id), CONTRACT)
