"""``style_fast``: the 26-style feed-forward network (``multistyle26.onnx`` as shipped) in onnxruntime.

``IMAGE`` uint8 ``[N, H, W, 3]`` RGB and ``STYLE_INDEX`` int32 ``[N, 1]`` (0-25, ``ListStyles`` order) ->
``IMAGE`` uint8 ``[N, H, W, 3]``, the same size. The network's own batch is fixed at 1, so images run one at
a time; requests with images of the same size are gathered by Triton all the same.

Stays in the python backend on a GPU too: the network takes a 26-weight style vector the index selects,
and its input and output share the name ``IMAGE`` in our contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fovea.serving.base import Arrays, Contract, RequestError, TensorSpec, torch_threads, weights_path

__all__ = ["CONTRACT", "StyleFast", "load"]

CONTRACT = Contract(
    name="style_fast",
    inputs=(TensorSpec("IMAGE", "uint8", (-1, -1, 3)), TensorSpec("STYLE_INDEX", "int32", (1,))),
    outputs=(TensorSpec("IMAGE", "uint8", (-1, -1, 3)),),
    parameters={
        "WEIGHTS": "the ONNX file in 1/ (multistyle26.onnx, copied by fovea models build)",
        "DEVICE": "auto | cpu | cuda (onnxruntime's CPU provider here)",
    },
)


class StyleFast:
    def __init__(self, runner: Any) -> None:
        self.runner = runner  # fovea.models.multistyle.MultiStyleRunner

    def _one(self, request: Mapping[str, np.ndarray]) -> Arrays:
        from fovea.models.multistyle import NUM_STYLES

        image, index = request.get("IMAGE"), request.get("STYLE_INDEX")
        if image is None or index is None:
            raise RequestError("IMAGE and STYLE_INDEX are both required")
        if image.ndim != 4 or image.shape[3] != 3 or image.dtype != np.uint8:
            raise RequestError(f"IMAGE must be uint8 [N, H, W, 3], got {image.dtype} {list(image.shape)}")
        index = index.reshape(-1)
        if image.shape[0] != index.shape[0]:
            raise RequestError(f"{image.shape[0]} images but {index.shape[0]} style indices")
        if np.any(index < 0) or np.any(index >= NUM_STYLES):
            raise RequestError(f"STYLE_INDEX must be within [0, {NUM_STYLES - 1}], got {index.tolist()}")
        out = np.empty_like(image)
        for i in range(image.shape[0]):
            x = image[i].astype(np.float32).transpose(2, 0, 1)[None] / 255.0
            try:
                y = self.runner.stylize(x, int(index[i]))[0]
            except ValueError as exc:  # e.g. an image smaller than the network's minimum
                raise RequestError(str(exc)) from exc
            out[i] = np.clip(y.transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return {"IMAGE": out}

    def execute(self, requests: Sequence[Mapping[str, np.ndarray]]) -> list[Arrays | RequestError]:
        """One entry per request (each may hold several images); a bad request gets its own error."""
        results: list[Arrays | RequestError] = []
        for request in requests:
            try:
                results.append(self._one(request))
            except RequestError as exc:
                results.append(exc)
        return results

    def describe(self) -> str:
        return f"onnxruntime {', '.join(self.runner.session.get_providers())}"


def load(model_dir: Path, params: Mapping[str, str], instance_kind: str, device_id: int | str) -> StyleFast:
    from fovea.models.multistyle import MultiStyleRunner

    return StyleFast(MultiStyleRunner(weights_path(model_dir, params["WEIGHTS"]), threads=torch_threads()))
