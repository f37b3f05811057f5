"""Run an imported ONNX detector with onnxruntime: what the ``1/model.py`` of every model written by
``fovea models import-onnx`` calls (see :mod:`fovea.models.onnx_import`).

The model's ``config.pbtxt`` says everything the runner needs, so one generic ``model.py`` serves every
imported detector:

- input ``INPUT`` (``TYPE_FP32``, per-item dims ``[3, H, W]``) and the outputs, with Triton names;
- ``parameters``: ``WEIGHTS`` (the ONNX file in ``1/``), ``DEVICE`` (``auto`` | ``cpu`` | ``cuda``),
  ``ONNX_INPUT`` (the graph's input name) and ``ONNX_OUTPUTS`` (a JSON list of the graph's output names,
  in the order of the config's outputs).

Batching: Triton always gathers requests (``max_batch_size`` > 0, dynamic batching). When the ONNX batch
dimension is dynamic a gathered batch runs as one onnxruntime call; when it is fixed at ``B`` the batch runs
in chunks of ``B`` (the last chunk zero-padded, its padding dropped from the outputs).

Device: a ``KIND_GPU`` instance uses onnxruntime's CUDA provider on its GPU; a ``KIND_CPU`` instance uses it
on GPU 0 when ``DEVICE`` is ``auto``/``cuda`` and the installed onnxruntime has it (``onnxruntime-gpu``),
else the CPU provider.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fovea.serving.base import torch_threads, weights_path

__all__ = ["OnnxRunner", "RunnerConfig", "choose_providers", "load_runner"]

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
INPUT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


@dataclass(frozen=True)
class RunnerConfig:
    """What ``config.pbtxt`` says about an imported model (parsed from Triton's JSON model config)."""

    weights: str
    device: str
    input_name: str
    """Triton input name."""
    input_dims: tuple[int, ...]
    """Per-item input dims, ``(3, H, W)``."""
    onnx_input: str
    outputs: tuple[tuple[str, str], ...]
    """``(Triton output name, ONNX output name)`` in config order."""

    @classmethod
    def from_model_config(cls, config: str | Mapping[str, Any]) -> RunnerConfig:
        """Parse Triton's model config (``args["model_config"]``, JSON text or the parsed dict).

        Raises:
            ValueError: not exactly one input, a missing parameter, or outputs that do not match
                ``ONNX_OUTPUTS``.
        """
        data = json.loads(config) if isinstance(config, str) else config
        params = {k: v.get("string_value", "") for k, v in data.get("parameters", {}).items()}
        missing = [k for k in ("WEIGHTS", "ONNX_INPUT", "ONNX_OUTPUTS") if not params.get(k)]
        if missing:
            raise ValueError(
                f"config.pbtxt lacks the parameters {missing} (written by fovea models import-onnx)"
            )
        inputs = data.get("input", [])
        if len(inputs) != 1:
            raise ValueError(f"an imported detector has exactly one input, config.pbtxt has {len(inputs)}")
        triton_outputs = [o["name"] for o in data.get("output", [])]
        onnx_outputs = json.loads(params["ONNX_OUTPUTS"])
        if not isinstance(onnx_outputs, list) or len(onnx_outputs) != len(triton_outputs):
            raise ValueError(
                f"ONNX_OUTPUTS {params['ONNX_OUTPUTS']} must list one ONNX name per config output {triton_outputs}"
            )
        return cls(
            weights=params["WEIGHTS"],
            device=params.get("DEVICE") or "auto",
            input_name=inputs[0]["name"],
            input_dims=tuple(int(d) for d in inputs[0]["dims"]),
            onnx_input=params["ONNX_INPUT"],
            outputs=tuple(zip(triton_outputs, (str(n) for n in onnx_outputs), strict=True)),
        )


def choose_providers(
    instance_kind: str, device_id: int | str, preference: str, available: Sequence[str]
) -> list[str | tuple[str, dict[str, Any]]]:
    """onnxruntime providers, best first (CPU always last, as the fallback).

    Args:
        instance_kind: Triton's ``model_instance_kind`` (``CPU`` or ``GPU``).
        device_id: Triton's ``model_instance_device_id``.
        preference: the ``DEVICE`` parameter: ``auto``, ``cuda`` or ``cpu``.
        available: ``onnxruntime.get_available_providers()``.

    Raises:
        ValueError: an unknown preference, or CUDA required (GPU instance or ``cuda``) but not available.
    """
    if preference not in ("auto", "cuda", "cpu"):
        raise ValueError(f"DEVICE must be auto, cuda or cpu, got {preference!r}")
    gpu_instance = instance_kind.upper() == "GPU"
    wants_cuda = gpu_instance or preference == "cuda"
    if CUDA not in available:
        if wants_cuda:
            raise ValueError(
                f"CUDA requested ({'a KIND_GPU instance' if gpu_instance else 'DEVICE cuda'}) but this "
                f"onnxruntime has only {list(available)}: install onnxruntime-gpu or use DEVICE auto"
            )
        return [CPU]
    if preference == "cpu" and not gpu_instance:
        return [CPU]
    return [(CUDA, {"device_id": int(device_id) if gpu_instance else 0}), CPU]


class OnnxRunner:
    """One onnxruntime session over an imported detector; :meth:`run` maps Triton batches to outputs."""

    def __init__(
        self,
        path: Path,
        config: RunnerConfig,
        providers: Sequence[str | tuple[str, dict[str, Any]]] = (CPU,),
        threads: int = 0,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.config = config
        self.session = ort.InferenceSession(str(path), options, providers=list(providers))
        inputs = {i.name: i for i in self.session.get_inputs()}
        if config.onnx_input not in inputs:
            raise ValueError(f"{path} has no input {config.onnx_input!r}; it has {sorted(inputs)}")
        onnx_input = inputs[config.onnx_input]
        if onnx_input.type not in INPUT_DTYPES:
            raise ValueError(f"input {onnx_input.name!r} is {onnx_input.type}, expected float or float16")
        self.input_dtype = INPUT_DTYPES[onnx_input.type]
        batch = onnx_input.shape[0] if onnx_input.shape else None
        self.fixed_batch: int | None = batch if isinstance(batch, int) and batch > 0 else None
        names = {o.name for o in self.session.get_outputs()}
        unknown = [onnx for _, onnx in config.outputs if onnx not in names]
        if unknown:
            raise ValueError(f"{path} has no outputs {unknown}; it has {sorted(names)}")

    def describe(self) -> str:
        batch = f"fixed batch {self.fixed_batch}" if self.fixed_batch else "dynamic batch"
        return f"onnxruntime {self.session.get_providers()[0]}, {batch}"

    def _call(self, batch: np.ndarray) -> list[np.ndarray]:
        names = [onnx for _, onnx in self.config.outputs]
        feed = {self.config.onnx_input: batch.astype(self.input_dtype, copy=False)}
        return [np.asarray(out, dtype=np.float32) for out in self.session.run(names, feed)]

    def run(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run a gathered batch.

        Args:
            arrays: ``{input name: (N, 3, H, W) float32}`` (what ``serving.run_batched`` passes).

        Returns:
            ``{Triton output name: (N, ...) float32}``.
        """
        batch = arrays[self.config.input_name]
        size = batch.shape[0]
        step = self.fixed_batch or size
        chunks: list[list[np.ndarray]] = []
        for start in range(0, size, step):
            chunk = batch[start : start + step]
            real = chunk.shape[0]
            if real < step:
                pad = np.zeros((step - real, *chunk.shape[1:]), dtype=chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            chunks.append([out[:real] for out in self._call(chunk)])
        return {
            triton: np.ascontiguousarray(np.concatenate([c[k] for c in chunks]))
            for k, (triton, _) in enumerate(self.config.outputs)
        }


def load_runner(model_dir: Path, model_config: str, instance_kind: str, device_id: int | str) -> OnnxRunner:
    """What ``model.py``'s ``initialize`` does: parse the config, pick providers, open the session."""
    import onnxruntime as ort

    config = RunnerConfig.from_model_config(model_config)
    providers = choose_providers(instance_kind, device_id, config.device, ort.get_available_providers())
    return OnnxRunner(weights_path(model_dir, config.weights), config, providers, threads=torch_threads())
