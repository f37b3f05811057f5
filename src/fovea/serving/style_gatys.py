"""``style_gatys``: the Gatys optimisation on VGG16 (HED weights) in torch, a decoupled model.

Inputs ``CONTENT`` and ``STYLE`` uint8 ``[H, W, 3]`` RGB and ``PARAMS`` (one string: the JSON of
:class:`fovea.contracts.styles.GatysParams`). One request streams a response per iteration (``ITERATION``,
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

from fovea.contracts.style_gatys import CONTRACT
from fovea.contracts.tensors import Arrays
from fovea.serving.base import RequestError, choose_device, torch_threads, weights_path

__all__ = ["CONTRACT", "Gatys", "load"]


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
        from fovea.contracts.styles import GatysParams
        from fovea.ports.gatys import array_to_tensor, run_gatys

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

    from fovea.ports.vgg16_hed import load_vgg16

    device = choose_device(instance_kind, device_id, params["DEVICE"])
    torch.set_num_threads(torch_threads())
    vgg = load_vgg16(weights_path(model_dir, params["WEIGHTS"]), device=device).eval()
    for p in vgg.parameters():
        p.requires_grad_(False)
    return Gatys(vgg, device)
