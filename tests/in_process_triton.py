"""Triton replaced by the modules it serves, for in-process servicer tests on port 0: the same contracts,
configs and weights (``fovea.serving``, loaded from the model repository), no server. It has the methods of
``fovea.common.triton.TritonClient`` the services call."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from fovea.common.errors import InvalidArgument
from fovea.contracts.tensors import model_parameters
from fovea.serving.base import read_config
from fovea.serving.triton_adapter import Served, load_from_repository


class InProcessTriton:
    url = "in-process"

    def __init__(self, repository: Path, modules: Mapping[str, str]) -> None:
        """``modules``: model name -> the ``fovea.serving`` module that serves it."""
        self.repository = repository
        self.models: dict[str, Served] = {
            name: load_from_repository(module, repository / name) for name, module in modules.items()
        }
        self.calls = 0  # inferences run, so a test can tell a request was refused before the model

    async def is_model_ready(self, model: str) -> bool:
        return model in self.models

    async def model_parameters(self, model: str) -> dict[str, str]:
        return model_parameters(read_config(self.repository / model / "config.pbtxt"))

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        *,
        timeout_s: float | None = None,
    ) -> dict[str, np.ndarray]:
        self.calls += 1
        [result] = await asyncio.to_thread(self.models[model].execute, [dict(inputs)])
        if isinstance(result, Exception):
            raise InvalidArgument(str(result))
        return {name: result[name] for name in outputs}

    async def close(self) -> None:
        return None
