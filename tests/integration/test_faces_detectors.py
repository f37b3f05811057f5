"""The two face detectors side by side (issue 23): the stack's faces service runs the default (RetinaFace),
a second faces service the stack's own environment with FOVEA_FACES_DETECTOR=mtcnn, behind a second gateway,
on the stack's Triton (which serves face_detector beside face_retinaface) and Redis. A template enrolled
through the RetinaFace service verifies a same-person photo through the MTCNN one (the embedder is the same
and each detector aligns on its own template, so templates stay comparable) and refuses another person."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fovea.client import FoveaClient
from fovea.common.server import REPLICA_HEALTH
from fovea.stack.health import grpc_health

from .conftest import Stack, eventually, free_ports
from .faces_photos import new_id, photo

pytestmark = pytest.mark.integration


def service_env(stack: Stack, name: str) -> dict[str, str]:
    """The environment the stack's supervisor started program ``name`` with."""
    [process] = [p for p in stack.supervisor.processes() if p["name"] == name]
    raw = Path(f"/proc/{process['pid']}/environ").read_bytes().decode()
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def start(args: list[str], env: dict[str, str], port: int, log: Path, health: str) -> subprocess.Popen[bytes]:
    """Start ``python -m fovea *args`` and wait until its gRPC health ``health`` is SERVING. An open port is
    not enough: a faces service listens while it loads its models, and a gateway routes nothing to a replica
    whose ``fovea.replica`` status is not SERVING yet (the call fails UNAVAILABLE)."""
    out = open(log, "wb")  # noqa: SIM115 - the child holds it
    proc = subprocess.Popen([sys.executable, "-m", "fovea", *args], env=env, stdout=out, stderr=out)

    def up() -> None:
        assert proc.poll() is None, f"{args} exited: {log.read_text()[-2000:]}"
        probe = grpc_health(f"127.0.0.1:{port}", health)
        assert probe.ok, probe

    eventually(up, timeout_s=120)
    return proc


@pytest.fixture(scope="module")
def mtcnn_gateway(stack: Stack) -> Iterator[str]:
    faces_port, gateway_port = free_ports(2)
    # the stack's faces service as it runs, with MTCNN, on its own port; no MQTT and no webhook
    # deliveries from this second instance (the stack's own service delivers the events of both)
    faces = {
        k: v
        for k, v in service_env(stack, "faces").items()
        if k not in ("FOVEA_FACES_MQTT_URL", "FOVEA_FACES_WEBHOOKS_FILE")
    }
    faces.update(FOVEA_FACES_DETECTOR="mtcnn", FOVEA_FACES_PORT=str(faces_port), FOVEA_FACES_METRICS_PORT="0")
    gateway = service_env(stack, "gateway")
    gateway.update(
        FOVEA_GATEWAY_PORT=str(gateway_port),
        FOVEA_GATEWAY_HTTP_PORT="0",
        FOVEA_GATEWAY_METRICS_PORT="0",
        FOVEA_GATEWAY_FACES_ADDR=f"127.0.0.1:{faces_port}",
        FOVEA_GATEWAY_KEY_USAGE_FILE=str(stack.settings.data / "api-keys.mtcnn-gateway.usage.json"),
    )
    logs = stack.settings.data / "logs"
    procs = [start(["serve", "faces"], faces, faces_port, logs / "faces-mtcnn.log", REPLICA_HEALTH)]
    try:
        procs.append(start(["serve", "gateway"], gateway, gateway_port, logs / "gateway-mtcnn.log", ""))
        yield f"127.0.0.1:{gateway_port}"
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=20)


def test_mtcnn_verifies_what_retinaface_enrolled(
    stack: Stack, client: FoveaClient, mtcnn_gateway: str
) -> None:
    gallery = new_id("mtcnn")
    client.create_gallery(gallery)
    try:
        assert len(client.enroll(gallery, "obama", [photo("obama")])) == 1  # through RetinaFace
        mtcnn = FoveaClient(mtcnn_gateway, stack.admin_key, 60.0)
        same = mtcnn.verify(gallery, "obama", photo("obama2"))
        assert same.match and same.distance < 0.5, same
        other = mtcnn.verify(gallery, "obama", photo("biden"))
        assert not other.match and other.distance > 0.7, other
        retina = client.verify(gallery, "obama", photo("obama2"))
        assert abs(retina.distance - same.distance) < 0.15, (retina, same)  # the same pair, either detector
    finally:
        client.delete_gallery(gallery)
