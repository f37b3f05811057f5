"""The gateway's channels to the services: one channel per service over every replica, round robin, replicas
that stop answering their health check ejected, idempotent calls retried on another replica.

An address setting (``FOVEA_GATEWAY_FACES_ADDR`` and its siblings) names the replicas of one service:
- ``host:port``: one replica, or a DNS name whose A records are the replicas (a Kubernetes headless Service:
  ``faces-headless.fovea.svc:50062``); every address the name resolves to gets calls;
- ``10.0.0.11:50062,10.0.0.12:50062``: the replicas by IP address (gRPC's ``ipv4:`` / ``ipv6:`` targets);
- any other gRPC target (``dns:///...``, ``unix:...``) as it is.

Spreading and ejection are gRPC's own: the ``round_robin`` policy, and client-side health checking
(``healthCheckConfig``) of each replica's ``fovea.replica`` status (``fovea.common.server.REPLICA_HEALTH``):
a replica still starting (models and galleries not loaded yet) or stopping (draining after SIGTERM) gets no
new calls. A dependency's outage does not take a replica out: its calls are answered with an error naming
Triton or Redis (a door: DENY), which an idempotent call retries on the next replica. A replica whose host
vanished is noticed by HTTP/2 keepalive within ``KEEPALIVE_TIME_MS + KEEPALIVE_TIMEOUT_MS`` and skipped.

Retries: a call of a method whose proto declares ``option idempotency_level = NO_SIDE_EFFECTS`` (reads,
Detect, Verify, Classify, watches) that fails UNAVAILABLE is tried again, on the next replica, up to
``RETRY_ATTEMPTS`` times in all within its deadline. Methods with side effects (Enroll, VerifyAccess's
audit and single-use challenge, SubmitJob, deletes) are not retried by the gateway: the caller decides.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from fovea.common.server import REPLICA_HEALTH

RETRY_ATTEMPTS = 3
KEEPALIVE_TIME_MS = 5_000
KEEPALIVE_TIMEOUT_MS = 2_000

CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.enable_retries", 1),
]
"""Options of every channel to a service (reconnect quickly, notice a vanished host, allow retries)."""


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def target(address: str) -> str:
    """The gRPC target of an address setting (see the module docstring).

    Raises:
        ValueError: a list of several addresses that are not all IP literals of one family, or an empty one.
    """
    address = address.strip()
    if not address:
        raise ValueError("a service address is empty")
    if "," not in address:
        return address
    items = [a.strip() for a in address.split(",") if a.strip()]
    hosts = [a.rsplit(":", 1)[0] for a in items]
    if not all(":" in a and _is_ip(h) for a, h in zip(items, hosts, strict=True)):
        raise ValueError(
            f"{address!r}: a list of replicas must be IP:port addresses; for host names use one DNS name "
            "that resolves to every replica (a Kubernetes headless Service)"
        )
    families = {ipaddress.ip_address(h.strip("[]")).version for h in hosts}
    if len(families) != 1:
        raise ValueError(f"{address!r}: mix of IPv4 and IPv6 addresses")
    return ("ipv4:" if families == {4} else "ipv6:") + ",".join(items)


def idempotent(method: MethodDescriptor) -> bool:
    """Whether ``method``'s proto declares it free of side effects (``idempotency_level``)."""
    options = method.GetOptions()
    return options.idempotency_level in (
        descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
        descriptor_pb2.MethodOptions.IDEMPOTENT,
    )


def service_config(service: ServiceDescriptor) -> str:
    """The channel's service config: round robin over the replicas, health-checked, retries of the
    idempotent methods on UNAVAILABLE (JSON, gRPC's ``grpc.service_config`` channel argument)."""
    retried = [
        {"service": service.full_name, "method": m.name}
        for m in service.methods
        if idempotent(m) and not m.client_streaming
    ]
    config: dict[str, Any] = {
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": REPLICA_HEALTH},
    }
    if retried:
        config["methodConfig"] = [
            {
                "name": retried,
                "retryPolicy": {
                    "maxAttempts": RETRY_ATTEMPTS,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    return json.dumps(config)


def channel_options(service: ServiceDescriptor, max_message_bytes: int) -> list[tuple[str, Any]]:
    """Every option of the channel to ``service``'s replicas."""
    return [
        *CHANNEL_OPTIONS,
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.service_config", service_config(service)),
    ]


__all__ = [
    "CHANNEL_OPTIONS",
    "KEEPALIVE_TIMEOUT_MS",
    "KEEPALIVE_TIME_MS",
    "RETRY_ATTEMPTS",
    "channel_options",
    "idempotent",
    "service_config",
    "target",
]
