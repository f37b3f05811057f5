"""The one server interceptor every Fovea gRPC server installs.

It sets the request id for logs and downstream calls: at the edge (the gateway) always a new one, the
caller's ``x-request-id`` being kept apart as the client request id; behind the edge the ids the gateway
passes on (``x-request-id``, ``x-client-request-id``). It translates domain errors into gRPC statuses by
lookup of their ``code`` (anything else is INTERNAL and logged with its traceback), and records request
counts and latency. What a caller reads of a domain error
is bounded and free of object reprs and internal addresses (``public_message``); the log keeps the rest.
"""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from fovea.common.errors import FoveaError, public_message
from fovea.common.logs import (
    CLIENT_REQUEST_ID_HEADER,
    REQUEST_ID_HEADER,
    client_request_id_var,
    request_id_var,
)
from fovea.common.metrics import rpc_metrics

log = logging.getLogger(__name__)

UNMEASURED = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})
OPEN_METHODS = UNMEASURED
"""Methods an internal service answers without the internal token (readiness probes, `fovea status`)."""
INTERNAL_TOKEN_HEADER = "x-fovea-internal-token"
"""Metadata carrying the secret the gateway shares with the services behind it."""


MAX_REQUEST_ID_CHARS = 128


def _header(metadata: Any, name: str) -> str:
    """A text header's value, cut to ``MAX_REQUEST_ID_CHARS`` and without unprintable characters."""
    for key, value in metadata or ():
        if key == name and isinstance(value, str) and value:
            return "".join(c for c in value[:MAX_REQUEST_ID_CHARS] if c.isprintable())
    return ""


def request_ids_from(metadata: Any, *, edge: bool) -> tuple[str, str]:
    """``(request id, client request id)`` of a call. At the edge the request id is always made here (a
    caller cannot choose the id that logs and audit records carry) and the caller's ``x-request-id`` is the
    client request id; behind the edge both come from the gateway's metadata (a new id when absent)."""
    if edge:
        return uuid.uuid4().hex, _header(metadata, REQUEST_ID_HEADER)
    return (
        _header(metadata, REQUEST_ID_HEADER) or uuid.uuid4().hex,
        _header(metadata, CLIENT_REQUEST_ID_HEADER),
    )


async def _translate(exc: BaseException, context: grpc.aio.ServicerContext) -> None:
    """Abort the call with the status that ``exc`` stands for."""
    if isinstance(exc, FoveaError):
        message = public_message(str(exc))
        if message != str(exc):  # the full text (addresses, object reprs) stays in the log
            log.warning("%s for the caller as %r: %s", exc.code.name, message, exc)
        await context.abort(exc.code, message)
    log.exception("unhandled error", exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {request_id_var.get()})")


def _code_of(exc: BaseException | None, context: grpc.aio.ServicerContext) -> str:
    if exc is None:
        code = context.code()
        return code.name if isinstance(code, grpc.StatusCode) else "OK"
    if isinstance(exc, FoveaError):
        return exc.code.name
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "INTERNAL"


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, service: str, *, edge: bool = False) -> None:
        """``edge``: this server takes calls from outside (the gateway); see :func:`request_ids_from`."""
        self._metrics = rpc_metrics(service)
        self._edge = edge

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        full_method = handler_call_details.method
        if handler is None or full_method in UNMEASURED:
            return handler
        method = full_method.rsplit("/", 1)[-1]
        request_id, client_request_id = request_ids_from(
            handler_call_details.invocation_metadata, edge=self._edge
        )
        initial = ((REQUEST_ID_HEADER, request_id),) + (
            ((CLIENT_REQUEST_ID_HEADER, client_request_id),) if client_request_id else ()
        )
        metrics = self._metrics

        def finish(start: float, exc: BaseException | None, context: grpc.aio.ServicerContext) -> None:
            metrics.requests.labels(method, _code_of(exc, context)).inc()
            metrics.latency.labels(method).observe(time.perf_counter() - start)

        def wrap_unary(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
                request_id_var.set(request_id)
                client_request_id_var.set(client_request_id)
                await context.send_initial_metadata(initial)
                start, failure = time.perf_counter(), None
                try:
                    return await fn(request, context)
                except grpc.aio.AbortError as exc:
                    failure = exc
                    raise
                except Exception as exc:  # noqa: BLE001 - the one translation point
                    failure = exc
                    await _translate(exc, context)
                finally:
                    finish(start, failure, context)

            return call

        def wrap_stream(fn: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
            async def call(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                request_id_var.set(request_id)
                client_request_id_var.set(client_request_id)
                await context.send_initial_metadata(initial)
                start, failure = time.perf_counter(), None
                try:
                    async for item in fn(request, context):
                        yield item
                except grpc.aio.AbortError as exc:
                    failure = exc
                    raise
                except Exception as exc:  # noqa: BLE001 - the one translation point
                    failure = exc
                    await _translate(exc, context)
                finally:
                    finish(start, failure, context)

            return call

        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(wrap_unary(handler.unary_unary), **kwargs)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(wrap_unary(handler.stream_unary), **kwargs)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(wrap_stream(handler.unary_stream), **kwargs)
        return grpc.stream_stream_rpc_method_handler(wrap_stream(handler.stream_stream), **kwargs)


def _refusal(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` that answers UNAUTHENTICATED without reading the request
    (no deserializer: the bytes of an unauthenticated caller are never parsed)."""

    async def refuse_unary(_request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def refuse_stream(_request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield b""  # pragma: no cover - abort raises; makes this an async generator

    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(refuse_unary)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(refuse_unary)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(refuse_stream)
    return grpc.stream_stream_rpc_method_handler(refuse_stream)


class InternalTokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuses (UNAUTHENTICATED) every call but health checks that lacks ``token`` in
    ``x-fovea-internal-token`` metadata; compared in constant time."""

    def __init__(self, token: bytes) -> None:
        if len(token) < 16:
            raise ValueError("the internal token must be at least 16 bytes")
        self._token = token

    def allows(self, metadata: Any) -> bool:
        presented = b""
        for key, value in metadata or ():
            if key == INTERNAL_TOKEN_HEADER:
                presented = value if isinstance(value, bytes) else str(value).encode()
        return hmac.compare_digest(presented, self._token)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method in OPEN_METHODS:
            return handler
        if self.allows(handler_call_details.invocation_metadata):
            return handler
        log.warning(
            "refused %s: no valid internal token (only the gateway may call)", handler_call_details.method
        )
        return _refusal(handler, "this service accepts calls from the Fovea gateway only: call the gateway")
