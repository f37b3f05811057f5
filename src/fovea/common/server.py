"""Building and running a Fovea ``grpc.aio`` server: interceptors, health, reflection, SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from fovea.common.interceptors import InternalTokenInterceptor, ServiceInterceptor

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[bool]]

REPLICA_HEALTH = "fovea.replica"
"""The health name a gateway balancing over replicas watches (``fovea.gateway.upstream``): SERVING from the
first time the replica was ready until it starts to stop. Unlike ``""`` (ready now: every dependency
answers), it does not follow a dependency's outage: calls then reach the replica and are answered with an
error naming the part that failed (a door: DENY), instead of the gateway's "no replica"."""


@dataclass
class Registration:
    """One servicer: ``add`` is the generated ``add_XServicer_to_server``; ``name`` its full service name."""

    add: Callable[[Any, grpc.aio.Server], None]
    servicer: Any
    name: str


@dataclass
class ServerHandle:
    server: grpc.aio.Server
    port: int
    health: Any
    service_names: list[str] = field(default_factory=list)

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self.service_names]:
            await self.health.set(name, status)
        if serving:  # latched: only stop() takes the replica out of a gateway's rotation
            await self.health.set(REPLICA_HEALTH, status)

    async def set_stopping(self) -> None:
        """Out of every gateway's rotation, and not ready: the server is about to drain and stop."""
        await self.set_serving(False)
        await self.health.set(REPLICA_HEALTH, health_pb2.HealthCheckResponse.NOT_SERVING)


@dataclass(frozen=True)
class Keepalive:
    """The server's own pings of its clients: every ``time_s``, a connection closed (its calls cancelled) when
    one is not answered within ``timeout_s``, so a client that vanished without closing its connection
    (power off, cable, NAT timeout) holds nothing for longer than about ``time_s + timeout_s``."""

    time_s: float
    timeout_s: float


def server_options(max_message_bytes: int, keepalive: Keepalive | None = None) -> list[tuple[str, int]]:
    """Message limits, and the keepalive pings of a gateway watching its replicas (every 5 s, idle or not)
    accepted rather than answered with GOAWAY ``too_many_pings``; with ``keepalive``, the server pings its
    clients too."""
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 4_000),
        ("grpc.http2.max_ping_strikes", 0),
        # Close each connection after 5 minutes (its calls may run on for an hour, the longest stream a
        # gateway allows): a client then connects again and resolves the name again, so a gateway balancing
        # over a headless Service's pods learns of new ones (gRPC re-resolves only when a connection ends).
        ("grpc.max_connection_age_ms", 300_000),
        ("grpc.max_connection_age_grace_ms", 3_600_000),
    ]
    if keepalive is not None:
        options += [
            ("grpc.keepalive_time_ms", int(keepalive.time_s * 1000)),
            ("grpc.keepalive_timeout_ms", int(keepalive.timeout_s * 1000)),
            ("grpc.http2.max_pings_without_data", 0),
        ]
    return options


def internal_token(path: Path | None) -> bytes | None:
    """:func:`read_internal_token` of ``path``, or None when no file is configured."""
    return read_internal_token(path) if path is not None else None


def read_internal_token(path: Path) -> bytes:
    """The shared secret in ``path`` (written by `fovea up`, or a mounted compose/Kubernetes secret);
    raises ``ValueError`` naming the problem."""
    try:
        token = path.read_bytes().strip()
    except OSError as exc:
        raise ValueError(f"internal token file {path}: {exc.strerror or exc}") from exc
    if len(token) < 16 or not all(33 <= b < 127 for b in token):
        raise ValueError(
            f"internal token file {path} must hold 16 or more printable ASCII characters (`fovea up` makes one)"
        )
    return token


async def create_server(
    metrics_name: str,
    address: str,
    registrations: Sequence[Registration],
    *,
    max_message_bytes: int,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    generic_handlers: Sequence[grpc.GenericRpcHandler] = (),
    reflected: Sequence[str] = (),
    edge: bool = False,
    internal_token_file: Path | None = None,
    credentials: grpc.ServerCredentials | None = None,
    keepalive: Keepalive | None = None,
) -> ServerHandle:
    """A started-but-not-serving server bound to ``address`` ("host:port", port 0 = any free port).

    ``edge``: the server takes calls from outside (the gateway) and makes its own request ids.
    ``internal_token_file``: only callers that send that secret (the gateway) are answered, health checks
    excepted; without it (a service run by hand) anyone is, and a warning says so.
    ``credentials``: TLS (the gateway), else plaintext. ``keepalive``: ping the clients (the gateway)."""
    guard: list[grpc.aio.ServerInterceptor] = []
    if internal_token_file is not None:
        guard.append(InternalTokenInterceptor(read_internal_token(internal_token_file)))
    elif registrations:
        log.warning("no internal token file set: the %s service answers any caller", metrics_name)
    server = grpc.aio.server(
        interceptors=[ServiceInterceptor(metrics_name, edge=edge), *guard, *interceptors],
        options=server_options(max_message_bytes, keepalive),
    )
    for reg in registrations:
        reg.add(reg.servicer, server)
    if generic_handlers:
        server.add_generic_rpc_handlers(tuple(generic_handlers))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [reg.name for reg in registrations]
    reflection.enable_server_reflection(
        [
            *names,
            *reflected,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise RuntimeError(f"could not bind the {metrics_name} gRPC server to {address}")
    handle = ServerHandle(server=server, port=port, health=health_servicer, service_names=names)
    await handle.set_stopping()  # not ready, and not in a gateway's rotation, until the first readiness
    await server.start()
    return handle


async def watch_readiness(handle: ServerHandle, check: ReadinessCheck, interval_s: float = 1.0) -> None:
    """Keep the health status in step with ``check`` (dependencies answering) until cancelled."""
    last: bool | None = None
    while True:
        try:
            ready = await check()
        except Exception:  # noqa: BLE001 - a failing check means not ready
            log.debug("readiness check failed", exc_info=True)
            ready = False
        if ready != last:
            log.info("health -> %s", "SERVING" if ready else "NOT_SERVING")
            await handle.set_serving(ready)
            last = ready
        await asyncio.sleep(interval_s)


async def serve_forever(
    handle: ServerHandle,
    monitor: Awaitable[None],
    *,
    grace_s: float = 5.0,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT, then drain in-flight calls for ``grace_s`` seconds.

    ``monitor`` keeps the health status current while serving, e.g. ``watch_readiness(handle, check)``.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.ensure_future(monitor)
    log.info("serving on port %d", handle.port)
    await stop.wait()
    log.info("stopping (grace %.1fs)", grace_s)
    watcher.cancel()
    await handle.set_stopping()
    await handle.server.stop(grace_s)
    if on_stop is not None:
        await on_stop()
