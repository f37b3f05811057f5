"""No way around the gateway's keys, on the real stack: the services answer the gateway only, Redis wants
its password, Triton and Redis listen on loopback; keys are revoked and created live; TLS and mTLS at a
second gateway process in front of the same services, driven through the `fovea` CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis
from click.testing import CliRunner
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fovea.cli.main import main
from fovea.client import FoveaClient, FoveaClientError
from fovea.common.interceptors import INTERNAL_TOKEN_HEADER
from fovea.convert.samples import sample
from fovea.detection.v1 import detection_pb2
from fovea.gateway.tls import TlsFiles, make_local_pki

from .conftest import Stack, eventually, free_ports


def list_detectors(client: FoveaClient) -> object:
    return client.call(client.detection.ListDetectors, detection_pb2.ListDetectorsRequest())


def direct_calls(client: FoveaClient) -> dict[str, object]:
    return {
        "detection": lambda: list_detectors(client),
        "faces": lambda: client.list_galleries(),
        "style": lambda: client.list_styles(),
    }


def test_services_answer_the_gateway_only(stack: Stack) -> None:
    s = stack.settings
    ports = {"detection": s.detection_port, "faces": s.faces_port, "style": s.style_port}
    token = s.internal_token_file.read_text().strip()
    for name, port in ports.items():
        address = f"127.0.0.1:{port}"
        for metadata in ([], [(INTERNAL_TOKEN_HEADER, "not-the-token-but-long-enough")]):
            with FoveaClient(address, api_key=stack.admin_key, metadata=metadata) as direct:
                with pytest.raises(FoveaClientError) as err:
                    direct_calls(direct)[name]()  # type: ignore[operator]
                assert err.value.code == "UNAUTHENTICATED", (name, err.value)
                assert "gateway" in err.value.message
        with grpc.insecure_channel(address) as channel:  # probes stay open
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with FoveaClient(address, api_key="", metadata=[(INTERNAL_TOKEN_HEADER, token)]) as insider:
            direct_calls(insider)[name]()  # type: ignore[operator]
    with stack.client() as client:  # through the gateway: the same calls work
        for call in direct_calls(client).values():
            call()  # type: ignore[operator]
        assert client.detect(sample("dog").read_bytes()).detections


def listening(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


# /proc/net/tcp{,6} spell addresses as little-endian hex words.
LOOPBACK = {
    "0100007F",  # 127.0.0.1
    "0000000000000000FFFF00000100007F",  # ::ffff:127.0.0.1 (IPv4 on an IPv6 socket)
    "00000000000000000000000001000000",  # ::1
}


def test_triton_and_redis_listen_on_loopback_only(stack: Stack) -> None:
    s = stack.settings
    for port in (s.triton_grpc_port, s.triton_http_port, s.triton_metrics_port, s.redis_port):
        addresses = listening(port)
        assert addresses, f"nothing listens on {port}"
        assert addresses <= LOOPBACK, (port, addresses)


def test_redis_wants_its_password(stack: Stack) -> None:
    url = json.loads((stack.settings.data / "stack.json").read_text())["redis_url"]
    assert (stack.settings.data / "stack.json").stat().st_mode & 0o777 == 0o600
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=stack.settings.redis_port, socket_timeout=2).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(
            host="127.0.0.1", port=stack.settings.redis_port, password="guess", socket_timeout=2
        ).ping()
    assert redis.Redis.from_url(url, socket_timeout=2).ping()


def keys_cli(stack: Stack, *args: str) -> str:
    result = CliRunner().invoke(main, ["keys", *args, "--file", str(stack.settings.data / "api-keys.json")])
    assert result.exit_code == 0, result.output
    return result.output


def test_keys_live_without_a_restart(stack: Stack) -> None:
    gateway_pid = next(p["pid"] for p in stack.supervisor.processes() if p["name"] == "gateway")
    key = keys_cli(stack, "create", "--name", "rotating", "--scopes", "detect", "--expires", "1d").strip()
    with stack.client(key) as client:
        eventually(
            lambda: list_detectors(client), timeout_s=1.0, interval_s=0.05
        )  # a new key works within a second
        keys_cli(stack, "revoke", "rotating")
        start = time.perf_counter()
        while True:
            try:
                list_detectors(client)
            except FoveaClientError as exc:
                assert exc.code == "UNAUTHENTICATED", exc
                break
            assert time.perf_counter() - start < 1.0, "the revoked key still works after a second"
            time.sleep(0.02)
    listed = keys_cli(stack, "list")
    assert "admin" in listed and "camera" in listed and "rotating" not in listed
    assert stack.admin_key not in listed and stack.detect_key not in listed
    assert "sha256" not in keys_cli(stack, "list", "--json")
    pid_now = next(p["pid"] for p in stack.supervisor.processes() if p["name"] == "gateway")
    assert pid_now == gateway_pid  # no restart


# ---------------------------------------------------------------------------------------------- TLS


def gateway_env(stack: Stack, port: int, **extra: str) -> dict[str, str]:
    s = stack.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOVEA_GATEWAY_")}
    return {
        **env,
        "FOVEA_GATEWAY_HOST": "127.0.0.1",
        "FOVEA_GATEWAY_PORT": str(port),
        "FOVEA_GATEWAY_METRICS_PORT": "0",
        "FOVEA_GATEWAY_HTTP_PORT": "0",
        "FOVEA_GATEWAY_API_KEYS_FILE": str(s.data / "api-keys.json"),
        "FOVEA_GATEWAY_KEY_USAGE_FILE": str(s.data / "api-keys.tls-gateway.usage.json"),
        "FOVEA_GATEWAY_INTERNAL_TOKEN_FILE": str(s.internal_token_file),
        "FOVEA_GATEWAY_DETECTION_ADDR": f"127.0.0.1:{s.detection_port}",
        "FOVEA_GATEWAY_FACES_ADDR": f"127.0.0.1:{s.faces_port}",
        "FOVEA_GATEWAY_STYLE_ADDR": f"127.0.0.1:{s.style_port}",
        "FOVEA_GATEWAY_TRITON_URL": s.triton_grpc_url,
        **extra,
    }


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[TlsFiles, TlsFiles]:
    return make_local_pki(tmp_path_factory.mktemp("pki"), []), make_local_pki(
        tmp_path_factory.mktemp("other"), []
    )


@pytest.fixture(scope="module")
def mtls_gateway(stack: Stack, pki: tuple[TlsFiles, TlsFiles]) -> Iterator[str]:
    """A second `fovea serve gateway` with TLS and required client certificates, before the same services."""
    files = pki[0]
    (port,) = free_ports(1)
    env = gateway_env(
        stack,
        port,
        FOVEA_GATEWAY_TLS_CERT_FILE=str(files.server_cert),
        FOVEA_GATEWAY_TLS_KEY_FILE=str(files.server_key),
        FOVEA_GATEWAY_TLS_CLIENT_CA_FILE=str(files.ca),
    )
    log = open(stack.settings.data / "logs" / "gateway-mtls.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "fovea", "serve", "gateway"], env=env, stdout=log, stderr=log
    )
    address = f"127.0.0.1:{port}"
    try:

        def up() -> None:
            assert proc.poll() is None, "the TLS gateway exited"
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass

        eventually(up, timeout_s=30)
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def fovea(*args: str, api_key: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOVEA_TLS")}
    return subprocess.run(
        [sys.executable, "-m", "fovea", *args],
        env={**env, "FOVEA_API_KEY": api_key},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_detect_over_mtls(stack: Stack, mtls_gateway: str, pki: tuple[TlsFiles, TlsFiles]) -> None:
    files, other = pki
    tls = ["--gateway", mtls_gateway, "--ca", str(files.ca)]
    client_cert = ["--cert", str(files.client_cert), "--key", str(files.client_key)]
    ok = fovea(*tls, *client_cert, "detect", str(sample("dog")), "--json", api_key=stack.admin_key)
    assert ok.returncode == 0, ok.stderr
    assert {d["label"] for d in json.loads(ok.stdout)["detections"]} >= {"dog"}

    wrong_ca = fovea(
        "--gateway",
        mtls_gateway,
        "--ca",
        str(other.ca),
        *client_cert,
        "detect",
        str(sample("dog")),
        api_key=stack.admin_key,
    )
    assert wrong_ca.returncode == 1 and "UNAVAILABLE" in wrong_ca.stderr
    assert "not signed by the CA in" in wrong_ca.stderr, wrong_ca.stderr

    plaintext = fovea(
        "--gateway", mtls_gateway, "--no-tls", "detect", str(sample("dog")), api_key=stack.admin_key
    )
    assert plaintext.returncode == 1 and "UNAVAILABLE" in plaintext.stderr
    assert "if it uses TLS, pass --tls and --ca" in plaintext.stderr, plaintext.stderr

    no_cert = fovea(*tls, "detect", str(sample("dog")), api_key=stack.admin_key)
    assert no_cert.returncode == 1 and "UNAVAILABLE" in no_cert.stderr, no_cert.stderr

    bad_key = fovea(*tls, *client_cert, "detect", str(sample("dog")), api_key="fv_nope")
    assert bad_key.returncode == 1 and "UNAUTHENTICATED" in bad_key.stderr  # mTLS and API keys both


def test_plaintext_off_loopback_is_refused(stack: Stack) -> None:
    (port,) = free_ports(1)
    proc = subprocess.run(
        [sys.executable, "-m", "fovea", "serve", "gateway"],
        env=gateway_env(stack, port, FOVEA_GATEWAY_HOST="0.0.0.0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "refusing to listen in plaintext on 0.0.0.0" in proc.stderr, proc.stderr


def test_triton_requires_the_internal_token(stack: Stack) -> None:
    # Every API but health: a local process without the token learns nothing and runs nothing.
    import tritonclient.grpc as triton_grpc
    from tritonclient.utils import InferenceServerException

    from fovea.common.triton import TRITON_GRPC_TOKEN_HEADER as GRPC_TOKEN

    s = stack.settings
    client = triton_grpc.InferenceServerClient(s.triton_grpc_url)
    assert client.is_server_live()  # health stays open for probes
    for call in (
        lambda h: client.get_model_repository_index(headers=h),
        lambda h: client.get_model_config("nanodet", headers=h),
        lambda h: client.get_inference_statistics(headers=h),
    ):
        with pytest.raises(InferenceServerException, match="x-fovea-internal-token"):
            call(None)
        with pytest.raises(InferenceServerException):
            call({GRPC_TOKEN: "not-the-token-0123456789"})
        call({GRPC_TOKEN: s.internal_token_file.read_text().strip()})
    with urllib.request.urlopen(f"http://127.0.0.1:{s.triton_http_port}/v2/health/ready", timeout=5) as resp:
        assert resp.status == 200
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"http://127.0.0.1:{s.triton_http_port}/v2/models/nanodet/config", timeout=5)
