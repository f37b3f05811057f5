"""Helpers behind the python-backend ``model.py`` files: batching, device choice, weight paths.

``model.py`` stays a thin ``TritonPythonModel``: it turns ``pb_utils`` tensors into numpy, calls
``run_batched`` and turns the result back. Everything here is importable (and tested) without Triton.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

Arrays = dict[str, np.ndarray]


class RequestError(ValueError):
    """One request of a batch is malformed; it gets its own error, the others still run."""


def check_request(arrays: Mapping[str, np.ndarray], expected: Mapping[str, tuple[int, ...]]) -> None:
    """Check names and per-item shapes (batch dimension first, -1 = any)."""
    for name, shape in expected.items():
        if name not in arrays:
            raise RequestError(f"missing input {name}")
        got = arrays[name].shape[1:]
        if len(got) != len(shape) or any(s not in (-1, g) for s, g in zip(shape, got, strict=True)):
            raise RequestError(
                f"input {name} has shape {arrays[name].shape}, expected [N, {', '.join(map(str, shape))}]"
            )


def run_batched(
    requests: Sequence[Mapping[str, np.ndarray]],
    expected: Mapping[str, tuple[int, ...]],
    fn: Callable[[Arrays], Arrays],
) -> list[Arrays | RequestError]:
    """Concatenate the valid requests along the batch axis, run ``fn`` once, split the outputs back.

    Returns one entry per request, in order: its outputs, or the ``RequestError`` it earned.
    """
    results: list[Arrays | RequestError] = []
    valid: list[int] = []
    for i, arrays in enumerate(requests):
        try:
            check_request(arrays, expected)
            valid.append(i)
            results.append({})
        except RequestError as exc:
            results.append(exc)
    if not valid:
        return results
    sizes = [requests[i][next(iter(expected))].shape[0] for i in valid]
    batch = {name: np.concatenate([requests[i][name] for i in valid], axis=0) for name in expected}
    outputs = fn(batch)
    offsets = np.cumsum([0, *sizes])
    for k, i in enumerate(valid):
        results[i] = {name: out[offsets[k] : offsets[k + 1]] for name, out in outputs.items()}
    return results


def choose_device(instance_kind: str, device_id: str | int, preference: str) -> str:
    """``cuda:<id>`` for a GPU instance; for a CPU instance CUDA only when ``preference`` is auto/cuda."""
    import torch

    if instance_kind.upper() == "GPU":
        return f"cuda:{device_id}"
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        return "cuda:0"
    return "cpu"


def model_parameters(model_config_json: str) -> dict[str, str]:
    """The ``parameters`` of a config.pbtxt as plain strings."""
    config = json.loads(model_config_json)
    return {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}


def weights_path(model_dir: Path, filename: str) -> Path:
    """The built weights file; a clear error when `fovea models build` has not been run."""
    path = model_dir / filename
    if not path.exists():
        raise FileNotFoundError(f"weights {path} are missing: run `fovea models build` first")
    return path


def torch_threads() -> int:
    return int(os.environ.get("FOVEA_TORCH_THREADS", "0")) or max(1, (os.cpu_count() or 1))
