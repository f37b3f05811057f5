"""The gateway's forwarder in process, on port 0, in front of a stand-in detection backend (grpc's own
examples test this way): requests are checked at the edge, bad ones never reach the backend, a client
stream with one bad message ends INVALID_ARGUMENT with nothing left running, an unreachable backend is
named without its address."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from fovea.common.server import Registration, ServerHandle, create_server
from fovea.detection.v1 import detection_pb2, detection_pb2_grpc
from fovea.gateway.auth import Authenticator, add_key, load_keys
from fovea.gateway.proxy import Forwarder, public_backends

MiB = 1024 * 1024
DETECT = "/fovea.detection.v1.DetectionService/Detect"
DETECT_STREAM = "/fovea.detection.v1.DetectionService/DetectStream"


@dataclass
class StandIn(detection_pb2_grpc.DetectionServiceServicer):
    """Answers with the request's client_tag; records what reached it and whether a stream is still open."""

    seen: list[str] = field(default_factory=list)
    open_streams: int = 0
    metadata: list[list[tuple[str, str]]] = field(default_factory=list)

    async def Detect(
        self, request: detection_pb2.DetectRequest, context: grpc.aio.ServicerContext
    ) -> detection_pb2.DetectResponse:
        self.seen.append(request.client_tag)
        self.metadata.append([(k, v) for k, v in context.invocation_metadata() or () if k.startswith("x-")])
        return detection_pb2.DetectResponse(client_tag=request.client_tag)

    async def DetectStream(
        self, request_iterator: AsyncIterator[detection_pb2.DetectRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[detection_pb2.DetectResponse]:
        self.open_streams += 1
        try:
            async for request in request_iterator:
                self.seen.append(request.client_tag)
                yield detection_pb2.DetectResponse(client_tag=request.client_tag)
        finally:
            self.open_streams -= 1


@dataclass
class Gateway:
    address: str
    key: str
    backend: StandIn
    handles: list[ServerHandle]

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.key}"),)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start(tmp_path: Path, backend_up: bool = True) -> Gateway:
    standin = StandIn()
    handles = []
    if backend_up:
        service = detection_pb2.DESCRIPTOR.services_by_name["DetectionService"].full_name
        reg = Registration(detection_pb2_grpc.add_DetectionServiceServicer_to_server, standin, service)
        handles.append(await create_server("standin", "127.0.0.1:0", [reg], max_message_bytes=4 * MiB))
        await handles[0].set_serving(True)  # ready: in the gateway's rotation (fovea.replica)
        detection_addr = f"127.0.0.1:{handles[0].port}"
    else:
        detection_addr = f"127.0.0.1:{closed_port()}"
    key = add_key(tmp_path / "keys.json", "admin", ["*"])
    forwarder = Forwarder(Authenticator(load_keys(tmp_path / "keys.json")), default_timeout_s=5)
    detection = public_backends(detection_addr, "127.0.0.1:1", "127.0.0.1:1", "127.0.0.1:1", 4 * MiB)[0]
    gateway = await create_server(
        "gateway",
        "127.0.0.1:0",
        [],
        max_message_bytes=4 * MiB,
        generic_handlers=[forwarder.generic_handler(detection)],
        edge=True,
    )
    handles.append(gateway)
    return Gateway(f"127.0.0.1:{gateway.port}", key, standin, handles)


@pytest.fixture()
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    gw = await start(tmp_path)
    yield gw
    for handle in gw.handles:
        await handle.server.stop(0)


async def call_raw(gw: Gateway, path: str, data: bytes) -> bytes:
    async with grpc.aio.insecure_channel(gw.address) as channel:
        return await channel.unary_unary(path)(data, metadata=gw.metadata(), timeout=5)


def request(tag: str = "ok", **kwargs: object) -> bytes:
    return detection_pb2.DetectRequest(client_tag=tag, **kwargs).SerializeToString()  # type: ignore[arg-type]


async def test_a_valid_request_is_forwarded_unchanged(gateway: Gateway) -> None:
    reply = detection_pb2.DetectResponse.FromString(await call_raw(gateway, DETECT, request("a")))
    assert reply.client_tag == "a" and gateway.backend.seen == ["a"]


async def test_the_backend_learns_the_callers_scopes_and_ids_from_the_gateway_only(gateway: Gateway) -> None:
    forged = (
        ("x-fovea-caller-scopes", "faces:admin"),
        ("x-request-id", "mine"),
        ("x-client-request-id", "x"),
    )
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        call = channel.unary_unary(DETECT)(request("a"), metadata=gateway.metadata() + forged, timeout=5)
        await call
        answered = dict(await call.initial_metadata())
    [seen] = gateway.backend.metadata

    def values(name: str) -> list[str]:
        return [v for k, v in seen if k == name]

    # nothing the caller sent under these names is passed on: the gateway's word only
    assert values("x-fovea-caller-scopes") == ["*"]  # the key's scopes
    assert values("x-client-request-id") == ["mine"]
    [request_id] = values("x-request-id")
    assert len(request_id) == 32 and request_id == answered["x-request-id"]


@pytest.mark.parametrize(
    "data",
    [
        b"\x0a\xff\xff\xff\xff\x0f",  # field 1 (image) with a length no message can have
        b"\x42\x02\xff\xfe",  # field 8 (client_tag): two bytes that are not UTF-8
    ],
)
async def test_an_undecodable_message_is_invalid_argument(gateway: Gateway, data: bytes) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call_raw(gateway, DETECT, data)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request is not a valid DetectRequest message" in (err.value.details() or "")
    assert gateway.backend.seen == []  # never forwarded


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (request("x" * 100_000), "client_tag is 100000 characters long; at most 256"),
        (request(classes=["person"] * 5000), "classes has 5000 entries; at most 1024"),
        (request(classes=["y" * 300]), "classes[0] is 300 characters long"),
    ],
)
async def test_unbounded_fields_are_refused_without_an_echo(
    gateway: Gateway, data: bytes, expected: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call_raw(gateway, DETECT, data)
    details = err.value.details() or ""
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expected in details and len(details) < 300
    assert gateway.backend.seen == []


async def test_a_stream_with_one_bad_message_ends_invalid_argument_and_leaves_nothing_running(
    gateway: Gateway,
) -> None:
    async def requests() -> AsyncIterator[bytes]:
        yield request("first")
        await asyncio.sleep(0.2)  # the first answer comes back before the bad message is sent
        yield b"\x0a\xff\xff\xff\xff\x0f"
        await asyncio.sleep(5)  # never reached: the call ends at the bad message
        yield request("never")

    answers = []
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        call = channel.stream_stream(DETECT_STREAM)(requests(), metadata=gateway.metadata(), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for answer in call:
                answers.append(detection_pb2.DetectResponse.FromString(answer).client_tag)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request is not a valid DetectRequest message" in (err.value.details() or "")
    assert answers == ["first"]
    for _ in range(50):  # the backend's side of the stream is cancelled, not left open
        if gateway.backend.open_streams == 0:
            break
        await asyncio.sleep(0.02)
    assert gateway.backend.open_streams == 0
    assert gateway.backend.seen == ["first"]
    leftover = [t for t in asyncio.all_tasks() if "pump" in repr(t.get_coro())]
    assert leftover == []


async def test_a_good_stream_is_forwarded(gateway: Gateway) -> None:
    async def requests() -> AsyncIterator[bytes]:
        for tag in ("a", "b", "c"):
            yield request(tag)

    async with grpc.aio.insecure_channel(gateway.address) as channel:
        call = channel.stream_stream(DETECT_STREAM)(requests(), metadata=gateway.metadata(), timeout=5)
        answers = [detection_pb2.DetectResponse.FromString(a).client_tag async for a in call]
    assert answers == ["a", "b", "c"]


async def test_an_unreachable_backend_is_named_without_its_address(tmp_path: Path) -> None:
    gw = await start(tmp_path, backend_up=False)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call_raw(gw, DETECT, request())
    finally:
        for handle in gw.handles:
            await handle.server.stop(0)
    details = err.value.details() or ""
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "detection service is unavailable" in details
    assert "127.0.0.1" not in details


@pytest.fixture(autouse=True)
def _no_unretrieved_task_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
