"""The gateway's HTTP port: every public RPC as Connect over HTTP/1.1 (JSON or binary), ``/openapi.json``,
``/docs``, ``/healthz`` and the web console (``/``, ``/console/...``: ``console_site``).

Each call is turned into protobuf bytes and made on the gateway's own gRPC handlers, served a second time on
a private Unix socket (a 0700 folder of its own): the interceptor, the key and scope checks, the limits, the
deadlines and every error message are the code gRPC callers meet, not a copy of it. What comes back is
written in the caller's codec; a gRPC status becomes the Connect error with the HTTP status the Connect spec
maps it to. A bidirectional stream is refused: HTTP/1.1 cannot carry one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import re
import shutil
import socket
import ssl
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fovea.common.errors import clip
from fovea.common.server import Keepalive, ServerHandle, create_server
from fovea.gateway.connect import (
    CONNECT_JSON,
    CONNECT_PROTO,
    EVENT_STREAM,
    JSON,
    PROTO,
    STREAM_TYPES,
    TIMEOUT_HEADER,
    Codec,
    ConnectError,
    decode_request,
    dumps,
    encode_response,
    end_stream,
    envelope,
    invalid,
    metadata_json,
    one_line,
    parse_timeout,
    single_message,
    sse_event,
    stream_codec,
    unary_codec,
)
from fovea.gateway.console_site import console_routes
from fovea.gateway.docs_page import DOCS_HTML
from fovea.gateway.routes import Route, Shape

log = logging.getLogger(__name__)

NOT_METADATA = frozenset(
    {
        "host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "expect",
        "content-type", "content-length", "content-encoding", "accept", "accept-encoding", "accept-language",
        "user-agent", "cookie", "origin", "referer", "connect-protocol-version", TIMEOUT_HEADER,
        "connect-content-encoding", "connect-accept-encoding",
    }
)  # fmt: skip
"""HTTP headers that describe the transport, not the call: not passed on as gRPC metadata."""
_METADATA_KEY = re.compile(r"[0-9a-z_.-]+")
"""What gRPC takes as a metadata key (HTTP allows more: those headers are left out)."""
BODY_SLACK_BYTES = 1024 * 1024
"""Room above 4/3 of the gRPC message limit for a JSON body (base64 makes bytes a third longer)."""


def call_metadata(headers: Mapping[str, str]) -> tuple[tuple[str, str | bytes], ...]:
    """The gRPC metadata of an HTTP call: its headers but the transport's (``NOT_METADATA``, ``grpc-*``),
    names lower-cased; ``-bin`` values base64-decoded; names and values that gRPC cannot carry left out."""
    out: list[tuple[str, str | bytes]] = []
    for name, value in headers.items():
        key = name.lower()
        if key in NOT_METADATA or key.startswith("grpc-") or not _METADATA_KEY.fullmatch(key):
            continue
        if key.endswith("-bin"):
            with contextlib.suppress(binascii.Error, ValueError):
                out.append((key, base64.b64decode(value + "=" * (-len(value) % 4))))
            continue
        if value.isascii() and value.isprintable():
            out.append((key, value))
    return tuple(out)


def _text(metadata: Iterable[tuple[str, str | bytes]] | None) -> list[tuple[str, str]]:
    return [(k, v) for k, v in metadata or () if isinstance(v, str)]


def error_response(
    error: ConnectError, headers: Iterable[tuple[str, str]] = (), status: int = 0
) -> web.Response:
    response = web.Response(
        status=status or error.http_status, body=dumps(error.to_json()), content_type=JSON
    )
    for name, value in headers:
        response.headers.add(name, value)
    return response


def rpc_error(exc: grpc.aio.AioRpcError) -> ConnectError:
    return ConnectError(exc.code(), exc.details() or "")


def keep_alive(request: web.Request, keepalive: Keepalive | None) -> None:
    """TCP keepalive on the connection of a long call (a stream), so a client that vanished without closing
    it is noticed within about ``time_s + timeout_s``: aiohttp then cancels the handler, which cancels the
    call (and the gateway the backend's). Linux socket options; elsewhere the OS's defaults."""
    sock = request.transport.get_extra_info("socket") if request.transport is not None else None
    if keepalive is None or sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    probes = 3
    interval = max(1, int(keepalive.timeout_s / probes))
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, max(1, int(keepalive.time_s)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, probes)
        # data written but never acknowledged (a peer gone while events flow) ends the connection as soon
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(keepalive.timeout_s * 1000))


class ConnectHandler:
    """Serves the routes (path -> route) as Connect calls on ``channel`` (the gateway's own handlers)."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        routes: Mapping[str, Route],
        max_body_bytes: int,
        keepalive: Keepalive | None = None,
    ) -> None:
        self.routes = routes
        self.max_body_bytes = max_body_bytes
        self.keepalive = keepalive
        self._unary = {p: channel.unary_unary(p) for p, r in routes.items() if r.shape is Shape.UNARY}
        self._stream = {
            p: channel.unary_stream(p) for p, r in routes.items() if r.shape is Shape.SERVER_STREAM
        }

    async def handle(self, request: web.Request) -> web.StreamResponse:
        route = self.routes.get(request.path)
        if route is None:
            error = ConnectError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"no method {request.path[:200]!r}: the methods are listed at /openapi.json (and /docs)",
            )
            return error_response(error, status=404)
        try:
            if request.method != "POST":
                raise ConnectError(
                    grpc.StatusCode.UNIMPLEMENTED, f"{route.name} is called with POST, not {request.method}"
                )
            if route.shape is Shape.UNARY:
                return await self._unary_call(request, route)
            if route.shape is Shape.SERVER_STREAM:
                return await self._server_stream(request, route)
            raise ConnectError(grpc.StatusCode.UNIMPLEMENTED, _refusal(route, self.routes))
        except ConnectError as exc:
            if request.method == "POST" and request.content_type.lower() in STREAM_TYPES:
                # a Connect streaming client reads its errors from the end-stream message, under HTTP 200
                return web.Response(body=end_stream(exc, {}), content_type=request.content_type.lower())
            return error_response(exc, status=405 if request.method != "POST" else 0)
        except Exception:  # noqa: BLE001 - a bug here answers as the gRPC side's would, never as a bare 500
            log.exception("unhandled error in HTTP %s", route.path)
            return error_response(
                ConnectError(grpc.StatusCode.INTERNAL, "internal error in the HTTP gateway")
            )

    async def _body(self, request: web.Request) -> bytes:
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise ConnectError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the request body is larger than the gateway's {self.max_body_bytes} bytes "
                "(4/3 of FOVEA_GATEWAY_MAX_MESSAGE_BYTES, for base64, plus 1 MiB)",
            ) from exc
        except web.RequestPayloadError as exc:  # e.g. a Content-Encoding the body is not in
            cause = exc.__cause__ or exc
            raise invalid(f"the request body could not be read: {clip(one_line(cause), 200)}") from exc

    async def _unary_call(self, request: web.Request, route: Route) -> web.StreamResponse:
        codec = unary_codec(request.content_type, route.name)
        timeout = parse_timeout(request.headers.get(TIMEOUT_HEADER))
        data = decode_request(await self._body(request), codec, route.request)
        call = self._unary[route.path](data, metadata=call_metadata(request.headers), timeout=timeout)
        try:
            reply = await call
        except grpc.aio.AioRpcError as exc:
            return error_response(rpc_error(exc), _headers(exc.initial_metadata(), exc.trailing_metadata()))
        finally:
            call.cancel()  # a no-op once the call ended; stops it when the caller left
        body = encode_response(reply, codec, route.response)
        response = web.Response(body=body, content_type=JSON if codec is Codec.JSON else PROTO)
        for name, value in _headers(await call.initial_metadata(), await call.trailing_metadata()):
            response.headers.add(name, value)
        return response

    async def _server_stream(self, request: web.Request, route: Route) -> web.StreamResponse:
        codec, sse = stream_codec(request.content_type, request.headers.get("accept", ""), route.name)
        timeout = parse_timeout(request.headers.get(TIMEOUT_HEADER))
        body = await self._body(request)
        data = decode_request(body if sse else single_message(body), codec, route.request)
        keep_alive(request, self.keepalive)
        call = self._stream[route.path](data, metadata=call_metadata(request.headers), timeout=timeout)
        response = web.StreamResponse()
        response.content_type = (
            EVENT_STREAM if sse else (CONNECT_JSON if codec is Codec.JSON else CONNECT_PROTO)
        )
        response.headers["Cache-Control"] = "no-store"
        error: ConnectError | None = None
        trailers: Any = ()
        try:
            for name, value in _text(await call.initial_metadata()):
                response.headers.add(name, value)
            await response.prepare(request)
            async for reply in call:
                chunk = encode_response(reply, codec, route.response)
                await response.write(sse_event(chunk) if sse else envelope(chunk))
            trailers = await call.trailing_metadata()
        except grpc.aio.AioRpcError as exc:
            error, trailers = rpc_error(exc), exc.trailing_metadata()
        except ConnectError as exc:
            error = exc
        except ConnectionResetError:  # the caller left: nothing to tell it
            return response
        finally:
            call.cancel()  # a no-op once the call ended; stops the backend stream when the caller left
        if not response.prepared:
            await response.prepare(request)
        if sse:
            last = sse_event(dumps(error.to_json()), "error") if error else sse_event(b"{}", "end")
        else:
            last = end_stream(error, metadata_json(trailers or ()))
        with contextlib.suppress(ConnectionResetError):
            await response.write(last)
            await response.write_eof()
        return response


