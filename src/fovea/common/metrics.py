"""Prometheus metrics shared by every gRPC service: one set per service, named ``fovea_<svc>_...``."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Histogram, start_http_server

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class RpcMetrics:
    requests: Counter
    latency: Histogram


_REGISTERED: dict[str, RpcMetrics] = {}


def rpc_metrics(service: str) -> RpcMetrics:
    """The request counter (by method and status code) and latency histogram of ``service``."""
    if service not in _REGISTERED:
        _REGISTERED[service] = RpcMetrics(
            requests=Counter(
                f"fovea_{service}_requests_total",
                f"gRPC requests handled by the {service}, by method and status code",
                ["method", "code"],
            ),
            latency=Histogram(
                f"fovea_{service}_request_duration_seconds",
                f"gRPC request latency in the {service}, by method",
                ["method"],
                buckets=LATENCY_BUCKETS,
            ),
        )
    return _REGISTERED[service]


def serve_metrics(host: str, port: int) -> None:
    """Expose ``/metrics`` over HTTP on a background thread (port 0 disables it)."""
    if port:
        start_http_server(port, addr=host)
