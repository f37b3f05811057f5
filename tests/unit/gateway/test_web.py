"""The HTTP port in process, on port 0, in front of the gateway's real handlers and stand-in backends (as
``test_proxy.py`` does for gRPC): the same keys, scopes, checks and messages as gRPC, Connect's codes and
statuses, streams as Connect envelopes and as server-sent events, health, the OpenAPI document, TLS."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2

from fovea.common.server import Registration, ServerHandle, create_server
from fovea.detection.v1 import detection_pb2, detection_pb2_grpc
from fovea.gateway.auth import Authenticator, add_key, load_keys
from fovea.gateway.connect import FLAG_END_STREAM, envelope, read_envelopes
from fovea.gateway.openapi import build_openapi
from fovea.gateway.proxy import Forwarder, public_backends
from fovea.gateway.routes import route_table
from fovea.gateway.tls import make_local_pki
from fovea.gateway.web import HttpGateway, call_metadata, ssl_context, start_http
from fovea.style.v1 import style_pb2, style_pb2_grpc

MiB = 1024 * 1024
DETECT = "/fovea.detection.v1.DetectionService/Detect"
WATCH = "/fovea.style.v1.StyleService/WatchJob"


class Detection(detection_pb2_grpc.DetectionServiceServicer):
    async def Detect(
        self, request: detection_pb2.DetectRequest, context: grpc.aio.ServicerContext
    ) -> detection_pb2.DetectResponse:
        if request.client_tag == "slow":
            await asyncio.sleep(2)
        if request.client_tag == "missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no detector named 'missing'")
        label = request.image.data[:16].decode(errors="replace") or "none"
        return detection_pb2.DetectResponse(
            client_tag=request.client_tag, detections=[detection_pb2.Detection(label=label, score=0.5)]
        )


@dataclass
class Style(style_pb2_grpc.StyleServiceServicer):
    open_watches: list[str] = field(default_factory=list)

    async def WatchJob(
        self, request: style_pb2.WatchJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[style_pb2.Job]:
        if request.job_id == "gone":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no job 'gone'")
        self.open_watches.append(request.job_id)
        try:
            for state in (style_pb2.QUEUED, style_pb2.RUNNING, style_pb2.SUCCEEDED):
                yield style_pb2.Job(job_id=request.job_id, state=state)
                if request.job_id == "forever":
                    await asyncio.sleep(60)
        finally:
            self.open_watches.remove(request.job_id)


@dataclass
class Stack:
    url: str
    grpc_address: str
    key: str
    camera_key: str
    http: HttpGateway
    style: Style
    handles: list[ServerHandle]

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key if key is None else key}"}


async def serve(tmp_path: Path, tls: ssl.SSLContext | None = None) -> Stack:
    style = Style()
    backends = []
    for add, servicer, name in [
        (detection_pb2_grpc.add_DetectionServiceServicer_to_server, Detection(), "DetectionService"),
        (style_pb2_grpc.add_StyleServiceServicer_to_server, style, "StyleService"),
    ]:
        backends.append(
            await create_server(
                "standin", "127.0.0.1:0", [Registration(add, servicer, name)], max_message_bytes=4 * MiB
            )
        )
        await backends[-1].set_serving(True)  # ready: in the gateway's rotation (fovea.replica)
    keys = tmp_path / "keys.json"
    key, camera = add_key(keys, "admin", ["*"]), add_key(keys, "camera", ["detect"])
    forwarder = Forwarder(Authenticator(load_keys(keys)), default_timeout_s=5)
    detection, _, style_backend, _ = public_backends(
        f"127.0.0.1:{backends[0].port}",
        "127.0.0.1:1",
        f"127.0.0.1:{backends[1].port}",
        "127.0.0.1:1",
        4 * MiB,
    )
    handlers = [forwarder.generic_handler(detection), forwarder.generic_handler(style_backend)]
    gateway = await create_server(
        "gateway", "127.0.0.1:0", [], max_message_bytes=4 * MiB, generic_handlers=handlers, edge=True
    )
    routes = route_table([detection.service, style_backend.service])
    http = await start_http(
        "127.0.0.1", 0, handlers=handlers, routes=routes, openapi=build_openapi(routes, {}, {}),
        max_message_bytes=4 * MiB, tls=tls,
    )  # fmt: skip
    await http.bridge.health.set("", health_pb2.HealthCheckResponse.SERVING)
    scheme = "https" if tls else "http"
    return Stack(
        f"{scheme}://127.0.0.1:{http.port}",
        f"127.0.0.1:{gateway.port}",
        key,
        camera,
        http,
        style,
        [*backends, gateway],
    )


@pytest.fixture()
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    s = await serve(tmp_path)
    yield s
    await s.http.close(0)
    for handle in s.handles:
        await handle.server.stop(0)


async def post(
    stack: Stack,
    path: str,
    body: Any,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> tuple[int, Mapping[str, str], Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            stack.url + path, data=data, headers={"content-type": content_type, **(headers or {})}
        ) as response,
    ):
        raw = await response.read()
        parsed = json.loads(raw) if response.content_type == "application/json" else raw
        return response.status, response.headers.copy(), parsed  # names case-insensitive


def image(text: str) -> dict[str, str]:
    return {"data": base64.b64encode(text.encode()).decode()}


async def test_json_detect_with_a_key(stack: Stack) -> None:
    status, headers, body = await post(
        stack,
        DETECT,
        {"image": image("dog"), "clientTag": "t1"},
        {**stack.auth(), "x-request-id": "mine", "x-bang!": "not a gRPC key"},
    )
    assert status == 200, body
    assert body["clientTag"] == "t1" and body["detections"][0]["label"] == "dog"
    assert len(headers["x-request-id"]) == 32 and headers["x-client-request-id"] == "mine"
    # the other header name the gRPC side reads
    status, _, body = await post(stack, DETECT, {"image": image("cat")}, {"x-api-key": stack.key})
    assert status == 200 and body["detections"][0]["label"] == "cat"


async def test_binary_proto_bodies(stack: Stack) -> None:
    raw = detection_pb2.DetectRequest(image={"data": b"owl"}).SerializeToString()
    status, headers, body = await post(stack, DETECT, raw, stack.auth(), "application/proto")
    assert status == 200 and headers["Content-Type"] == "application/proto"
    assert detection_pb2.DetectResponse.FromString(body).detections[0].label == "owl"


async def grpc_error(
    stack: Stack, path: str, request: bytes, metadata: tuple[tuple[str, str], ...]
) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(stack.grpc_address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(path)(request, metadata=metadata, timeout=5)
    return caught.value


@pytest.mark.parametrize(
    ("headers", "code", "status"),
    [
        ({}, "unauthenticated", 401),
        ({"authorization": "Bearer fv_nope"}, "unauthenticated", 401),
        ("camera", "permission_denied", 403),
    ],
)
async def test_keys_and_scopes_answer_as_on_grpc(stack: Stack, headers: Any, code: str, status: int) -> None:
    path = "/fovea.style.v1.StyleService/GetJob"
    if headers == "camera":
        headers = stack.auth(stack.camera_key)
    got, _, body = await post(stack, path, {"jobId": "j"}, headers)
    assert got == status and body["code"] == code
    same = await grpc_error(stack, path, b"", tuple(headers.items()))
    assert body["message"] == same.details() and same.code().name.lower() == code


async def test_the_edge_checks_and_backend_errors_pass_through(stack: Stack) -> None:
    too_many = {"image": image("dog"), "classes": ["c"] * 1025}
    status, _, body = await post(stack, DETECT, too_many, stack.auth())
    assert status == 400 and body == {
        "code": "invalid_argument",
        "message": "DetectRequest.classes has 1025 entries; at most 1024 are allowed",  # as on gRPC
    }
    status, _, body = await post(stack, DETECT, {"clientTag": "missing"}, stack.auth())
    assert status == 404 and body == {"code": "not_found", "message": "no detector named 'missing'"}


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b'{"image": ', "application/json", "is not a valid JSON DetectRequest"),
        (b'{"imag": {}}', "application/json", 'no field named "imag"'),
        (b"image=x", "application/x-www-form-urlencoded", "takes Content-Type application/json"),
        (b"\xff\xff\xff", "application/proto", "is not a valid DetectRequest message"),
    ],
)
async def test_malformed_bodies_are_invalid_argument(
    stack: Stack, body: bytes, content_type: str, says: str
) -> None:
    status, headers, answer = await post(stack, DETECT, body, stack.auth(), content_type)
    assert status == 400 and headers["Content-Type"] == "application/json"
    assert answer["code"] == "invalid_argument" and says in answer["message"], answer


async def test_compressed_bodies(stack: Stack) -> None:
    body = gzip.compress(json.dumps({"image": image("zip")}).encode())
    status, _, answer = await post(stack, DETECT, body, {**stack.auth(), "content-encoding": "gzip"})
    assert status == 200 and answer["detections"][0]["label"] == "zip"
    status, _, answer = await post(stack, DETECT, body, {**stack.auth(), "content-encoding": "deflate"})
    assert status == 400 and answer["code"] == "invalid_argument", answer
    assert "could not be read" in answer["message"] and "deflate" in answer["message"]


async def test_a_deadline_is_passed_on(stack: Stack) -> None:
    status, _, body = await post(
        stack, DETECT, {"clientTag": "slow"}, {**stack.auth(), "connect-timeout-ms": "100"}
    )
    assert status == 504 and body["code"] == "deadline_exceeded"
    status, _, body = await post(stack, DETECT, {}, {**stack.auth(), "connect-timeout-ms": "soon"})
    assert status == 400 and "Connect-Timeout-Ms" in body["message"]


async def test_bodies_over_the_message_limit(stack: Stack) -> None:
    big = {"image": {"data": base64.b64encode(b"x" * (6 * MiB)).decode()}}  # 8 MiB of JSON: over 4/3 * 4 + 1
    status, _, body = await post(stack, DETECT, big, stack.auth())
    assert status == 429 and body["code"] == "resource_exhausted" and "larger than" in body["message"]
    fits = {"image": {"data": base64.b64encode(b"x" * (4 * MiB)).decode()}}  # fits the body, not gRPC's limit
    status, _, body = await post(stack, DETECT, fits, stack.auth())
    assert status == 429 and body["code"] == "resource_exhausted"


async def test_what_is_not_a_unary_or_server_stream_call(stack: Stack) -> None:
    status, _, body = await post(stack, "/fovea.detection.v1.DetectionService/DetectStream", {}, stack.auth())
    assert status == 501 and body["code"] == "unimplemented"
    assert body["message"] == (
        "DetectionService/DetectStream is a bidirectional stream, which HTTP/1.1 cannot carry: call it over "
        "gRPC, or call Detect once per message"
    )
    # a Connect streaming client is told so in an end-stream message, as it reads errors of streams
    status, headers, raw = await post(
        stack,
        "/fovea.detection.v1.DetectionService/DetectStream",
        envelope(b"{}"),
        stack.auth(),
        "application/connect+json",
    )
    [(flags, last)] = list(read_envelopes(raw))
    assert (
        status == 200 and headers["Content-Type"] == "application/connect+json" and flags == FLAG_END_STREAM
    )
    assert json.loads(last)["error"]["code"] == "unimplemented"
    status, _, body = await post(stack, "/fovea.detection.v1.DetectionService/Nope", {}, stack.auth())
    assert status == 404 and body["code"] == "unimplemented" and "/openapi.json" in body["message"]
    async with aiohttp.ClientSession() as session, session.get(stack.url + DETECT) as response:
        assert response.status == 405 and (await response.json())["code"] == "unimplemented"


async def stream(
    stack: Stack, body: bytes, headers: dict[str, str], content_type: str
) -> tuple[int, str, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            stack.url + WATCH, data=body, headers={"content-type": content_type, **headers}
        ) as response,
    ):
        return response.status, response.content_type, await response.read()


async def test_a_server_stream_as_connect_envelopes(stack: Stack) -> None:
    status, kind, raw = await stream(
        stack, envelope(b'{"jobId": "j1"}'), stack.auth(), "application/connect+json"
    )
    assert status == 200 and kind == "application/connect+json"
    frames = list(read_envelopes(raw))
    assert [json.loads(d)["state"] for f, d in frames[:-1]] == ["QUEUED", "RUNNING", "SUCCEEDED"]
    flags, last = frames[-1]
    assert flags == FLAG_END_STREAM and "error" not in json.loads(last)
    # an error ends the stream in its end-stream message (HTTP 200, as Connect streams do)
    status, _, raw = await stream(
        stack, envelope(b'{"jobId": "gone"}'), stack.auth(), "application/connect+json"
    )
    [(flags, last)] = list(read_envelopes(raw))
    assert status == 200 and flags == FLAG_END_STREAM
    assert json.loads(last)["error"] == {"code": "not_found", "message": "no job 'gone'"}


async def test_a_server_stream_as_server_sent_events(stack: Stack) -> None:
    sse = {**stack.auth(), "accept": "text/event-stream"}
    status, kind, raw = await stream(stack, b'{"jobId": "j2"}', sse, "application/json")
    assert status == 200 and kind == "text/event-stream"
    events = raw.decode().split("\n\n")
    assert events[-1] == ""
    assert [json.loads(e.removeprefix("data: "))["state"] for e in events[:3]] == [
        "QUEUED",
        "RUNNING",
        "SUCCEEDED",
    ]
    assert events[3] == "event: end\ndata: {}"
    status, _, raw = await stream(
        stack, b'{"jobId": "j2"}', {"accept": "text/event-stream"}, "application/json"
    )
    assert raw.decode().startswith('event: error\ndata: {"code":"unauthenticated"')
    status, _, raw = await stream(stack, b'{"jobId": "j2"}', stack.auth(), "application/json")
    assert status == 400 and b"text/event-stream" in raw


async def test_a_caller_that_leaves_ends_the_backend_stream(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            stack.url + WATCH, data=b'{"jobId": "forever"}',
            headers={"content-type": "application/json", "accept": "text/event-stream", **stack.auth()},
        )  # fmt: skip
        assert (await response.content.readline()).startswith(b"data: ")
        assert stack.style.open_watches == ["forever"]
        response.close()
    for _ in range(100):
        if not stack.style.open_watches:
            break
        await asyncio.sleep(0.05)
    assert stack.style.open_watches == []


async def test_a_stop_ends_open_streams_within_its_grace(tmp_path: Path) -> None:
    stack = await serve(tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            response = await session.post(
                stack.url + WATCH, data=b'{"jobId": "forever"}',
                headers={"content-type": "application/json", "accept": "text/event-stream", **stack.auth()},
            )  # fmt: skip
            assert (await response.content.readline()).startswith(b"data: ")
            started = asyncio.get_running_loop().time()
            await stack.http.close(grace_s=0.5)
            assert asyncio.get_running_loop().time() - started < 3
            rest = await response.content.read()
            assert b"event: error" in rest, rest  # the caller learns the stream was cut
        for _ in range(40):  # the backend learns of the cancellation a moment later (its own loop iteration)
            if not stack.style.open_watches:
                break
            await asyncio.sleep(0.05)
        assert stack.style.open_watches == []
    finally:
        for handle in stack.handles:
            await handle.server.stop(0)


async def test_health_openapi_and_docs(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(stack.url + "/healthz") as response:
            assert response.status == 200 and await response.json() == {"status": "SERVING"}
        await stack.http.bridge.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        async with session.get(stack.url + "/healthz") as response:
            assert response.status == 503 and await response.json() == {"status": "NOT_SERVING"}
        async with session.get(stack.url + "/healthz?service=nope") as response:
            assert response.status == 503 and await response.json() == {"status": "SERVICE_UNKNOWN"}
        async with session.get(stack.url + "/openapi.json") as response:
            assert DETECT in (await response.json())["paths"]
        async with session.get(stack.url + "/docs") as response:
            page = await response.text()
            assert response.status == 200 and "/openapi.json" in page and "cdn" not in page.lower()


def test_headers_become_metadata() -> None:
    headers = {
        "Authorization": "Bearer k", "X-Request-Id": "r", "Content-Type": "application/json", "Host": "h",
        "Connect-Timeout-Ms": "5", "grpc-timeout": "1S", "x-trace-bin": base64.b64encode(b"\x00\x01").decode(),
        "x-odd": "caf\u00e9", "x-bang!": "1", "x-sp ace": "1",
    }  # fmt: skip
    assert call_metadata(headers) == (
        ("authorization", "Bearer k"),
        ("x-request-id", "r"),
        ("x-trace-bin", b"\x00\x01"),
    )


async def test_tls_with_the_grpc_files(tmp_path: Path) -> None:
    pki = make_local_pki(tmp_path / "pki", [])
    stack = await serve(tmp_path, ssl_context(pki.server_cert, pki.server_key, pki.ca))
    try:
        client = ssl.create_default_context(cafile=str(pki.ca))
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientError):  # mTLS: no client certificate, no call
                await session.post(stack.url + DETECT, json={}, headers=stack.auth(), ssl=client)
            client.load_cert_chain(pki.client_cert, pki.client_key)
            async with session.post(
                stack.url + DETECT, json={"image": image("tls")}, headers=stack.auth(), ssl=client
            ) as r:
                assert r.status == 200 and (await r.json())["detections"][0]["label"] == "tls"
    finally:
        await stack.http.close(0)
        for handle in stack.handles:
            await handle.server.stop(0)
    with pytest.raises(ValueError, match="TLS files"):
        ssl_context(pki.ca, tmp_path / "missing.pem")


def test_a_streams_connection_gets_tcp_keepalive() -> None:
    """A stream's connection is probed (issue 24): a client gone without closing it ends its stream."""
    import socket

    from fovea.common.server import Keepalive
    from fovea.gateway.web import keep_alive

    with socket.socket() as sock:

        class Transport:
            def get_extra_info(self, name: str) -> Any:
                return sock if name == "socket" else None

        class Request:
            transport = Transport()

        keep_alive(Request(), Keepalive(time_s=20, timeout_s=9))  # type: ignore[arg-type]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 20
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 3
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 9000
