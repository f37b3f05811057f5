"""An ONNX detector imported by ``fovea models import-onnx``, served with onnxruntime.

The import (:func:`fovea.convert.onnx_import.import_onnx`) wraps the user's graph so that it takes what the
detection service sends to every detector: ``INPUT`` uint8 ``[N, H, W, 3]`` RGB, letterboxed; the cast,
channel order, ``(x * scale - mean) / std`` and NHWC -> NCHW run in the graph. Its outputs are renamed to
the Triton names; they are float32, except integer counts and class ids (nms-in-graph), kept as int32 or
int64 and declared so in ``config.pbtxt``. The ONNX tensor names therefore equal the Triton names, so
Triton's native onnxruntime backend can serve the same file.

Unlike a platform model, each imported model has its own tensors, so its contract comes from its
``config.pbtxt`` (:func:`contract_from_config`, written by the import) and :func:`load` checks the ONNX file
against it: the adapter's config check then guards the parameters, and the file guards the tensors.

Batching: Triton gathers requests (``max_batch_size`` > 0, dynamic batching). A dynamic ONNX batch axis runs
a gathered batch in one onnxruntime call; a fixed one (``B``) runs it in chunks of ``B`` (the last chunk
zero-padded, its padding dropped from the outputs).

``model.py`` (written by the import)::

    from pathlib import Path
    from fovea.serving.onnx_detector import python_model
    TritonPythonModel = python_model(Path(__file__).parent)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fovea.contracts.tensors import TRITON_DTYPES, Arrays, Contract, TensorSpec, check_config
from fovea.serving.base import RequestError, read_config, run_batched, session_for

__all__ = [
    "PARAMETERS",
    "OnnxDetector",
    "contract_from_config",
    "load",
    "load_from_repository",
    "load_served",
    "python_model",
]

PARAMETERS = {
    "WEIGHTS": "the wrapped ONNX file in 1/ (model.onnx, written by fovea models import-onnx)",
    "DEVICE": "auto | cpu | cuda | tensorrt: onnxruntime execution providers (fovea.serving.base)",
    "THREADS": "onnxruntime intra-op threads; 0 = FOVEA_TORCH_THREADS, else one per core",
}


ONNX_TYPES = {"float32": "tensor(float)", "int32": "tensor(int32)", "int64": "tensor(int64)"}
"""Output dtypes an imported detector may declare (integers: nms-in-graph counts and class ids), as
onnxruntime names them."""


def _spec(entry: Mapping[str, Any]) -> TensorSpec:
    dtype = TRITON_DTYPES.get(str(entry.get("data_type")))
    if dtype is None:
        raise ValueError(f"tensor {entry.get('name')!r} has an unknown data_type {entry.get('data_type')}")
    return TensorSpec(str(entry["name"]), dtype, tuple(int(d) for d in entry.get("dims", [])))


def contract_from_config(model_config: str | Mapping[str, Any]) -> Contract:
    """The contract an imported detector's ``config.pbtxt`` states: one uint8 ``INPUT [H, W, 3]``, float32
    (int32 / int64 where the graph gives counts or class ids) outputs, and :data:`PARAMETERS`.

    Raises:
        ValueError: the config does not describe an imported detector of this kind (re-import it).
    """
    import json

    config = json.loads(model_config) if isinstance(model_config, str) else model_config
    inputs = tuple(_spec(e) for e in config.get("input", []))
    outputs = tuple(_spec(e) for e in config.get("output", []))
    name = str(config.get("name", "imported"))
    if len(inputs) != 1 or inputs[0].dtype != "uint8" or len(inputs[0].dims) != 3 or inputs[0].dims[2] != 3:
        raise ValueError(
            f"{name}: an imported detector takes one uint8 input [H, W, 3], config.pbtxt has "
            f"{[(s.name, s.dtype, list(s.dims)) for s in inputs]}: import it again with fovea models import-onnx"
        )
    if not outputs or any(s.dtype not in ONNX_TYPES for s in outputs):
        raise ValueError(
            f"{name}: an imported detector has float32 (or int32 / int64) outputs, config.pbtxt has {outputs}"
        )
    return Contract(name=name, inputs=inputs, outputs=outputs, parameters=PARAMETERS)


def _compatible(declared: Sequence[object], dims: tuple[int, ...]) -> bool:
    """ONNX per-item dims (ints, or strings/None when symbolic) against the contract's (-1 = any)."""
    return len(declared) == len(dims) and all(
        not isinstance(d, int) or c in (-1, d) for d, c in zip(declared, dims, strict=True)
    )