def _headers(initial: Any, trailing: Any) -> list[tuple[str, str]]:
    """Response headers of a unary call: initial metadata as it is, trailing as ``trailer-<name>``."""
    return _text(initial) + [(f"trailer-{k}", v) for k, v in _text(trailing)]


def _refusal(route: Route, routes: Mapping[str, Route]) -> str:
    """Why a client or bidirectional stream is not served here, and what to call instead."""
    kind = "bidirectional" if route.shape is Shape.BIDI_STREAM else "client"
    instead = [
        r.method.name
        for r in routes.values()
        if r.service is route.service
        and r.shape is Shape.UNARY
        and r.method.input_type is route.method.input_type
        and r.method.output_type is route.method.output_type
    ]
    also = f", or call {instead[0]} once per message" if instead else ""
    return f"{route.name} is a {kind} stream, which HTTP/1.1 cannot carry: call it over gRPC{also}"


@dataclass
class HttpGateway:
    """The running HTTP port and what it calls: the gateway's handlers on a private socket."""

    runner: web.AppRunner
    port: int
    bridge: ServerHandle
    channel: grpc.aio.Channel
    socket_dir: Path

    async def close(self, grace_s: float = 5.0) -> None:
        """Stop listening, give calls in flight ``grace_s`` (the bridge then ends open streams, whose
        handlers finish with an error event), and remove the socket."""
        await asyncio.gather(self.runner.cleanup(), self.bridge.server.stop(grace_s))
        await self.channel.close()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def ssl_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """TLS for the HTTP port from the gRPC port's PEM files; with ``client_ca`` a client certificate signed
    by it is required (mTLS), as on gRPC. ``ValueError`` naming the file at fault."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
        if client_ca is not None:
            context.load_verify_locations(client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"TLS files {cert}, {key}{', ' + str(client_ca) if client_ca else ''}: {exc}"
        ) from exc
    return context


def create_app(
    channel: grpc.aio.Channel,
    routes: Mapping[str, Route],
    openapi: Mapping[str, Any],
    max_message_bytes: int,
    keepalive: Keepalive | None = None,
) -> web.Application:
    """The aiohttp application: ``/healthz``, ``/openapi.json``, ``/docs``, the console (``/``, ``/console/``)
    and every route (POST); ``keepalive``: the TCP keepalive of streams' connections."""
    max_body = max_message_bytes * 4 // 3 + BODY_SLACK_BYTES
    connect = ConnectHandler(channel, routes, max_body, keepalive)
    health = health_pb2_grpc.HealthStub(channel)
    spec = dumps(openapi)

    async def healthz(request: web.Request) -> web.Response:
        service = request.query.get("service", "")
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.aio.AioRpcError as exc:
            status = "SERVICE_UNKNOWN" if exc.code() == grpc.StatusCode.NOT_FOUND else "NOT_SERVING"
        ok = status == "SERVING"
        return web.Response(status=200 if ok else 503, body=dumps({"status": status}), content_type=JSON)

    async def openapi_json(_request: web.Request) -> web.Response:
        return web.Response(body=spec, content_type=JSON)

    async def docs(_request: web.Request) -> web.Response:
        return web.Response(text=DOCS_HTML, content_type="text/html")

    app = web.Application(client_max_size=max_body)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/docs", docs)
    app.router.add_routes(console_routes())
    app.router.add_route("*", "/{tail:.*}", connect.handle)
    return app


