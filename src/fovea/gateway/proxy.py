"""The gateway's request path: authorise, check, then forward the call unchanged to the backend service.

Every request message is parsed as its method's request type and checked (``validation.py``) before it is
forwarded; one that fails is answered INVALID_ARGUMENT here, and a client stream with one bad message ends
with INVALID_ARGUMENT (the call to the backend is cancelled, nothing is left running). Requests and
responses travel as serialized bytes (no re-encoding). The caller's deadline is passed on (or
``default_timeout_s``), never beyond ``max_unary_s`` / ``max_stream_s``, with a request id; the backend's
status and message come back as they are (bounded, without internal addresses: the backend names the part
that failed, Triton or Redis), except a backend the gateway cannot reach, which becomes UNAVAILABLE naming
that backend but not its address (the log has it, with the request id).

Every call is registered under its key (``streams.py``): a key holds at most ``max_streams_per_key``
streams; a call whose key is revoked, expires or loses the scope ends (UNAUTHENTICATED, PERMISSION_DENIED)
and nothing the backend sends after that is passed on; and the backend call is cancelled as soon as the
caller's call ends, however it ends (the caller cancelled, reset the stream, lost its connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from fovea.classify.v1 import classify_pb2
from fovea.common.caller import scopes_header
from fovea.common.errors import FoveaError, Relayed
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
from fovea.gateway.auth import Authenticator
from fovea.gateway.config import MAX_STREAM_S, MAX_STREAMS_PER_KEY, MAX_UNARY_S
from fovea.gateway.streams import OpenCall, OpenCalls
from fovea.gateway.validation import DEFAULT_LIMITS, FieldLimits, parse_request
from fovea.style.v1 import style_pb2

log = logging.getLogger(__name__)

DRAIN_S = 0.5
"""How long a client stream that sent a bad message is read on before the call ends (see ``pump``)."""
_caller_scopes: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "caller_scopes", default=frozenset()
)
"""The scopes of the current call's API key, set by ``_open`` (the call's own task and context)."""


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
        *,
        max_unary_s: float = MAX_UNARY_S,
        max_stream_s: float = MAX_STREAM_S,
        calls: OpenCalls | None = None,
    ) -> None:
        """``internal_token``: the secret the services behind the gateway require (``fovea up`` makes it).
        ``max_unary_s``, ``max_stream_s``: the longest deadline a call is passed on with, whatever the caller
        asked; ``calls``: the open calls, by key (default: at most ``MAX_STREAMS_PER_KEY`` streams a key)."""
        self.auth = auth
        self.default_timeout_s = default_timeout_s
        self.limits = limits
        self.max_unary_s = max_unary_s
        self.max_stream_s = max_stream_s
        self.calls = calls if calls is not None else OpenCalls(auth, MAX_STREAMS_PER_KEY)
        self._internal: tuple[tuple[str, str], ...] = (
            ((INTERNAL_TOKEN_HEADER, internal_token.decode()),) if internal_token else ()
        )

    def _open(self, method: str, context: grpc.aio.ServicerContext, *, stream: bool) -> OpenCall:
        """The caller's key, checked for ``method`` (``AuthError`` otherwise), and the call registered under
        it (``OpenCalls.open``: a stream beyond the key's limit is RESOURCE_EXHAUSTED)."""
        key = self.auth.authorize(method, context.invocation_metadata())
        _caller_scopes.set(key.scopes)
        return self.calls.open(key, method, stream=stream, context=context)

    def _call_args(self, context: grpc.aio.ServicerContext, *, stream: bool) -> tuple[dict[str, Any], str]:
        """Deadline and metadata of the backend call, built here: nothing the caller sent is forwarded but
        the request itself; the backend learns the request ids and the scopes of the caller's key. The
        deadline is the caller's (or ``default_timeout_s``), never beyond the gateway's cap; returns with them
        what the caller is told when the cap is what ends the call ('' when the caller's deadline comes
        first)."""
        remaining = context.time_remaining()
        wanted = self.default_timeout_s if remaining is None else max(remaining, 0.001)
        cap = self.max_stream_s if stream else self.max_unary_s
        metadata = (
            (REQUEST_ID_HEADER, request_id_var.get()),
            (CLIENT_REQUEST_ID_HEADER, client_request_id_var.get()),
            scopes_header(_caller_scopes.get()),
        )
        capped = ""
        if cap < wanted:
            what, setting = ("a stream", "MAX_STREAM_S") if stream else ("a call", "MAX_UNARY_S")
            capped = (
                f"the gateway ends {what} after {cap:g} s, whatever deadline the caller set "
                f"(FOVEA_GATEWAY_{setting}): call again (a watch: from the last id it gave)"
            )
        return {"timeout": min(wanted, cap), "metadata": metadata + self._internal}, capped

    @staticmethod
    def _relayed(backend: Backend, exc: grpc.aio.AioRpcError, capped: str) -> Relayed:
        """The backend call's failure for the caller: the backend's own status and message (it names the
        part that failed: Triton, Redis) when it answered; a backend the gateway could not reach named as
        such. The interceptor bounds the message and keeps internal addresses out of it."""
        details = exc.details() or ""
        code = exc.code()
        answered = any(k == REQUEST_ID_HEADER for k, _ in exc.initial_metadata() or ())
        if code == grpc.StatusCode.UNAVAILABLE and not answered:
            log.warning("%s service (%s) is unreachable: %s", backend.name, backend.address, details)
            details = f"the {backend.name} service is unavailable (the gateway cannot reach it); retry later"
        elif code == grpc.StatusCode.UNAVAILABLE and backend.name not in details:
            details = f"{backend.name} service: {details}"
        elif code == grpc.StatusCode.DEADLINE_EXCEEDED and capped and "deadline exceeded" in details.lower():
            details = capped  # the gateway's own deadline, not the caller's
        return Relayed(code, details)

    def handler(self, backend: Backend, method: MethodDescriptor) -> Any:
        path = f"/{backend.service.full_name}/{method.name}"
        channel = backend.channel
        request_type = message_factory.GetMessageClass(method.input_type)
        limits = self.limits
        calls = self.calls

        def check(request: bytes) -> None:
            parse_request(request, request_type, limits)

        def ended(opened: OpenCall, exc: BaseException) -> NoReturn:
            """Re-raise ``exc``, or the reason the gateway ended the call when it did (the backend call's
            cancellation is then how the handler learnt of it)."""
            if opened.ended is not None:
                raise opened.ended from None
            raise exc

        async def unary_unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            opened = self._open(path, context, stream=False)
            check(request)
            args, capped = self._call_args(context, stream=False)
            call = channel.unary_unary(path)(request, **args)
            opened.attach(call)
            try:
                return await call
            except grpc.aio.AioRpcError as exc:
                raise self._relayed(backend, exc, capped) from None
            except asyncio.CancelledError as exc:
                ended(opened, exc)
            finally:
                opened.finish()

        async def unary_stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
            opened = self._open(path, context, stream=True)
            capped = ""
            try:
                check(request)
                args, capped = self._call_args(context, stream=True)
                call = channel.unary_stream(path)(request, **args)
                opened.attach(call)
                async for response in call:
                    calls.check(opened)  # nothing made after a revocation is passed on
                    yield response
            except grpc.aio.AioRpcError as exc:
                raise self._relayed(backend, exc, capped) from None
            except asyncio.CancelledError as exc:
                ended(opened, exc)
            finally:
                opened.finish()

        async def pump(requests: AsyncIterator[bytes], call: Any, opened: OpenCall) -> None:
            """Check each of the caller's messages (and its key) and pass it on; a bad one cancels the
            backend call.

            After a bad message the rest the caller has already sent is read (for at most ``DRAIN_S``):
            a status sent while the client is still writing can reach it as grpc's own INTERNAL "Internal
            error from Core" instead of our INVALID_ARGUMENT."""
            try:
                async for request in requests:
                    check(request)
                    calls.check(opened)
                    await call.write(request)
                await call.done_writing()
            except FoveaError:
                with contextlib.suppress(TimeoutError, grpc.RpcError):
                    async with asyncio.timeout(DRAIN_S):
                        async for _ in requests:
                            pass
                call.cancel()
                raise

        async def client_stream(
            requests: AsyncIterator[bytes],
            context: grpc.aio.ServicerContext,
            responses: Callable[[Any], Any],
            opened: OpenCall,
        ) -> AsyncIterator[bytes]:
            """The backend call fed by ``pump``; yields its responses. Nothing outlives the call."""
            factory = channel.stream_stream if method.server_streaming else channel.stream_unary
            args, capped = self._call_args(context, stream=True)
            call = factory(path)(**args)
            opened.attach(call)
            feeding = asyncio.create_task(pump(requests, call, opened))
            try:
                async for response in responses(call):
                    calls.check(opened)
                    yield response
                await feeding  # a bad message after the backend's last answer still fails the call
            except (grpc.aio.AioRpcError, asyncio.CancelledError) as exc:
                if feeding.done() and not feeding.cancelled():
                    error = feeding.exception()
                    if isinstance(error, FoveaError):
                        raise error from None
                if isinstance(exc, grpc.aio.AioRpcError):
                    raise self._relayed(backend, exc, capped) from None
                ended(opened, exc)
            finally:
                call.cancel()
                feeding.cancel()
                await asyncio.gather(feeding, return_exceptions=True)
                opened.finish()

        async def stream_responses(call: Any) -> AsyncIterator[bytes]:
            async for response in call:
                yield response

        async def unary_response(call: Any) -> AsyncIterator[bytes]:
            yield await call

        async def stream_unary(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
            opened = self._open(path, context, stream=True)
            result = b""
            async for response in client_stream(requests, context, unary_response, opened):
                result = response
            return result

        async def stream_stream(
            requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
        ) -> AsyncIterator[bytes]:
            opened = self._open(path, context, stream=True)
            async for response in client_stream(requests, context, stream_responses, opened):
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
