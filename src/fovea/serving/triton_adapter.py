"""The one ``TritonPythonModel`` behind every (non-decoupled) python-backend ``model.py``.

A served model is a module of :mod:`fovea.serving` with ``CONTRACT`` (a :class:`~fovea.contracts.tensors.Contract`)
and ``load(model_dir, params, instance_kind, device_id) -> Served``. ``model.py`` is two lines::

    from pathlib import Path
    from fovea.serving.triton_adapter import python_model
    TritonPythonModel = python_model("fovea.serving.nanodet", Path(__file__).parent)

At load the adapter checks ``config.pbtxt`` against the contract (a mismatch fails the load with every
difference listed); at run time it moves ``pb_utils`` tensors in and out and answers each request on its
own: a malformed request gets its own error, the others in the batch still succeed.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from fovea.contracts.tensors import Arrays, Contract, check_config
from fovea.serving.base import RequestError, read_config


class Served(Protocol):
    def execute(self, requests: Sequence[Mapping[str, np.ndarray]]) -> list[Arrays | RequestError]:
        """One entry per request, in order: its outputs (every contract output) or its ``RequestError``."""
        ...

    def describe(self) -> str:
        """One line for the log: runtime, providers, device."""
        ...


class Streaming(Protocol):
    def stream(
        self, inputs: Mapping[str, np.ndarray], send: Callable[[Arrays], None], cancelled: Callable[[], bool]
    ) -> Arrays | None:
        """Run one request of a decoupled model: ``send`` each intermediate response's outputs, return the
        final response's outputs (None when the request was cancelled); ``RequestError`` for a bad request."""
        ...

    def describe(self) -> str: ...


def load_served(
    module_name: str,
    model_dir: Path,
    model_config: str | Mapping[str, Any],
    instance_kind: str = "CPU",
    device_id: int | str = 0,
) -> tuple[Contract, Served]:
    """Import the model's module, check ``model_config`` against its contract and load it (also used by tests
    and benchmarks, which run the exact code Triton runs without a server)."""
    module = importlib.import_module(module_name)
    contract: Contract = module.CONTRACT
    params = check_config(contract, model_config)
    return contract, module.load(Path(model_dir), params, instance_kind, device_id)


def load_from_repository(module_name: str, model_dir: Path, config_file: str = "config.pbtxt") -> Served:
    """Load a served model in this process exactly as Triton would: ``model_dir/config_file`` is checked
    against the module's contract, weights come from ``model_dir/1``."""
    model_dir = Path(model_dir)
    return load_served(module_name, model_dir / "1", read_config(model_dir / config_file))[1]


def python_model(module_name: str, model_dir: Path) -> type:
    """A ``TritonPythonModel`` class serving ``module_name`` with the files in ``model_dir``."""

    class TritonPythonModel:
        def initialize(self, args: dict[str, Any]) -> None:
            import triton_python_backend_utils as pb_utils

            self.pb = pb_utils
            self.contract, self.model = load_served(
                module_name,
                model_dir,
                args["model_config"],
                args["model_instance_kind"],
                args["model_instance_device_id"],
            )
            pb_utils.Logger.log_info(f"{self.contract.name} loaded: {self.model.describe()}")

        def _inputs(self, request: Any) -> dict[str, np.ndarray]:
            arrays = {}
            for spec in self.contract.inputs:
                tensor = self.pb.get_input_tensor_by_name(request, spec.name)
                if tensor is not None:
                    arrays[spec.name] = tensor.as_numpy()
            return arrays

        def execute(self, requests: list[Any]) -> list[Any]:
            pb = self.pb
            responses = []
            for result in self.model.execute([self._inputs(r) for r in requests]):
                if isinstance(result, RequestError):
                    responses.append(pb.InferenceResponse(error=pb.TritonError(str(result))))
                else:
                    tensors = [pb.Tensor(name, result[name]) for name in self.contract.output_names]
                    responses.append(pb.InferenceResponse(output_tensors=tensors))
            return responses

    return TritonPythonModel


def python_decoupled_model(module_name: str, model_dir: Path) -> type:
    """A decoupled ``TritonPythonModel`` (``model_transaction_policy { decoupled: true }``) serving a module
    whose ``load`` returns a :class:`Streaming`: every request gets its intermediate responses, then a final
    one (empty when cancelled), or one error response."""

    class TritonPythonModel:
        def initialize(self, args: dict[str, Any]) -> None:
            import triton_python_backend_utils as pb_utils

            self.pb = pb_utils
            self.contract, model = load_served(
                module_name,
                model_dir,
                args["model_config"],
                args["model_instance_kind"],
                args["model_instance_device_id"],
            )
            self.model = cast(Streaming, model)
            pb_utils.Logger.log_info(f"{self.contract.name} loaded: {self.model.describe()}")

        def _response(self, arrays: Arrays) -> Any:
            names = self.contract.output_names
            return self.pb.InferenceResponse(output_tensors=[self.pb.Tensor(n, arrays[n]) for n in names])

        def _send(self, sender: Any, arrays: Arrays) -> None:
            sender.send(self._response(arrays))

        def execute(self, requests: list[Any]) -> None:
            pb = self.pb
            final = pb.TRITONSERVER_RESPONSE_COMPLETE_FINAL
            for request in requests:
                sender = request.get_response_sender()
                inputs = {}
                for spec in self.contract.inputs:
                    tensor = pb.get_input_tensor_by_name(request, spec.name)
                    if tensor is not None:
                        inputs[spec.name] = tensor.as_numpy()
                send = functools.partial(self._send, sender)
                try:
                    last = self.model.stream(inputs, send, request.is_cancelled)
                except RequestError as exc:
                    sender.send(pb.InferenceResponse(error=pb.TritonError(str(exc))), flags=final)
                    continue
                if last is None:
                    sender.send(flags=final)
                else:
                    sender.send(self._response(last), flags=final)
            return None

    return TritonPythonModel
