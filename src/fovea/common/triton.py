"""The one way services reach Triton: gRPC ``tritonclient`` with timeouts and retry on UNAVAILABLE.

Triton's status codes keep their meaning through the chain: UNAVAILABLE (server down, model not ready)
-> ``UpstreamUnavailable``; NOT_FOUND (unknown model) -> ``NotFound``; INVALID_ARGUMENT -> ``InvalidArgument``;
DEADLINE_EXCEEDED -> ``DeadlineExceeded``; anything else stays an internal error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

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
from tritonclient.utils import InferenceServerException, np_to_triton_dtype, triton_to_np_dtype

from fovea.common.errors import DeadlineExceeded, FoveaError, InvalidArgument, NotFound, UpstreamUnavailable
from fovea.common.interceptors import INTERNAL_TOKEN_HEADER
from fovea.common.shared_memory import Region, RegionPool, forgotten, is_loopback
from fovea.common.triton_http import TritonHttp, supported

log = logging.getLogger(__name__)
_T = TypeVar("_T")

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


_UNREACHABLE = ("failed to connect", "connection refused", "connect failed", "no route to host")
_LOST = ("socket closed", "connection reset", "goaway", "broken pipe", "stream removed")


def _reason(message: str) -> str:
    """grpc's text of a transport failure said in a few words (it names addresses, which callers never
    see); any other message as it is."""
    low = message.lower()
    if any(s in low for s in _UNREACHABLE):
        return "it cannot be reached (is it running?)"
    if any(s in low for s in _LOST):
        return "the connection to it was lost"
    return message


def translate(exc: InferenceServerException, url: str, model: str | None = None) -> FoveaError:
    """Map a tritonclient error onto the domain error with the same meaning. The message names Triton
    (and the model), never its address: the log has that (debug)."""
    status = str(exc.status() or "")
    what = f"model {model!r} in Triton" if model else "Triton"
    log.debug("Triton at %s answered %s: %s", url, status, exc.message())
    message = f"{what}: {exc.message()}"
    if "UNAVAILABLE" in status:
        return UpstreamUnavailable(f"{what} is unavailable: {_reason(exc.message() or '')}; retry later")
    if "NOT_FOUND" in status or "unknown model" in (exc.message() or ""):
        return NotFound(message)
    if "INVALID_ARGUMENT" in status:
        return InvalidArgument(message)
    if "DEADLINE_EXCEEDED" in status:
        return DeadlineExceeded(f"{what} did not answer in time")
    return FoveaError(message)


class TritonClient:
    """Async client for one Triton server; ``infer`` retries UNAVAILABLE within a time budget.

    With ``http_url`` (Triton's HTTP host:port) inference requests go over HTTP instead
    (:mod:`fovea.common.triton_http`: 1.4-2.8 ms less per call here), large inputs through shared memory
    when the pool is on (below), the rest in the request, unless a tensor is larger than
    ``HTTP_MAX_TENSOR_BYTES`` or of Triton's ``BYTES`` type; everything else (configs, readiness, loading,
    region registration) stays on gRPC.

    With ``shared_memory`` (default: when Triton's URL is a loopback address) tensors travel through system
    shared-memory regions instead of the request's payload (:mod:`fovea.common.shared_memory`): over gRPC
    every input, and every output whose shape the model's config fixes; over HTTP every input of
    ``HTTP_SHARED_MIN_BYTES`` or more (the outputs are small and come in the answer); the rest, or
    everything once Triton refuses a region, in the request.
    """

    OUTPUT_SPECS_TTL_S = 10.0  # a reloaded model may change its outputs: re-read its config this often
    HTTP_SHARED_MIN_BYTES = 256 * 1024
    """Over HTTP, inputs from this size on go through shared memory (when the pool is on): a 519 KB detector
    input 0.28-0.41 ms sooner than in the request, a 67 KB chip or a face detector copy (132-189 KB) no
    sooner (bench/README.md, "Detector inputs through shared memory over HTTP")."""
    HTTP_MAX_TENSOR_BYTES = 8 * 1024 * 1024
    """Larger inputs go through gRPC and shared memory, which copies them once less (not measured at this
    size: the largest measured, a burst of 15 chips, 1 MB, is below it)."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 30.0,
        retry_budget_s: float = 2.0,
        shared_memory: bool | None = None,
        token: bytes | str | None = None,
        http_url: str = "",
    ) -> None:
        """``ValueError`` for an ``http_url`` that is not host:port."""
        self.url = url
        self.http_url = http_url
        self.timeout_s = timeout_s
        self.retry_budget_s = retry_budget_s
        self._client = triton_aio.InferenceServerClient(url, channel_args=CHANNEL_ARGS)
        self._headers = triton_headers(token)
        use_shm = is_loopback(url) if shared_memory is None else shared_memory
        self._pool = RegionPool(self._client, headers=self._headers) if use_shm else None
        self._http = (
            TritonHttp(http_url, headers={TRITON_TOKEN_HEADER: _text(token)} if token else None)
            if http_url
            else None
        )
        self._output_specs: dict[
            str, tuple[float, dict[str, tuple[np.dtype[Any], tuple[int, ...]]], bool]
        ] = {}

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        if self._http is not None:
            await self._http.close()
        await self._client.close()

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        *,
        timeout_s: float | None = None,
        model_version: str = "",
    ) -> dict[str, np.ndarray]:
        """Run ``model`` on named numpy inputs (batch dimension included); return the named outputs.
        ``model_version``: a version number as text; empty = the version Triton's policy picks (the latest)."""
        http = self._http
        if (
            http is not None
            and supported(inputs)
            and all(a.nbytes <= self.HTTP_MAX_TENSOR_BYTES for a in inputs.values())
        ):
            return await self._infer_http(http, model, inputs, outputs, timeout_s, model_version)
        if self._pool is None or not self._pool.enabled:
            result = await self._call(
                model,
                _infer_inputs(inputs),
                [InferRequestedOutput(n) for n in outputs],
                timeout_s,
                model_version,
            )
            return {name: result.as_numpy(name) for name in outputs}
        return await self._infer_shared(self._pool, model, inputs, outputs, timeout_s, model_version)

    async def _infer_http(
        self,
        http: TritonHttp,
        model: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        timeout_s: float | None,
        model_version: str,
    ) -> dict[str, np.ndarray]:
        """One inference over HTTP, inputs of ``HTTP_SHARED_MIN_BYTES`` or more through the shared-memory
        pool when there is one (the request then names their regions), the rest in the request, and every
        input in the request once Triton forgot our regions (it restarted)."""
        pool = self._pool if self._pool is not None and self._pool.enabled else None

        def call(shared: Mapping[str, str]) -> Awaitable[dict[str, np.ndarray]]:
            return self._retrying(
                lambda: http.infer(
                    model,
                    inputs,
                    outputs,
                    timeout_s=timeout_s or self.timeout_s,
                    model_version=model_version,
                    shared=shared,
                ),
                self.http_url,
                model,
                timeout_s,
            )

        if pool is None:
            return await call({})
        with pool.lease() as lease:
            shared: dict[str, str] = {}
            for name, array in inputs.items():
                if array.nbytes >= self.HTTP_SHARED_MIN_BYTES and (region := await lease.take(array.nbytes)):
                    region.write(array)
                    shared[name] = region.name
            try:
                return await call(shared)
            except NotFound as exc:
                if not shared or not forgotten(str(exc)):
                    raise
                pool.forget()  # Triton restarted and lost our registrations: this request sends its tensors
                return await call({})

    async def _call(
        self,
        model: str,
        inputs: list[InferInput],
        outputs: list[InferRequestedOutput],
        timeout_s: float | None,
        model_version: str = "",
    ) -> Any:
        return await self._retrying(
            lambda: self._client.infer(
                model,
                inputs,
                model_version=model_version,
                outputs=outputs,
                client_timeout=timeout_s or self.timeout_s,
                headers=self._headers,
            ),
            self.url,
            model,
            timeout_s,
        )

    async def _retrying(
        self, call: Callable[[], Awaitable[_T]], url: str, model: str, timeout_s: float | None
    ) -> _T:
        """``call()``, its ``InferenceServerException`` translated (:func:`translate`, Triton at ``url``),
        again while that is ``UpstreamUnavailable``, within the retry budget."""
        budget = min(self.retry_budget_s, timeout_s or self.retry_budget_s)
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(UpstreamUnavailable),
            stop=stop_after_delay(budget) | stop_after_attempt(5),
            wait=wait_exponential(multiplier=0.05, max=0.5),
            reraise=True,
        ):
            with attempt:
                try:
                    return await call()
                except InferenceServerException as exc:
                    raise translate(exc, url, model) from exc
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _infer_shared(
        self,
        pool: RegionPool,
        model: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        timeout_s: float | None,
        model_version: str = "",
    ) -> dict[str, np.ndarray]:
        with pool.lease() as lease:
            tensors = []
            for name, array in inputs.items():
                region = None if array.dtype == np.object_ else await lease.take(array.nbytes)
                if region is None:
                    tensors.extend(_infer_inputs({name: array}))
                    continue
                tensor = InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
                tensor.set_shared_memory(region.name, region.write(array))
                tensors.append(tensor)
            batch = next(iter(inputs.values())).shape[0] if inputs else 1
            fixed = await self._fixed_outputs(model, batch)
            requested = []
            into: dict[str, Region] = {}
            for name in outputs:
                wanted = InferRequestedOutput(name)
                if name in fixed and (region := await lease.take(fixed[name])) is not None:
                    into[name] = region
                    wanted.set_shared_memory(region.name, fixed[name])
                requested.append(wanted)
            try:
                result = await self._call(model, tensors, requested, timeout_s, model_version)
            except NotFound as exc:
                if not forgotten(str(exc)):
                    raise
                pool.forget()  # Triton restarted and lost our registrations: this request goes over gRPC
                plain = await self._call(
                    model,
                    _infer_inputs(inputs),
                    [InferRequestedOutput(n) for n in outputs],
                    timeout_s,
                    model_version,
                )
                return {name: plain.as_numpy(name) for name in outputs}
            arrays = {}
            for name in outputs:
                if name in into:
                    meta = result.get_output(name)
                    arrays[name] = into[name].read(triton_to_np_dtype(meta.datatype), list(meta.shape))
                else:
                    arrays[name] = result.as_numpy(name)
            return arrays

    async def _fixed_outputs(self, model: str, batch: int) -> dict[str, int]:
        """Byte sizes of ``model``'s outputs whose shape its config fixes (for a batch of ``batch``)."""
        now = time.monotonic()
        cached = self._output_specs.get(model)
        if cached is None or now - cached[0] > self.OUTPUT_SPECS_TTL_S:
            try:
                config = (
                    await self._client.get_model_config(
                        model, as_json=True, client_timeout=5.0, headers=self._headers
                    )
                )["config"]
            except InferenceServerException as exc:
                raise translate(exc, self.url, model) from exc
            specs = {}
            for out in config.get("output", []):
                dims = tuple(int(d) for d in out.get("dims", []))
                dtype = triton_to_np_dtype(str(out.get("data_type", "")).removeprefix("TYPE_"))
                if dtype is not None and dtype != np.object_ and all(d > 0 for d in dims):
                    specs[out["name"]] = (np.dtype(dtype), dims)
            cached = (now, specs, int(config.get("max_batch_size", 0)) > 0)
            self._output_specs[model] = cached
        _, specs, batched = cached
        return {
            name: int(np.prod((batch, *dims) if batched else dims)) * dtype.itemsize
            for name, (dtype, dims) in specs.items()
        }

    async def is_ready(self) -> bool:
        try:
            return bool(await self._client.is_server_ready(client_timeout=2.0, headers=self._headers))
        except InferenceServerException:
            return False

    async def is_model_ready(self, model: str, version: str = "") -> bool:
        try:
            return bool(
                await self._client.is_model_ready(model, version, client_timeout=2.0, headers=self._headers)
            )
        except InferenceServerException:
            return False

    async def unload_model(self, model: str, timeout_s: float = 60.0) -> None:
        """Unload ``model`` (every version) from Triton (explicit model control)."""
        try:
            await self._client.unload_model(model, client_timeout=timeout_s, headers=self._headers)
        except InferenceServerException as exc:
            raise translate(exc, self.url, model) from exc

    async def repository_index(self) -> list[ModelState]:
        try:
            index = await self._client.get_model_repository_index(
                as_json=True, client_timeout=5.0, headers=self._headers
            )
        except InferenceServerException as exc:
            raise translate(exc, self.url) from exc
        return [
            ModelState(m["name"], m.get("version", ""), m.get("state", ""), m.get("reason", ""))
            for m in index.get("models", [])
        ]