async def start_http(
    host: str,
    port: int,
    *,
    handlers: Sequence[grpc.GenericRpcHandler],
    routes: Mapping[str, Route],
    openapi: Mapping[str, Any],
    max_message_bytes: int,
    tls: ssl.SSLContext | None = None,
    grace_s: float = 5.0,
    keepalive: Keepalive | None = None,
) -> HttpGateway:
    """Serve ``handlers`` (the gateway's) on a private Unix socket and the HTTP port on ``host:port`` (0 = any
    free port) in front of them; ``grace_s``: how long a stop waits for calls in flight; ``keepalive``: how a
    vanished client of a stream is noticed. ``OSError`` when the port cannot be bound."""
    socket_dir = Path(tempfile.mkdtemp(prefix="fovea-gateway-"))  # 0700: only this user reaches the socket
    bridge = await create_server(
        "gateway",
        f"unix:{socket_dir / 'grpc.sock'}",
        [],
        max_message_bytes=max_message_bytes,
        generic_handlers=handlers,
        edge=True,
    )
    options = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]
    channel = grpc.aio.insecure_channel(f"unix:{socket_dir / 'grpc.sock'}", options=options)
    app = create_app(channel, routes, openapi, max_message_bytes, keepalive)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=grace_s + 1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        await bridge.server.stop(None)
        await channel.close()
        shutil.rmtree(socket_dir, ignore_errors=True)
        raise
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("HTTP (%s) on %s:%d", "TLS" if tls else "plaintext", host, bound)
    return HttpGateway(runner, int(bound), bridge, channel, socket_dir)
