"""CenterNet (MobileNetV3, COCO-80) served with onnxruntime: ``model_repository/centernet/1/model.onnx``.

The graph comes from ``fovea models build`` (:func:`fovea.models.centernet.convert_centernet_onnx`): the TF.js
port exported to ONNX behind a uint8 input (``[N, 512, 512, 3]`` RGB as the detection service letterboxes it;
the network takes 0..255 values, so the graph only casts), followed by CenterNet's decode
(:class:`fovea.models.centernet.CenterNetCandidates`: 3x3 peak max-pool, top-k over (cell, class), boxes from
the four side distances). Tensor names in the ONNX file equal the Triton names, so Triton's native onnxruntime
backend can serve the same file (``platform: "onnxruntime_onnx"``) where it exists.

Outputs, per image, the best 100 peaks, best first: ``BOXES`` ``(100, 4)`` float32 xyxy in input pixels,
``SCORES`` ``(100,)`` float32, ``CLASSES`` ``(100,)`` int32 (the ``candidates`` family of the service).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fovea.serving.base import Arrays, Contract, RequestError, TensorSpec, run_batched, session_for

__all__ = ["CONTRACT", "CenterNet", "load"]

CONTRACT = Contract(
    name="centernet",
    inputs=(TensorSpec("INPUT", "uint8", (512, 512, 3)),),
    outputs=(
        TensorSpec("BOXES", "float32", (100, 4)),
        TensorSpec("SCORES", "float32", (100,)),
        TensorSpec("CLASSES", "int32", (100,)),
    ),
    parameters={
        "WEIGHTS": "the ONNX file in 1/ (model.onnx, written by fovea models build)",
        "DEVICE": "auto | cpu | cuda | tensorrt: onnxruntime execution providers (fovea.serving.base)",
        "THREADS": "onnxruntime intra-op threads; 0 = FOVEA_TORCH_THREADS, else one per core",
    },
)


class CenterNet:
    """One onnxruntime session; :meth:`execute` runs a gathered batch in one call."""

    def __init__(self, session: Any) -> None:
        inputs = [(i.name, i.type) for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]
        if inputs != [("INPUT", "tensor(uint8)")] or outputs != list(CONTRACT.output_names):
            raise ValueError(
                f"the ONNX file has inputs {inputs} and outputs {outputs}; expected INPUT uint8 and "
                f"{list(CONTRACT.output_names)}: rebuild it with `fovea models build --only centernet --force`"
            )
        self.session = session

    def _run(self, batch: Arrays) -> Arrays:
        outputs = self.session.run(list(CONTRACT.output_names), {"INPUT": batch["INPUT"]})
        return dict(zip(CONTRACT.output_names, outputs, strict=True))

    def execute(self, requests: Sequence[Mapping[str, np.ndarray]]) -> list[Arrays | RequestError]:
        """One entry per request: ``{BOXES, SCORES, CLASSES}`` for its ``n`` images or its ``RequestError``."""
        checked: list[Mapping[str, np.ndarray]] = []
        errors: dict[int, RequestError] = {}
        for i, request in enumerate(requests):
            image = request.get("INPUT")
            if image is not None and image.dtype != np.uint8:
                errors[i] = RequestError(f"input INPUT is {image.dtype}, expected uint8")
                checked.append({})
            else:
                checked.append(request)
        results = run_batched(checked, CONTRACT.input_dims, self._run)
        return [errors.get(i, result) for i, result in enumerate(results)]

    def describe(self) -> str:
        return f"onnxruntime {', '.join(self.session.get_providers())}"


def load(model_dir: Path, params: Mapping[str, str], instance_kind: str, device_id: int | str) -> CenterNet:
    """Open ``model_dir / WEIGHTS`` with the providers ``DEVICE`` and the instance ask for."""
    return CenterNet(session_for(model_dir, params, instance_kind, device_id))
