"""The gateway's request path: authorise, check, then forward the call unchanged to the backend service.

Every request message is parsed as its method's request type and checked (``validation.py``) before it is
forwarded; one that fails is answered INVALID_ARGUMENT here, and a client stream with one bad message ends
with INVALID_ARGUMENT (the call to the backend is cancelled, nothing is left running). Requests and
responses travel as serialized bytes (no re-encoding). The caller's deadline is passed on (or
``default_timeout_s``), with a request id; the backend's status and message come back as they are (bounded,
without internal addresses), except a backend that cannot be reached, which becomes UNAVAILABLE naming
that backend but not its address (the log has it, with the request id).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from fovea.classify.v1 import classify_pb2
from fovea.common.caller import scopes_header
from fovea.common.errors import InvalidArgument, public_message
from fovea.common.interceptors import INTERNAL_TOKEN_HEADER
from fovea.common.logs import (
    CLIENT_REQUEST_ID_HEADER,
    REQUEST_ID_HEADER,
    client_request_id_var,
    request_id_var,
)
from fovea.detection.v1 import detection_pb2
from fovea.faces.v1 import faces_pb2
from fovea.gateway import upstream
from fovea.gateway.auth import Authenticator, AuthError
from fovea.gateway.validation import DEFAULT_LIMITS, FieldLimits, parse_request
from fovea.style.v1 import style_pb2

log = logging.getLogger(__name__)

DRAIN_S = 0.5
"""How long a client stream that sent a bad message is read on before the call ends (see ``pump``)."""
_CONNECT_FAILURES = ("failed to connect", "connection refused", "socket closed", "connect failed")
_caller_scopes: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "caller_scopes", default=frozenset()
)
"""The scopes of the current call's API key, set by ``_authorize`` (the call's own task and context)."""


@dataclass
class Backend:
    name: str
    address: str
    service: ServiceDescriptor
    channel: grpc.aio.Channel


def public_backends(
    detection: str, faces: str, style: str, classify: str, max_message_bytes: int
) -> list[Backend]:
    """One channel per service, over all its replicas (``fovea.gateway.upstream``); ``ValueError`` naming a bad
    address setting."""
    specs = [
        ("detection", detection, detection_pb2.DESCRIPTOR.services_by_name["DetectionService"]),
        ("faces", faces, faces_pb2.DESCRIPTOR.services_by_name["FacesService"]),
        ("style", style, style_pb2.DESCRIPTOR.services_by_name["StyleService"]),
        ("classify", classify, classify_pb2.DESCRIPTOR.services_by_name["ClassifyService"]),
    ]
    return [
        Backend(
            n,
            a,
            s,
            grpc.aio.insecure_channel(
                upstream.target(a), options=upstream.channel_options(s, max_message_bytes)
            ),
        )
        for n, a, s in specs
    ]


class Forwarder:
    def __init__(
        self,
        auth: Authenticator,
        default_timeout_s: float,
        limits: FieldLimits = DEFAULT_LIMITS,
        internal_token: bytes | None = None,
    ) -> None:
        """``internal_token``: the secret the services behind the gateway require (``fovea up`` makes it)."""
        self.auth = auth
        self.default_timeout_s = default_timeout_s
        self.limits = limits
        self._internal: tuple[tuple[str, str], ...] = (
            ((INTERNAL_TOKEN_HEADER, internal_token.decode()),) if internal_token else ()
        )

    async def _authorize(self, method: str, context: grpc.aio.ServicerContext) -> None:
        try:
            key = self.auth.authorize(method, context.invocation_metadata())
        except AuthError as exc:
            await context.abort(exc.code, str(exc))
        _caller_scopes.set(key.scopes)

    def _call_args(self, context: grpc.aio.ServicerContext) -> dict[str, Any]:
        """Deadline and metadata of the backend call, built here: nothing the caller sent is forwarded but
        the request itself; the backend learns the request ids and the scopes of the caller's key."""
        remaining = context.time_remaining()
        timeout = self.default_timeout_s if remaining is None else max(remaining, 0.001)
        metadata = (
            (REQUEST_ID_HEADER, request_id_var.get()),
            (CLIENT_REQUEST_ID_HEADER, client_request_id_var.get()),
            scopes_header(_caller_scopes.get()),
        )
        return {"timeout": timeout, "metadata": metadata + self._internal}

    async def _fail(
        self, backend: Backend, exc: grpc.aio.AioRpcError, context: grpc.aio.ServicerContext
    ) -> None:
        details = exc.details() or ""
        code = exc.code()
        if code == grpc.StatusCode.UNAVAILABLE and any(s in details.lower() for s in _CONNECT_FAILURES):
            log.warning("%s service (%s) is unreachable: %s", backend.name, backend.address, details)
            details = f"{backend.name} service is unavailable; retry later"
        elif code == grpc.StatusCode.UNAVAILABLE and backend.name not in details:
            details = f"{backend.name} service: {details}"
        message = public_message(details)
        if message != details:
            log.warning(
                "%s from the %s service, for the caller as %r: %s", code.name, backend.name, message, details
            )
        await context.abort(code, message)

    def handler(self, backend: Backend, method: MethodDescriptor) -> Any:
        path = f"/{backend.service.full_name}/{method.name}"
        channel = backend.channel
        request_type = message_factory.GetMessageClass(method.input_type)
        limits = self.limits

        def check(request: bytes) -> None:
            parse_request(request, request_type, limits)

        async def refuse(exc: InvalidArgument, context: grpc.aio.ServicerContext) -> None:
            await context.abort(exc.code, public_message(str(exc)))

        async def unary_unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            await self._authorize(path, context)
            try:
                check(request)
            except InvalidArgument as exc:
                await refuse(exc, context)
            try:
                return await channel.unary_unary(path)(request, **self._call_args(context))
            except grpc.aio.AioRpcError as exc:
                await self._fail(backend, exc, context)
                raise

        async def unary_stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
            await self._authorize(path, context)
            try:
                check(request)
            except InvalidArgument as exc:
                await refuse(exc, context)
            try:
                async for response in channel.unary_stream(path)(request, **self._call_args(context)):
                    yield response
            except grpc.aio.AioRpcError as exc:
                await self._fail(backend, exc, context)

        async def pump(requests: AsyncIterator[bytes], call: Any) -> None:
            """Check each of the caller's messages and pass it on; a bad one cancels the backend call.

            After a bad message the rest the caller has already sent is read (for at most ``DRAIN_S``):
            a status sent while the client is still writing can reach it as grpc's own INTERNAL "Internal
            error from Core" instead of our INVALID_ARGUMENT."""
            try:
                async for request in requests:
                    check(request)
                    await call.write(request)
                await call.done_writing()
            except InvalidArgument:
                with contextlib.suppress(TimeoutError, grpc.RpcError):
                    async with asyncio.timeout(DRAIN_S):
                        async for _ in requests:
                            pass
                call.cancel()
                raise

        async def client_stream(
            requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext, responses: Callable[[Any], Any]
        ) -> AsyncIterator[bytes]:
            """The backend call fed by ``pump``; yields its responses. Nothing outlives the call."""
            factory = channel.stream_stream if method.server_streaming else channel.stream_unary
            call = factory(path)(**self._call_args(context))
            feeding = asyncio.create_task(pump(requests, call))
            try:
                async for response in responses(call):
                    yield response
                await feeding  # a bad message after the backend's last answer still fails the call
            except (grpc.aio.AioRpcError, asyncio.CancelledError) as exc:
                if (
                    feeding.done()
                    and not feeding.cancelled()
                    and isinstance(feeding.exception(), InvalidArgument)
                ):
                    error = feeding.exception()
                    assert isinstance(error, InvalidArgument)  # for mypy
                    await refuse(error, context)
                if isinstance(exc, grpc.aio.AioRpcError):
                    await self._fail(backend, exc, context)
                raise
            except InvalidArgument as exc:
                await refuse(exc, context)
            finally:
                call.cancel()
                feeding.cancel()
                await asyncio.gather(feeding, return_exceptions=True)

        async def stream_responses(call: Any) -> AsyncIterator[bytes]:
            async for response in call:
                yield response

        async def unary_response(call: Any) -> AsyncIterator[bytes]:
            yield await call

        async def stream_unary(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
            await self._authorize(path, context)
            result = b""
            async for response in client_stream(requests, context, unary_response):
                result = response
            return result

        async def stream_stream(
            requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
        ) -> AsyncIterator[bytes]:
            await self._authorize(path, context)
            async for response in client_stream(requests, context, stream_responses):
                yield response

        factories: dict[tuple[bool, bool], tuple[Callable[..., Any], Any]] = {
            (False, False): (grpc.unary_unary_rpc_method_handler, unary_unary),
            (True, False): (grpc.stream_unary_rpc_method_handler, stream_unary),
            (False, True): (grpc.unary_stream_rpc_method_handler, unary_stream),
            (True, True): (grpc.stream_stream_rpc_method_handler, stream_stream),
        }
        make, behaviour = factories[(method.client_streaming, method.server_streaming)]
        return make(behaviour)  # no (de)serializers: bytes in, bytes out

    def generic_handler(self, backend: Backend) -> grpc.GenericRpcHandler:
        handlers = {m.name: self.handler(backend, m) for m in backend.service.methods}
        return grpc.method_handlers_generic_handler(backend.service.full_name, handlers)
