"""`fovea probe`, the container health checks of docker-compose.yml: a real gRPC health service and a real HTTP
server on free ports, SERVING / 200 answered with exit 0, anything else with exit 1."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from click.testing import CliRunner
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from fovea.cli.main import main


@pytest.fixture
def health_server() -> Iterator[tuple[str, health.HealthServicer]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", servicer
    server.stop(None)


class _Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.send_response(200 if self.path == "/v2/health/ready" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def probe(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["probe", *args])
    return result.exit_code, result.output


def test_grpc_serving_and_not_serving(health_server: tuple[str, health.HealthServicer]) -> None:
    address, servicer = health_server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert probe(address) == (0, f"{address}: SERVING\n")
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert probe(address) == (1, f"{address}: NOT_SERVING\n")


def test_grpc_nothing_listening() -> None:
    code, output = probe("127.0.0.1:1", "--timeout", "0.5")  # port 1: nothing listens there
    assert code == 1 and output.startswith("127.0.0.1:1: ")


def test_http_ready_and_not_ready(http_server: str) -> None:
    assert probe(f"{http_server}/v2/health/ready") == (0, f"{http_server}/v2/health/ready: HTTP 200\n")
    code, output = probe(f"{http_server}/metrics")
    assert code == 1 and output.endswith("HTTP 503\n")
