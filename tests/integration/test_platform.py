"""The foundation through the real gateway: status, health, reflection, metrics, auth, outages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from fovea.client import FoveaClientError
from fovea.convert.samples import sample
from fovea.stack.control import status

from .conftest import Stack, eventually

pytestmark = pytest.mark.integration


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def test_every_process_is_healthy(stack: Stack) -> None:
    procs = status(stack.settings)
    assert {p.name for p in procs} >= {"triton", "detection", "faces", "style", "worker", "gateway"}
    assert all(p.healthy for p in procs), [(p.name, p.state, p.probes) for p in procs if not p.healthy]


def test_status_cli_json(stack: Stack) -> None:
    env = {**os.environ, "FOVEA_DATA_DIR": str(stack.settings.data)}
    env.update(
        {f"FOVEA_{k.upper()}": str(v) for k, v in stack.settings.model_dump().items() if k.endswith("_port")}
    )
    proc = subprocess.run(
        [sys.executable, "-m", "fovea", "status", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(proc.stdout)
    assert rows and all(r["healthy"] for r in rows), rows


def test_gateway_health_and_reflection(stack: Stack) -> None:
    with grpc.insecure_channel(stack.gateway) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ["", "fovea.detection.v1.DetectionService", "fovea.models.v1.ModelsService"]:
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
        replies = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = {s.name for r in replies for s in r.list_services_response.service}
    assert {
        "fovea.detection.v1.DetectionService",
        "fovea.faces.v1.FacesService",
        "fovea.style.v1.StyleService",
        "fovea.models.v1.ModelsService",
        "grpc.health.v1.Health",
    } <= names


def test_metrics_everywhere(stack: Stack) -> None:
    s = stack.settings
    with stack.client() as client:
        client.list_models()
    assert 'fovea_gateway_requests_total{code="OK",method="ListModels"}' in metrics(s.gateway_metrics_port)
    assert "fovea_gateway_request_duration_seconds_bucket" in metrics(s.gateway_metrics_port)
    assert "nv_inference_count" in metrics(s.triton_metrics_port)
    for name, port in [
        ("detection", s.detection_metrics_port),
        ("faces", s.faces_metrics_port),
        ("style", s.style_metrics_port),
    ]:
        assert f"fovea_{name}_requests_total" in metrics(port)
    assert "python_info" in metrics(s.worker_metrics_port)


def test_models_list(stack: Stack) -> None:
    with stack.client() as client:
        models = {m.name: m for m in client.list_models()}
    assert models["nanodet"].state == "READY"


@pytest.mark.parametrize(("key", "code"), [("", "UNAUTHENTICATED"), ("fv_wrong", "UNAUTHENTICATED")])
def test_auth_failures(stack: Stack, key: str, code: str) -> None:
    with stack.client(key) as client, pytest.raises(FoveaClientError) as err:
        client.list_models()
    assert err.value.code == code


def test_scope_is_enforced(stack: Stack) -> None:
    with stack.client(stack.detect_key) as client:
        with pytest.raises(FoveaClientError) as err:
            client.enroll("g", "someone", [b"x"])
        assert err.value.code == "PERMISSION_DENIED"
        assert "faces:enroll" in err.value.message
        with pytest.raises(FoveaClientError) as err:
            client.list_models()
        assert err.value.code == "PERMISSION_DENIED"


def test_backend_stopped_mid_test_is_unavailable_then_recovers(stack: Stack) -> None:
    photo = sample("dog").read_bytes()
    with stack.client(timeout_s=20) as client:
        assert client.detect(photo).detections
        stack.supervisor.stop_process("detection")
        try:
            with pytest.raises(FoveaClientError) as err:
                client.detect(photo)
            # Not DEADLINE_EXCEEDED: the gateway answers at once and names what is down.
            assert err.value.code == "UNAVAILABLE"
            assert "detection service" in err.value.message
        finally:
            stack.supervisor.start_process("detection")
        result = eventually(lambda: client.detect(photo), timeout_s=30)
        assert result.detections


def test_request_id_is_returned_and_kept(stack: Stack) -> None:
    from fovea.models.v1 import models_pb2, models_pb2_grpc

    with grpc.insecure_channel(stack.gateway) as channel:
        stub = models_pb2_grpc.ModelsServiceStub(channel)
        auth = ("authorization", f"Bearer {stack.admin_key}")
        _, call = stub.ListModels.with_call(models_pb2.ListModelsRequest(), metadata=[auth], timeout=10)
        generated = dict(call.initial_metadata())["x-request-id"]
        _, call = stub.ListModels.with_call(
            models_pb2.ListModelsRequest(), metadata=[auth, ("x-request-id", "door-7-abc")], timeout=10
        )
        answered = dict(call.initial_metadata())
    # The server's id is its own; the caller's is kept beside it (issue 9: callers cannot choose log ids).
    assert (
        len(generated) == 32 and len(answered["x-request-id"]) == 32 and answered["x-request-id"] != generated
    )
    assert answered["x-client-request-id"] == "door-7-abc"