class OnnxDetector:
    """One onnxruntime session over a wrapped detector; :meth:`execute` answers each request."""

    def __init__(self, session: Any, contract: Contract) -> None:
        problems: list[str] = []
        inputs = session.get_inputs()
        (image,) = contract.inputs
        if [(i.name, i.type) for i in inputs] != [(image.name, "tensor(uint8)")]:
            problems.append(f"inputs {[(i.name, i.type) for i in inputs]} differ from [{image.name} uint8]")
        elif not _compatible(inputs[0].shape[1:], image.dims):
            problems.append(f"input {image.name} has shape {inputs[0].shape}, config.pbtxt [N, {image.dims}]")
        outputs = {o.name: o for o in session.get_outputs()}
        for spec in contract.outputs:
            found = outputs.get(spec.name)
            if found is None:
                problems.append(f"no output {spec.name} (it has {sorted(outputs)})")
            elif found.type != ONNX_TYPES[spec.dtype] or not _compatible(found.shape[1:], spec.dims):
                problems.append(
                    f"output {spec.name} is {found.type} {found.shape}, config.pbtxt {spec.dtype} [N, {spec.dims}]"
                )
        if problems:
            raise ValueError(
                f"{contract.name}: the ONNX file does not match config.pbtxt: {'; '.join(problems)}; "
                "import it again with fovea models import-onnx --force"
            )
        batch = inputs[0].shape[0] if inputs[0].shape else None
        self.fixed_batch: int | None = batch if isinstance(batch, int) and batch > 0 else None
        self.session = session
        self.contract = contract

    def describe(self) -> str:
        batch = f"fixed batch {self.fixed_batch}" if self.fixed_batch else "dynamic batch"
        return f"onnxruntime {', '.join(self.session.get_providers())}, {batch}"

    def _run(self, arrays: Arrays) -> Arrays:
        (name,) = self.contract.input_names
        batch = arrays[name]
        names = list(self.contract.output_names)
        size = batch.shape[0]
        step = self.fixed_batch or size
        chunks: list[list[np.ndarray]] = []
        for start in range(0, size, step):
            chunk = batch[start : start + step]
            real = chunk.shape[0]
            if real < step:
                chunk = np.concatenate([chunk, np.zeros((step - real, *chunk.shape[1:]), chunk.dtype)])
            chunks.append([out[:real] for out in self.session.run(names, {name: chunk})])
        if len(chunks) == 1:
            return dict(zip(names, chunks[0], strict=True))
        return {n: np.concatenate([c[k] for c in chunks]) for k, n in enumerate(names)}

    def execute(self, requests: Sequence[Mapping[str, np.ndarray]]) -> list[Arrays | RequestError]:
        """One entry per request: ``{output name: (n, ...) float32}`` or its ``RequestError``."""
        return run_batched(requests, self.contract.input_dims, self._run, self.contract.input_dtypes)


def load(
    model_dir: Path, params: Mapping[str, str], instance_kind: str, device_id: int | str, contract: Contract
) -> OnnxDetector:
    """Open ``model_dir / WEIGHTS`` with the providers ``DEVICE`` and the instance ask for, checked against
    ``contract``."""
    return OnnxDetector(session_for(model_dir, params, instance_kind, device_id), contract)


def load_served(
    model_dir: Path,
    model_config: str | Mapping[str, Any],
    instance_kind: str = "CPU",
    device_id: int | str = 0,
) -> tuple[Contract, OnnxDetector]:
    """What Triton's ``initialize`` does (also for tests and benchmarks, in-process): the contract from
    ``model_config``, its parameters checked, the session opened on ``model_dir`` (the ``1/`` folder)."""
    contract = contract_from_config(model_config)
    params = check_config(contract, model_config)
    return contract, load(Path(model_dir), params, instance_kind, device_id, contract)


def load_from_repository(model_dir: Path, config_file: str = "config.pbtxt") -> OnnxDetector:
    """An imported model loaded in this process exactly as Triton would: ``model_dir/config_file`` and the
    weights in ``model_dir/1``."""
    model_dir = Path(model_dir)
    return load_served(model_dir / "1", read_config(model_dir / config_file))[1]


def python_model(model_dir: Path) -> type:
    """A ``TritonPythonModel`` serving the imported detector in ``model_dir`` (the ``1/`` folder): the
    platform adapter (:func:`fovea.serving.triton_adapter.python_model`) with the contract from the config."""
    from fovea.serving.triton_adapter import python_model as platform_model

    base: Any = platform_model(__name__, model_dir)

    class TritonPythonModel(base):  # type: ignore[misc, valid-type]
        def initialize(self, args: dict[str, Any]) -> None:
            import triton_python_backend_utils as pb_utils

            self.pb = pb_utils
            self.contract, self.model = load_served(
                model_dir, args["model_config"], args["model_instance_kind"], args["model_instance_device_id"]
            )
            pb_utils.Logger.log_info(f"{self.contract.name} loaded: {self.model.describe()}")

    return TritonPythonModel
