"""The one way services reach Triton: gRPC ``tritonclient`` with timeouts and retry on UNAVAILABLE.

Triton's status codes keep their meaning through the chain: UNAVAILABLE (server down, model not ready)
-> ``UpstreamUnavailable``; NOT_FOUND (unknown model) -> ``NotFound``; INVALID_ARGUMENT -> ``InvalidArgument``;
DEADLINE_EXCEEDED -> ``DeadlineExceeded``; anything else stays an internal error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tritonclient.grpc.aio as triton_aio
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from fovea.common.errors import (
    DeadlineExceeded,
    FoveaError,
    InvalidArgument,
    NotFound,
    UpstreamUnavailable,
)

log = logging.getLogger(__name__)

# Fast reconnects so a restarted Triton is used again within about a second.
CHANNEL_ARGS = [
    ("grpc.max_send_message_length", 256 * 1024 * 1024),
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


@dataclass(frozen=True)
class ModelState:
    name: str
    version: str
    state: str
    reason: str


def translate(exc: InferenceServerException, url: str, model: str | None = None) -> FoveaError:
    """Map a tritonclient error onto the domain error with the same meaning."""
    status = str(exc.status() or "")
    what = f"model {model!r} in Triton at {url}" if model else f"Triton at {url}"
    message = f"{what}: {exc.message()}"
    if "UNAVAILABLE" in status:
        return UpstreamUnavailable(f"{what} is unavailable: {exc.message()}")
    if "NOT_FOUND" in status or "unknown model" in (exc.message() or ""):
        return NotFound(message)
    if "INVALID_ARGUMENT" in status:
        return InvalidArgument(message)
    if "DEADLINE_EXCEEDED" in status:
        return DeadlineExceeded(f"{what} did not answer in time")
    return FoveaError(message)


class TritonClient:
    """Async client for one Triton server; ``infer`` retries UNAVAILABLE within a time budget."""

    def __init__(self, url: str, *, timeout_s: float = 30.0, retry_budget_s: float = 2.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retry_budget_s = retry_budget_s
        self._client = triton_aio.InferenceServerClient(url, channel_args=CHANNEL_ARGS)

    async def close(self) -> None:
        await self._client.close()

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        *,
        timeout_s: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Run ``model`` on named numpy inputs (batch dimension included); return the named outputs."""
        requested = [InferRequestedOutput(name) for name in outputs]
        infer_inputs = _infer_inputs(inputs)
        budget = min(self.retry_budget_s, timeout_s or self.retry_budget_s)
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(UpstreamUnavailable),
            stop=stop_after_delay(budget) | stop_after_attempt(5),
            wait=wait_exponential(multiplier=0.05, max=0.5),
            reraise=True,
        ):
            with attempt:
                try:
                    result = await self._client.infer(
                        model,
                        infer_inputs,
                        outputs=requested,
                        client_timeout=timeout_s or self.timeout_s,
                    )
                except InferenceServerException as exc:
                    raise translate(exc, self.url, model) from exc
        return {name: result.as_numpy(name) for name in outputs}

    async def is_ready(self) -> bool:
        try:
            return bool(await self._client.is_server_ready(client_timeout=2.0))
        except InferenceServerException:
            return False

    async def is_model_ready(self, model: str) -> bool:
        try:
            return bool(await self._client.is_model_ready(model, client_timeout=2.0))
        except InferenceServerException:
            return False

    async def repository_index(self) -> list[ModelState]:
        try:
            index = await self._client.get_model_repository_index(as_json=True, client_timeout=5.0)
        except InferenceServerException as exc:
            raise translate(exc, self.url) from exc
        return [
            ModelState(m["name"], m.get("version", ""), m.get("state", ""), m.get("reason", ""))
            for m in index.get("models", [])
        ]


def _infer_inputs(inputs: Mapping[str, np.ndarray]) -> list[InferInput]:
    tensors = []
    for name, array in inputs.items():
        dtype = "BYTES" if array.dtype == np.object_ else np_to_triton_dtype(array.dtype)
        tensor = InferInput(name, list(array.shape), dtype)
        tensor.set_data_from_numpy(np.ascontiguousarray(array) if array.dtype != np.object_ else array)
        tensors.append(tensor)
    return tensors


class SyncTritonClient:
    """Blocking client for worker threads (Celery): plain inference and decoupled-model streams."""

    def __init__(self, url: str, *, timeout_s: float = 60.0) -> None:
        import tritonclient.grpc as triton_sync

        self.url = url
        self.timeout_s = timeout_s
        self._module = triton_sync
        self._client = triton_sync.InferenceServerClient(url, channel_args=CHANNEL_ARGS)

    def close(self) -> None:
        self._client.close()

    def infer(
        self, model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        try:
            result = self._client.infer(
                model,
                _infer_inputs(inputs),
                outputs=[InferRequestedOutput(n) for n in outputs],
                client_timeout=self.timeout_s,
            )
        except InferenceServerException as exc:
            raise translate(exc, self.url, model) from exc
        return {name: result.as_numpy(name) for name in outputs}

    def load_model(self, model: str, timeout_s: float = 300.0) -> None:
        """Load (or reload) ``model`` from the repositories (Triton runs with explicit model control)."""
        try:
            self._client.load_model(model, client_timeout=timeout_s)
        except InferenceServerException as exc:
            raise translate(exc, self.url, model) from exc

    def stream(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        on_response: Callable[[dict[str, np.ndarray]], bool],
        *,
        idle_timeout_s: float = 120.0,
    ) -> None:
        """Run one request on a decoupled model; ``on_response`` gets each response's outputs and returns
        False to cancel (the request is cancelled in Triton). Returns after the final response."""
        import queue

        events: queue.Queue[tuple[Any, Any]] = queue.Queue()
        self._client.start_stream(callback=lambda result, error: events.put((result, error)))
        try:
            self._client.async_stream_infer(
                model,
                _infer_inputs(inputs),
                outputs=[InferRequestedOutput(n) for n in outputs],
                enable_empty_final_response=True,
            )
            while True:
                try:
                    result, error = events.get(timeout=idle_timeout_s)
                except queue.Empty as exc:
                    raise DeadlineExceeded(f"model {model!r} sent nothing for {idle_timeout_s:.0f}s") from exc
                if error is not None:
                    raise translate(error, self.url, model)
                response = result.get_response()
                final = response.parameters.get("triton_final_response")
                if response.outputs:
                    keep_going = on_response({name: result.as_numpy(name) for name in outputs})
                    if not keep_going:
                        self._client.stop_stream(cancel_requests=True)
                        return
                if final is not None and final.bool_param:
                    return
        finally:
            self._client.stop_stream()
