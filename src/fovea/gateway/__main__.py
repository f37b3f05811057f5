"""``fovea serve gateway``: the public gRPC edge and its HTTP/JSON port (wiring only)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fovea.common.logs import setup_logging
from fovea.common.metrics import serve_metrics
from fovea.common.server import Keepalive, create_server, read_internal_token, serve_forever
from fovea.common.triton import TritonClient
from fovea.gateway.auth import METHOD_SCOPES, Authenticator, usage_path
from fovea.gateway.config import GatewaySettings
from fovea.gateway.models_servicer import ModelsServicer
from fovea.gateway.openapi import build_openapi
from fovea.gateway.proto_comments import find_proto_root, load_comments
from fovea.gateway.proxy import Backend, Forwarder, public_backends
from fovea.gateway.routes import route_table
from fovea.gateway.streams import OpenCalls
from fovea.gateway.tls import check_plaintext_allowed, server_credentials
from fovea.gateway.web import HttpGateway, ssl_context, start_http
from fovea.models.v1 import models_pb2

log = logging.getLogger("fovea.gateway")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def backend_serving(backend: Backend) -> bool:
    stub = health_pb2_grpc.HealthStub(backend.channel)
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
    except grpc.aio.AioRpcError:
        return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def credentials(settings: GatewaySettings) -> grpc.ServerCredentials | None:
    """TLS credentials when configured; refuses plaintext on a non-loopback host unless allowed."""
    try:
        check_plaintext_allowed(settings.host, settings.tls_cert_file is not None, settings.allow_plaintext)
        if settings.tls_cert_file is None or settings.tls_key_file is None:
            return None
        return server_credentials(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)
    except ValueError as exc:
        raise SystemExit(f"fovea gateway: {exc}") from exc


async def serve_http(
    settings: GatewaySettings, handlers: list[grpc.GenericRpcHandler], backends: list[Backend]
) -> HttpGateway:
    """The HTTP port in front of ``handlers`` (the gRPC server's), its routes from the same descriptors."""
    routes = route_table(
        [models_pb2.DESCRIPTOR.services_by_name["ModelsService"], *[b.service for b in backends]]
    )
    comments = await asyncio.to_thread(lambda: load_comments(find_proto_root(Path(__file__).resolve())))
    spec = build_openapi(routes, METHOD_SCOPES, comments)
    try:
        tls = None
        if settings.tls_cert_file is not None and settings.tls_key_file is not None:
            tls = ssl_context(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)
        return await start_http(
            settings.host,
            settings.http_port,
            handlers=handlers,
            routes=routes,
            openapi=spec,
            max_message_bytes=settings.max_message_bytes,
            tls=tls,
            keepalive=Keepalive(settings.keepalive_time_s, settings.keepalive_timeout_s),
        )
    except (OSError, ValueError) as exc:
        raise SystemExit(f"fovea gateway: HTTP port {settings.host}:{settings.http_port}: {exc}") from exc


async def run(settings: GatewaySettings) -> None:
    tls = credentials(settings)
    try:
        auth = Authenticator.from_file(settings.api_keys_file)  # fails fast on a bad keys file
        token = read_internal_token(settings.internal_token_file) if settings.internal_token_file else None
        backends = public_backends(
            settings.detection_addr,
            settings.faces_addr,
            settings.style_addr,
            settings.classify_addr,
            settings.max_message_bytes,
        )
    except ValueError as exc:
        raise SystemExit(f"fovea gateway: {exc}") from exc
    if token is None:
        log.warning("no internal token file set: backends that require one will refuse the gateway's calls")
    calls = OpenCalls(auth, settings.max_streams_per_key)
    forwarder = Forwarder(
        auth,
        settings.default_timeout_s,
        internal_token=token,
        max_unary_s=settings.max_unary_s,
        max_stream_s=settings.max_stream_s,
        calls=calls,
    )
    keepalive = Keepalive(settings.keepalive_time_s, settings.keepalive_timeout_s)
    triton = TritonClient(settings.triton_url, token=token)
    models_name = models_pb2.DESCRIPTOR.services_by_name["ModelsService"].full_name
    handlers = [
        ModelsServicer(triton, auth).generic_handler(),
        *[forwarder.generic_handler(b) for b in backends],
    ]
    handle = await create_server(
        "gateway",
        f"{settings.host}:{settings.port}",
        [],
        max_message_bytes=settings.max_message_bytes,
        generic_handlers=handlers,
        reflected=[models_name, *[b.service.full_name for b in backends]],
        edge=True,
        credentials=tls,
        keepalive=keepalive,
    )
    # HTTP calls the same handlers, served again on a private socket (fovea.gateway.web): its health follows.
    http = await serve_http(settings, handlers, backends) if settings.http_port else None
    healths = [handle.health, *([http.bridge.health] if http else [])]
    serve_metrics(settings.host, settings.metrics_port)
    for health in healths:
        await health.set("", SERVING)

    async def monitor() -> None:
        # The gateway itself ("") is SERVING while it runs; each public service follows its backend.
        while True:
            checks = [(b.service.full_name, backend_serving(b)) for b in backends]
            checks.append((models_name, triton.is_ready()))
            for name, check in checks:
                ok = await check
                for health in healths:
                    await health.set(name, SERVING if ok else NOT_SERVING)
            await asyncio.sleep(settings.health_interval_s)

    async def close() -> None:
        if http is not None:  # served through the gRPC grace; what is still open gets one more second
            await http.close(grace_s=1.0)
        await triton.close()
        for b in backends:
            await b.channel.close()

    async def watch() -> None:
        usage = settings.key_usage_file or usage_path(settings.api_keys_file)
        await asyncio.gather(
            monitor(),
            auth.watch(settings.keys_reload_interval_s, usage),
            calls.watch(settings.keys_reload_interval_s),  # ends the calls of revoked and expired keys
        )

    log.info("%s on %s:%d", "TLS" if tls else "plaintext", settings.host, handle.port)
    await serve_forever(handle, watch(), on_stop=close)


def main() -> None:
    settings = GatewaySettings()
    setup_logging(settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
