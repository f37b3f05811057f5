"""``style_gatys``: the Gatys optimisation on VGG16 (HED weights) in torch, a decoupled model.

Inputs ``CONTENT`` and ``STYLE`` uint8 ``[H, W, 3]`` RGB and ``PARAMS`` (one string: the JSON of
:class:`fovea.style.core.gatys.GatysParams`). One request streams a response per iteration (``ITERATION``,
``COSTS`` = J_content, J_style, J_total, and ``PREVIEW`` when one is due; ``IMAGE`` empty) and a final one with
the result in ``IMAGE``; a cancelled request stops at the next iteration. Torch stays here because autograd
is the point: the image itself is what is optimised.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fovea.serving.base import (
    Arrays,
    Contract,
    RequestError,
    TensorSpec,
    choose_device,
    torch_threads,
    weights_path,
)

__all__ = ["CONTRACT", "Gatys", "load"]

CONTRACT = Contract(
    name="style_gatys",
    inputs=(
        TensorSpec("CONTENT", "uint8", (-1, -1, 3)),
        TensorSpec("STYLE", "uint8", (-1, -1, 3)),
        TensorSpec("PARAMS", "object", (1,)),
    ),
    outputs=(
        TensorSpec("ITERATION", "int32", (1,)),
        TensorSpec("COSTS", "float32", (3,)),
        TensorSpec("PREVIEW", "uint8", (-1, -1, 3)),
        TensorSpec("IMAGE", "uint8", (-1, -1, 3)),
    ),
    parameters={
        "WEIGHTS": "the VGG16 artefact in 1/ (vgg16_hed.pt, written by fovea models build)",
        "DEVICE": "auto | cpu | cuda: torch device (a KIND_GPU instance always uses its GPU)",
    },
)

EMPTY = np.zeros((0, 0, 3), dtype=np.uint8)


def outputs(
    iteration: int, costs: tuple[float, float, float], preview: Any = None, image: Any = None
) -> Arrays:
    return {
        "ITERATION": np.array([iteration], dtype=np.int32),
        "COSTS": np.asarray(costs, dtype=np.float32),
        "PREVIEW": EMPTY if preview is None else np.ascontiguousarray(preview),
        "IMAGE": EMPTY if image is None else np.ascontiguousarray(image),
    }


class Gatys:
    def __init__(self, vgg: Any, device: str) -> None:
        self.vgg = vgg
        self.device = device

    def stream(
        self, inputs: Mapping[str, np.ndarray], send: Callable[[Arrays], None], cancelled: Callable[[], bool]
    ) -> Arrays | None:
        """Run one request: ``send`` each iteration's outputs; return the final outputs (None if cancelled)."""
        from fovea.style.core.gatys import GatysParams, run_gatys
        from fovea.style.core.images import array_to_tensor

        try:
            raw = inputs["PARAMS"].reshape(-1)[0]
            params = GatysParams(**json.loads(raw.decode() if isinstance(raw, bytes) else raw))
            content, style = inputs["CONTENT"], inputs["STYLE"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RequestError(f"bad request: {exc}") from exc
        last: list[Any] = [0, (0.0, 0.0, 0.0)]

        def on_progress(
            iteration: int, j_content: float, j_style: float, j_total: float, preview: Any
        ) -> bool:
            if cancelled():
                return False
            last[0], last[1] = iteration, (j_content, j_style, j_total)
            send(outputs(iteration, last[1], preview))
            return True

        try:
            image = run_gatys(
                self.vgg,
                array_to_tensor(content, self.device),
                array_to_tensor(style, self.device),
                params,
                on_progress,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise RequestError(f"bad request: {exc}") from exc
        return None if cancelled() else outputs(last[0], last[1], image=image)

    def describe(self) -> str:
        return f"VGG16 in torch on {self.device}"


def load(model_dir: Path, params: Mapping[str, str], instance_kind: str, device_id: int | str) -> Gatys:
    import torch

    from fovea.models.vgg16_hed import load_vgg16

    device = choose_device(instance_kind, device_id, params["DEVICE"])
    torch.set_num_threads(torch_threads())
    vgg = load_vgg16(weights_path(model_dir, params["WEIGHTS"]), device=device).eval()
    for p in vgg.parameters():
        p.requires_grad_(False)
    return Gatys(vgg, device)
