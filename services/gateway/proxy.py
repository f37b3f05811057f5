"""The gateway's request path: authorise, then forward the call unchanged to the backend service.

Requests and responses travel as serialized bytes (no re-encoding). The caller's deadline is passed on
(or ``default_timeout_s``), with a request id; the backend's status and message come back as they are,
except a backend that cannot be reached, which becomes UNAVAILABLE naming that backend.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from fovea.common.logs import REQUEST_ID_HEADER, request_id_var
from fovea.detection.v1 import detection_pb2
from fovea.faces.v1 import faces_pb2
from fovea.gateway.auth import Authenticator, AuthError
from fovea.style.v1 import style_pb2

log = logging.getLogger(__name__)

CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
_CONNECT_FAILURES = ("failed to connect", "connection refused", "socket closed", "connect failed")


@dataclass
class Backend:
    name: str
    address: str
    service: ServiceDescriptor
    channel: grpc.aio.Channel


def public_backends(detection: str, faces: str, style: str, max_message_bytes: int) -> list[Backend]:
    options = [
        *CHANNEL_OPTIONS,
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]
    specs = [
        ("detection", detection, detection_pb2.DESCRIPTOR.services_by_name["DetectionService"]),
        ("faces", faces, faces_pb2.DESCRIPTOR.services_by_name["FacesService"]),
        ("style", style, style_pb2.DESCRIPTOR.services_by_name["StyleService"]),
    ]
    return [Backend(n, a, s, grpc.aio.insecure_channel(a, options=options)) for n, a, s in specs]


class Forwarder:
    def __init__(self, auth: Authenticator, default_timeout_s: float) -> None:
        self.auth = auth
        self.default_timeout_s = default_timeout_s

    async def _authorize(self, method: str, context: grpc.aio.ServicerContext) -> None:
        try:
            self.auth.authorize(method, context.invocation_metadata())
        except AuthError as exc:
            await context.abort(exc.code, str(exc))

    def _call_args(self, context: grpc.aio.ServicerContext) -> dict[str, Any]:
        remaining = context.time_remaining()
        timeout = self.default_timeout_s if remaining is None else max(remaining, 0.001)
        return {"timeout": timeout, "metadata": ((REQUEST_ID_HEADER, request_id_var.get()),)}

    async def _fail(
        self, backend: Backend, exc: grpc.aio.AioRpcError, context: grpc.aio.ServicerContext
    ) -> None:
        details = exc.details() or ""
        if exc.code() == grpc.StatusCode.UNAVAILABLE and any(s in details.lower() for s in _CONNECT_FAILURES):
            details = f"{backend.name} service is unavailable ({backend.address}): {details}"
        elif exc.code() == grpc.StatusCode.UNAVAILABLE and backend.name not in details:
            details = f"{backend.name} service: {details}"
        await context.abort(exc.code(), details)

    def handler(
        self, backend: Backend, method_name: str, client_streaming: bool, server_streaming: bool
    ) -> Any:
        path = f"/{backend.service.full_name}/{method_name}"
        channel = backend.channel

        async def unary_unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            await self._authorize(path, context)
            try:
                return await channel.unary_unary(path)(request, **self._call_args(context))
            except grpc.aio.AioRpcError as exc:
                await self._fail(backend, exc, context)
                raise

        async def stream_unary(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
            await self._authorize(path, context)
            try:
                return await channel.stream_unary(path)(requests, **self._call_args(context))
            except grpc.aio.AioRpcError as exc:
                await self._fail(backend, exc, context)
                raise

        async def unary_stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
            await self._authorize(path, context)
            try:
                async for response in channel.unary_stream(path)(request, **self._call_args(context)):
                    yield response
            except grpc.aio.AioRpcError as exc:
                await self._fail(backend, exc, context)

        async def stream_stream(
            requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
        ) -> AsyncIterator[bytes]:
            await self._authorize(path, context)
            try:
                async for response in channel.stream_stream(path)(requests, **self._call_args(context)):
                    yield response
            except grpc.aio.AioRpcError as exc:
                await self._fail(backend, exc, context)

        factories: dict[tuple[bool, bool], tuple[Callable[..., Any], Any]] = {
            (False, False): (grpc.unary_unary_rpc_method_handler, unary_unary),
            (True, False): (grpc.stream_unary_rpc_method_handler, stream_unary),
            (False, True): (grpc.unary_stream_rpc_method_handler, unary_stream),
            (True, True): (grpc.stream_stream_rpc_method_handler, stream_stream),
        }
        make, behaviour = factories[(client_streaming, server_streaming)]
        return make(behaviour)  # no (de)serializers: bytes in, bytes out

    def generic_handler(self, backend: Backend) -> grpc.GenericRpcHandler:
        handlers = {
            m.name: self.handler(backend, m.name, m.client_streaming, m.server_streaming)
            for m in backend.service.methods
        }
        return grpc.method_handlers_generic_handler(backend.service.full_name, handlers)