TRITON_TOKEN_HEADER = INTERNAL_TOKEN_HEADER
"""Triton requires it on every API but health when started with a token (``fovea triton``, restricted APIs).
Over HTTP the header has this name; over gRPC Triton expects it prefixed: :data:`TRITON_GRPC_TOKEN_HEADER`."""
TRITON_GRPC_TOKEN_HEADER = f"triton-grpc-protocol-{TRITON_TOKEN_HEADER}"


def triton_headers(token: bytes | str | None) -> dict[str, str] | None:
    """The gRPC metadata every Triton call carries: the internal token, when the stack has one."""
    if not token:
        return None
    return {TRITON_GRPC_TOKEN_HEADER: _text(token)}


def _text(token: bytes | str) -> str:
    return token.decode() if isinstance(token, bytes) else token


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

    def __init__(self, url: str, *, timeout_s: float = 60.0, token: bytes | str | None = None) -> None:
        import tritonclient.grpc as triton_sync

        self.url = url
        self.timeout_s = timeout_s
        self._headers = triton_headers(token)
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
                headers=self._headers,
            )
        except InferenceServerException as exc:
            raise translate(exc, self.url, model) from exc
        return {name: result.as_numpy(name) for name in outputs}

    def load_model(self, model: str, timeout_s: float = 300.0) -> None:
        """Load (or reload) ``model`` from the repositories (Triton runs with explicit model control)."""
        try:
            self._client.load_model(model, client_timeout=timeout_s, headers=self._headers)
        except InferenceServerException as exc:
            raise translate(exc, self.url, model) from exc

    def is_model_ready(self, model: str, version: str = "") -> bool:
        """Whether ``model`` (``version``; empty = any) is loaded and ready; False when Triton does not answer."""
        try:
            return bool(
                self._client.is_model_ready(model, version, client_timeout=2.0, headers=self._headers)
            )
        except InferenceServerException:
            return False

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
        self._client.start_stream(
            callback=lambda result, error: events.put((result, error)), headers=self._headers
        )
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
