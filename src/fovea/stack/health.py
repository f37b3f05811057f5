"""Health probes of the local stack: gRPC health, Triton readiness, Prometheus endpoints."""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fovea.stack.config import LOOPBACK, StackSettings


@dataclass(frozen=True)
class Probe:
    name: str
    ok: bool
    detail: str


def grpc_health(address: str, service: str = "", timeout_s: float = 1.0) -> Probe:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError as exc:
            return Probe(address, False, f"{exc.code().name}: {exc.details()}")
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return Probe(address, status == "SERVING", status)


def tcp_open(host: str, port: int, detail: str, timeout_s: float = 1.0) -> Probe:
    """Something accepts connections on ``host:port`` (a TLS gateway, which may want a client certificate
    that the stack does not have)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return Probe(f"{host}:{port}", True, detail)
    except OSError as exc:
        return Probe(f"{host}:{port}", False, str(exc))


def http_ok(url: str, timeout_s: float = 1.0) -> Probe:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return Probe(url, resp.status == 200, f"HTTP {resp.status}")
    except urllib.error.HTTPError as exc:
        return Probe(url, False, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        return Probe(url, False, str(getattr(exc, "reason", exc)))


def probes(settings: StackSettings) -> dict[str, list[Probe]]:
    """Per process: its health endpoint and its metrics endpoint."""
    h = settings.host
    return {
        "triton": [
            http_ok(f"http://{LOOPBACK}:{settings.triton_http_port}/v2/health/ready"),
            http_ok(f"http://{LOOPBACK}:{settings.triton_metrics_port}/metrics"),
        ],
        "detection": [
            grpc_health(f"{h}:{settings.detection_port}"),
            http_ok(f"http://{h}:{settings.detection_metrics_port}/metrics"),
        ],
        "faces": [
            grpc_health(f"{h}:{settings.faces_port}"),
            http_ok(f"http://{h}:{settings.faces_metrics_port}/metrics"),
        ],
        "style": [
            grpc_health(f"{h}:{settings.style_port}"),
            http_ok(f"http://{h}:{settings.style_metrics_port}/metrics"),
        ],
        "classify": [
            grpc_health(f"{h}:{settings.classify_port}"),
            http_ok(f"http://{h}:{settings.classify_metrics_port}/metrics"),
        ],
        "worker": [http_ok(f"http://{h}:{settings.worker_metrics_port}/metrics")],
        "classify-worker": [http_ok(f"http://{h}:{settings.classify_worker_metrics_port}/metrics")],
        "gateway": [
            tcp_open(h, settings.gateway_port, "listening (TLS)")
            if os.environ.get("FOVEA_GATEWAY_TLS_CERT_FILE")
            else grpc_health(f"{h}:{settings.gateway_port}"),
            http_ok(f"http://{h}:{settings.gateway_metrics_port}/metrics"),
            *(
                [http_ok(f"http://{h}:{settings.gateway_http_port}/healthz")]
                if settings.gateway_http_port and not os.environ.get("FOVEA_GATEWAY_TLS_CERT_FILE")
                else []
            ),
        ],
    }
