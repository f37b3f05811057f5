"""What a served model takes and gives: tensor specs, a model's contract (tensors and the config parameters it requires), and the check of a Triton ``config.pbtxt`` against it. numpy only: services import this, never the runtime."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]


def model_parameters(model_config: str | Mapping[str, Any]) -> dict[str, str]:
    """The ``parameters`` of a model config (Triton's JSON text or the parsed dict) as plain strings."""
    config = json.loads(model_config) if isinstance(model_config, str) else model_config
    return {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}


# ------------------------------------------------------------------------------------------ contracts
TRITON_DTYPES = {
    "TYPE_UINT8": "uint8",
    "TYPE_INT32": "int32",
    "TYPE_INT64": "int64",
    "TYPE_FP16": "float16",
    "TYPE_FP32": "float32",
    "TYPE_BOOL": "bool",
    "TYPE_STRING": "object",
}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: Triton name, numpy dtype name, per-item dims (batch axis excluded, -1 = any)."""

    name: str
    dtype: str
    dims: tuple[int, ...]

    def triton_type(self) -> str:
        return next(t for t, d in TRITON_DTYPES.items() if d == self.dtype)


@dataclass(frozen=True)
class Contract:
    """A served model's tensors and the ``parameters`` its ``config.pbtxt`` must set (with their meaning)."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    parameters: Mapping[str, str] = field(default_factory=dict)
    """Required parameter keys -> what each means."""

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def input_dims(self) -> dict[str, tuple[int, ...]]:
        """``{input name: per-item dims}``, what :func:`run_batched` checks."""
        return {t.name: t.dims for t in self.inputs}

    @property
    def input_dtypes(self) -> dict[str, type[np.generic]]:
        """``{input name: numpy scalar type}`` of the numeric inputs, what :func:`run_batched` checks."""
        return {t.name: np.dtype(t.dtype).type for t in self.inputs if t.dtype != "object"}


def _dims(entry: Mapping[str, Any]) -> tuple[int, ...]:
    return tuple(int(d) for d in entry.get("dims", []))


def check_config(contract: Contract, model_config: str | Mapping[str, Any]) -> dict[str, str]:
    """Check a Triton model config (JSON text or dict, as ``args["model_config"]``) against ``contract``.

    Returns the config's parameters as plain strings.

    Raises:
        ValueError: listing every difference (tensor names and order, dtypes, dims, missing parameters).
    """
    config = json.loads(model_config) if isinstance(model_config, str) else model_config
    problems: list[str] = []
    for kind, specs in (("input", contract.inputs), ("output", contract.outputs)):
        entries = config.get(kind, [])
        names = [e.get("name") for e in entries]
        if names != [s.name for s in specs]:
            problems.append(f"{kind}s {names} differ from {[s.name for s in specs]}")
            continue
        for spec, entry in zip(specs, entries, strict=True):
            if entry.get("data_type") != spec.triton_type():
                problems.append(
                    f"{kind} {spec.name} is {entry.get('data_type')}, expected {spec.triton_type()}"
                )
            if _dims(entry) != spec.dims:
                problems.append(
                    f"{kind} {spec.name} has dims {list(_dims(entry))}, expected {list(spec.dims)}"
                )
    params = model_parameters(config)
    missing = sorted(set(contract.parameters) - set(params))
    if missing:
        problems.append(f"parameters {missing} are missing")
    if problems:
        raise ValueError(
            f"config of {config.get('name', contract.name)!r} does not match its contract: "
            + "; ".join(problems)
        )
    return params


ONNX_MODEL_PARAMETERS = {
    "WEIGHTS": "the ONNX file in 1/ (model.onnx, written by fovea models build)",
    "DEVICE": "auto | cpu | cuda | tensorrt: onnxruntime execution providers (fovea.serving.base)",
    "THREADS": "onnxruntime intra-op threads; 0 = FOVEA_TORCH_THREADS, else one per core",
}
"""The parameters a contract requires of a model built into ``1/model.onnx`` and run by :func:`session_for`."""

WITH_TORCH_PORT = (
    "auto | cpu | cuda | tensorrt: onnxruntime execution providers; torch: the torch port beside the ONNX file "
    "(auto and cuda use it too where torch sees a GPU and onnxruntime has no CUDA provider: torch_instead)"
)
"""``DEVICE`` of a model that also has a torch port."""
