"""``fovea serve gateway``: the public gRPC edge (wiring only)."""

from __future__ import annotations

import asyncio
import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fovea.common.logs import setup_logging
from fovea.common.metrics import serve_metrics
from fovea.common.server import create_server, read_internal_token, serve_forever
from fovea.common.triton import TritonClient
from fovea.gateway.auth import Authenticator, usage_path
from fovea.gateway.config import GatewaySettings
from fovea.gateway.models_servicer import ModelsServicer
from fovea.gateway.proxy import Backend, Forwarder, public_backends
from fovea.gateway.tls import check_plaintext_allowed, server_credentials
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


async def run(settings: GatewaySettings) -> None:
    tls = credentials(settings)
    try:
        auth = Authenticator.from_file(settings.api_keys_file)  # fails fast on a bad keys file
        token = read_internal_token(settings.internal_token_file) if settings.internal_token_file else None
    except ValueError as exc:
        raise SystemExit(f"fovea gateway: {exc}") from exc
    if token is None:
        log.warning("no internal token file set: backends that require one will refuse the gateway's calls")
    backends = public_backends(
        settings.detection_addr,
        settings.faces_addr,
        settings.style_addr,
        settings.classify_addr,
        settings.max_message_bytes,
    )
    forwarder = Forwarder(auth, settings.default_timeout_s, internal_token=token)
    triton = TritonClient(settings.triton_url, token=token)
    models_name = models_pb2.DESCRIPTOR.services_by_name["ModelsService"].full_name
    handle = await create_server(
        "gateway",
        f"{settings.host}:{settings.port}",
        [],
        max_message_bytes=settings.max_message_bytes,
        generic_handlers=[
            ModelsServicer(triton, auth).generic_handler(),
            *[forwarder.generic_handler(b) for b in backends],
        ],
        reflected=[models_name, *[b.service.full_name for b in backends]],
        edge=True,
        credentials=tls,
    )
    serve_metrics(settings.host, settings.metrics_port)
    await handle.health.set("", health_pb2.HealthCheckResponse.SERVING)

    async def monitor() -> None:
        # The gateway itself ("") is SERVING while it runs; each public service follows its backend.
        while True:
            checks = [(b.service.full_name, backend_serving(b)) for b in backends]
            checks.append((models_name, triton.is_ready()))
            for name, check in checks:
                ok = await check
                await handle.health.set(name, SERVING if ok else NOT_SERVING)
            await asyncio.sleep(settings.health_interval_s)

    async def close() -> None:
        await triton.close()
        for b in backends:
            await b.channel.close()

    async def watch() -> None:
        usage = settings.key_usage_file or usage_path(settings.api_keys_file)
        await asyncio.gather(monitor(), auth.watch(settings.keys_reload_interval_s, usage))

    log.info("%s on %s:%d", "TLS" if tls else "plaintext", settings.host, handle.port)
    await serve_forever(handle, watch(), on_stop=close)


def main() -> None:
    settings = GatewaySettings()
    setup_logging(settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
