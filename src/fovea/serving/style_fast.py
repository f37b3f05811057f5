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

from fovea.contracts.style_fast import CONTRACT
from fovea.contracts.styles import (
    INPUT_IMAGE,
    INPUT_STYLE_WEIGHTS,
    MIN_SIDE,
    NUM_STYLES,
    OUTPUT_IMAGE,
    SIZE_MULTIPLE,
    style_weights,
)
from fovea.contracts.tensors import Arrays
from fovea.serving.base import RequestError, set_intra_op_threads, torch_threads, weights_path

__all__ = ["CONTRACT", "StyleFast", "load"]


class StyleFast:
    def __init__(self, runner: Any) -> None:
        self.runner = runner  # fovea.serving.style_fast.MultiStyleRunner

    def _one(self, request: Mapping[str, np.ndarray]) -> Arrays:
        from fovea.contracts.styles import NUM_STYLES

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
    from fovea.serving.style_fast import MultiStyleRunner

    return StyleFast(MultiStyleRunner(weights_path(model_dir, params["WEIGHTS"]), threads=torch_threads()))


class MultiStyleRunner:
    """onnxruntime (CPU) session of ``multistyle26.onnx``.

    >>> runner = MultiStyleRunner(model_path)  # multistyle26.onnx, from fovea.convert.multistyle
    >>> out = runner.stylize(images, style=7)  # (N, 3, H, W) float32 in [0, 1] -> same
    """

    def __init__(self, model_path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        path = Path(model_path)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be >= 1, got {threads}")
            set_intra_op_threads(options, threads)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        if set(inputs) != {INPUT_IMAGE, INPUT_STYLE_WEIGHTS} or outputs != [OUTPUT_IMAGE]:
            raise ValueError(f"{path}: unexpected interface, inputs {sorted(inputs)}, outputs {outputs}")
        if list(inputs[INPUT_STYLE_WEIGHTS].shape) != [NUM_STYLES]:
            raise ValueError(f"{path}: style_weights has shape {inputs[INPUT_STYLE_WEIGHTS].shape}")

    def stylize(self, images: np.ndarray, style: int | str | Sequence[float] | np.ndarray = 0) -> np.ndarray:
        """Stylize a batch.

        Args:
            images: (N, 3, H, W) float32 RGB in [0, 1]; H, W >= :data:`MIN_SIDE`. Not modified.
            style: see :func:`style_weights` (one style for the whole batch).

        Returns:
            (N, 3, H, W) float32 RGB in [0, 1]. Each image is reflect-padded to a multiple of 4 and the
            result cropped back; the network runs one image at a time (its batch is fixed at 1).
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) images, got shape {images.shape}")
        if images.dtype != np.float32:
            raise ValueError(f"expected float32 images in [0, 1], got {images.dtype}")
        n, _, h, w = images.shape
        if min(h, w) < MIN_SIDE:
            raise ValueError(f"images are {w}x{h}; both sides need at least {MIN_SIDE} pixels")
        weights = style_weights(style)
        ph, pw = -h % SIZE_MULTIPLE, -w % SIZE_MULTIPLE
        out = np.empty_like(images)
        for i in range(n):
            x = images[i : i + 1]
            if ph or pw:
                x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
            y = self.session.run(
                [OUTPUT_IMAGE], {INPUT_IMAGE: np.ascontiguousarray(x), INPUT_STYLE_WEIGHTS: weights}
            )
            out[i] = y[0][0, :, :h, :w]
        return out
