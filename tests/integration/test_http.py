"""The gateway's HTTP/JSON port against the real stack: the same answers, keys, scopes and errors as gRPC,
a style job watched to its end as server-sent events and as a Connect stream, /openapi.json, /docs, /healthz,
and the README's curl examples run with curl itself."""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from fovea.client import FoveaClientError
from fovea.convert.samples import sample
from fovea.gateway.auth import add_key, revoke_key
from fovea.gateway.connect import FLAG_END_STREAM, envelope, read_envelopes
from fovea.gateway.tls import make_local_pki

from .conftest import Stack, eventually, free_ports
from .faces_photos import new_id, photo
from .test_security import gateway_env

pytestmark = pytest.mark.integration

DETECT = "/fovea.detection.v1.DetectionService/Detect"
FACES = "/fovea.faces.v1.FacesService/"
STYLE = "/fovea.style.v1.StyleService/"


def url(stack: Stack, path: str) -> str:
    return f"http://{stack.settings.host}:{stack.settings.gateway_http_port}{path}"


def call(
    stack: Stack,
    path: str,
    body: Any,
    key: str | None = "",
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
    timeout_s: float = 120,
) -> tuple[int, dict[str, str], Any]:
    """POST ``body`` (JSON unless bytes) with ``key`` (the admin key when '', none when None)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"content-type": content_type, **(headers or {})}
    if key is not None:
        sent["authorization"] = f"Bearer {key or stack.admin_key}"
    request = urllib.request.Request(url(stack, path), data=data, headers=sent, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            raw, status, got = response.read(), response.status, response.headers
    except urllib.error.HTTPError as exc:
        raw, status, got = exc.read(), exc.code, exc.headers
    is_json = got.get_content_type() == "application/json"
    return status, {k.lower(): v for k, v in got.items()}, json.loads(raw) if is_json else raw


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_json_detect_on_a_photo_returns_its_detections(stack: Stack) -> None:
    dog = sample("dog").read_bytes()
    status, headers, body = call(
        stack, DETECT, {"image": {"data": b64(dog)}}, headers={"x-request-id": "cam-7"}
    )
    assert status == 200, body
    assert body["model"] == "nanodet_int8" and body["imageSize"] == {"width": 768, "height": 576}
    labels = [d["label"] for d in body["detections"]]
    assert labels and {"dog", "bicycle"} <= set(labels)
    assert len(headers["x-request-id"]) == 32 and headers["x-client-request-id"] == "cam-7"
    with stack.client() as client:
        same = client.detect(dog)  # the same answer as over gRPC
    assert labels == [d.label for d in same.detections]
    assert [d["box"]["x1"] for d in body["detections"]] == pytest.approx(
        [d.box[0] for d in same.detections], abs=0.01
    )  # the client rounds


def test_without_a_key_401_unauthenticated_as_on_grpc(stack: Stack) -> None:
    status, _, body = call(stack, DETECT, {}, key=None)
    assert status == 401 and body["code"] == "unauthenticated"
    with stack.client(key="") as client, pytest.raises(FoveaClientError) as grpc_error:
        client.detect(sample("dog").read_bytes())
    assert grpc_error.value.code == "UNAUTHENTICATED" and grpc_error.value.message == body["message"]
    status, _, body = call(stack, DETECT, {}, key="fv_not-a-key")
    assert status == 401 and body == {"code": "unauthenticated", "message": "unknown API key"}


def test_a_missing_or_revoked_scope_is_403_permission_denied(stack: Stack) -> None:
    status, _, body = call(stack, STYLE + "ListStyles", {}, key=stack.detect_key)
    assert status == 403 and body["code"] == "permission_denied"
    assert (
        body["message"]
        == "API key 'camera' lacks scope 'style' needed for fovea.style.v1.StyleService/ListStyles"
    )
    keys = stack.settings.data / "api-keys.json"
    temporary = add_key(keys, "http-temporary", ["style"])
    eventually(lambda: _expect(call(stack, STYLE + "ListStyles", {}, key=temporary), 200), timeout_s=5)
    revoke_key(keys, "http-temporary")
    eventually(lambda: _expect(call(stack, STYLE + "ListStyles", {}, key=temporary), 401), timeout_s=5)


def _expect(answer: tuple[int, dict[str, str], Any], status: int) -> None:
    assert answer[0] == status, answer


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b'{"image": {"data": ', "application/json", "is not a valid JSON DetectRequest"),
        (b'{"picture": {}}', "application/json", 'no field named "picture"'),
        (b'{"image": {"data": "%%%"}}', "application/json", "image is empty"),  # protobuf skips non-base64
        (b'{"image": {"data": "aGVsbG8="}}', "application/json", "image"),  # "hello" is no image
        (b"image=dog.jpg", "application/x-www-form-urlencoded", "takes Content-Type application/json"),
    ],
)
def test_a_malformed_body_is_400_invalid_argument(
    stack: Stack, body: bytes, content_type: str, says: str
) -> None:
    status, _, answer = call(stack, DETECT, body, content_type=content_type)
    assert status == 400 and answer["code"] == "invalid_argument" and says in answer["message"], answer


def test_deadlines_and_bidi_streams(stack: Stack) -> None:
    dog = {"image": {"data": b64(sample("dog").read_bytes())}}
    status, _, body = call(stack, DETECT, dog, headers={"connect-timeout-ms": "1"})
    assert status == 504 and body["code"] == "deadline_exceeded"
    status, _, body = call(stack, "/fovea.detection.v1.DetectionService/DetectStream", dog)
    assert status == 501 and "call it over gRPC, or call Detect once per message" in body["message"]


def test_openapi_docs_and_health(stack: Stack) -> None:
    with urllib.request.urlopen(url(stack, "/openapi.json"), timeout=10) as response:
        spec = json.loads(response.read())
    assert DETECT in spec["paths"] and FACES + "VerifyAccess" in spec["paths"]
    assert "/fovea.models.v1.ModelsService/ListModels" in spec["paths"]  # the gateway's own service too
    assert spec["paths"][FACES + "VerifyAccess"]["post"]["x-fovea-scope"] == "faces:verify"
    with urllib.request.urlopen(url(stack, "/docs"), timeout=10) as response:
        assert b"/openapi.json" in response.read()
    with urllib.request.urlopen(url(stack, "/healthz"), timeout=10) as response:
        assert response.status == 200 and json.loads(response.read()) == {"status": "SERVING"}
    status, _, body = call(stack, "/fovea.models.v1.ModelsService/ListModels", {})
    assert status == 200 and "nanodet" in {m["name"] for m in body["models"]}


def test_enroll_verify_and_door_access(stack: Stack) -> None:
    gallery = new_id("http")
    status, _, body = call(stack, FACES + "CreateGallery", {"galleryId": gallery})
    assert status == 200, body
    enroll = {
        "galleryId": gallery,
        "identityId": "obama",
        "photos": [{"data": b64(photo("obama"))}],
        "metadata": {"name": "Barack Obama"},
    }
    status, _, body = call(stack, FACES + "Enroll", enroll)
    assert status == 200 and len(body["addedTemplateIds"]) == 1, body
    verify = {"galleryId": gallery, "identityId": "obama", "photo": {"data": b64(photo("obama2"))}}
    status, _, body = call(stack, FACES + "Verify", verify)
    assert status == 200 and body["match"] is True and body["distance"] < 0.5, body
    door = {
        "doorId": new_id("door"),
        "galleryId": gallery,
        "claimedIdentityId": "obama",
        "frames": [{"data": b64(photo("obama2"))}],
    }
    status, _, body = call(stack, FACES + "VerifyAccess", door, headers={"x-request-id": "door-1"})
    assert status == 200 and body["decision"] == "GRANT" and body["clientRequestId"] == "door-1", body
    door["frames"] = [{"data": b64(photo("biden"))}]
    status, _, body = call(stack, FACES + "VerifyAccess", door)
    assert status == 200 and body["decision"] == "DENY", body


def events(raw: bytes) -> list[tuple[str, Any]]:
    """``(event name, data)`` of each server-sent event (name "message" when the event names none)."""
    out = []
    for block in raw.decode().split("\n\n"):
        if block:
            fields = dict(line.split(": ", 1) for line in block.split("\n"))
            out.append((fields.get("event", "message"), json.loads(fields["data"])))
    return out


def test_a_style_job_watched_over_http_to_its_end(stack: Stack) -> None:
    status, _, styles = call(stack, STYLE + "ListStyles", {})
    assert status == 200 and styles["styles"]
    job = {
        "content": {"data": b64(sample("dog").read_bytes())},
        "styleName": styles["styles"][0]["name"],
        "maxSide": 128,
    }
    status, _, submitted = call(stack, STYLE + "SubmitJob", job)
    assert status == 200 and submitted["state"] in ("QUEUED", "RUNNING"), submitted
    watch = {"jobId": submitted["jobId"]}
    status, headers, raw = call(stack, STYLE + "WatchJob", watch, headers={"accept": "text/event-stream"})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    seen = events(raw)
    assert len(seen) >= 2 and seen[-1] == ("end", {})
    updates = [data for name, data in seen[:-1]]
    assert all(name == "message" for name, _ in seen[:-1])
    assert {u["jobId"] for u in updates} == {submitted["jobId"]}
    assert updates[-1]["state"] == "SUCCEEDED" and base64.b64decode(updates[-1]["resultPng"]).startswith(
        b"\x89PNG"
    )
    # the Connect streaming form of the same call: enveloped messages, then the end-stream message
    status, _, raw = call(
        stack,
        STYLE + "WatchJob",
        envelope(json.dumps(watch).encode()),
        content_type="application/connect+json",
    )
    frames = list(read_envelopes(raw))
    assert (
        status == 200
        and frames
        and frames[-1][0] == FLAG_END_STREAM
        and "error" not in json.loads(frames[-1][1])
    )
    assert json.loads(frames[-2][1])["state"] == "SUCCEEDED"
    status, _, body = call(stack, STYLE + "GetJob", {**watch, "omitResult": True})
    assert status == 200 and body["state"] == "SUCCEEDED" and body["resultPng"] == ""
    # an error ends a stream as an error event
    status, _, raw = call(
        stack, STYLE + "WatchJob", {"jobId": "no-such-job"}, headers={"accept": "text/event-stream"}
    )
    [(name, data)] = events(raw)
    assert name == "error" and data["code"] == "not_found", data


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_readme_curl_example(stack: Stack, tmp_path: Path) -> None:
    body = tmp_path / "detect.json"
    body.write_text(json.dumps({"image": {"data": b64(sample("dog").read_bytes())}, "minScore": 0.5}))
    out = subprocess.run(
        ["curl", "-sS", "-H", f"authorization: Bearer {stack.admin_key}", "-H", "content-type: application/json",
         "-d", f"@{body}", url(stack, DETECT)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    answer = json.loads(out.stdout)
    assert {"dog", "bicycle"} <= {d["label"] for d in answer["detections"]}
    assert all(d["score"] >= 0.5 for d in answer["detections"])


def test_the_http_port_takes_the_grpc_ports_tls_files(stack: Stack, tmp_path: Path) -> None:
    files = make_local_pki(tmp_path / "pki", [])
    grpc_port, http_port = free_ports(2)
    env = gateway_env(
        stack,
        grpc_port,
        FOVEA_GATEWAY_HTTP_PORT=str(http_port),
        FOVEA_GATEWAY_TLS_CERT_FILE=str(files.server_cert),
        FOVEA_GATEWAY_TLS_KEY_FILE=str(files.server_key),
        FOVEA_GATEWAY_TLS_CLIENT_CA_FILE=str(files.ca),
    )
    with open(tmp_path / "gateway.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fovea", "serve", "gateway"], env=env, stdout=log, stderr=log
        )
    try:
        tls = ssl.create_default_context(cafile=str(files.ca))
        tls.load_cert_chain(files.client_cert, files.client_key)
        dog = json.dumps({"image": {"data": b64(sample("dog").read_bytes())}}).encode()

        def detect(context: ssl.SSLContext | None, scheme: str = "https") -> Any:
            request = urllib.request.Request(
                f"{scheme}://127.0.0.1:{http_port}{DETECT}",
                data=dog,
                headers={"content-type": "application/json", "authorization": f"Bearer {stack.admin_key}"},
            )
            with urllib.request.urlopen(request, timeout=60, context=context) as response:
                return json.loads(response.read())

        def up() -> None:
            assert proc.poll() is None, (tmp_path / "gateway.log").read_text()
            assert "dog" in {d["label"] for d in detect(tls)["detections"]}

        eventually(up, timeout_s=30)
        no_cert = ssl.create_default_context(cafile=str(files.ca))
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            detect(no_cert)  # mTLS: no client certificate, no call
        with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
            detect(None, "http")  # no plaintext on a TLS port
    finally:
        proc.terminate()
        proc.wait(timeout=20)
