"""The gateway's open calls (``fovea.gateway.streams``), in process on port 0 in front of stand-in backends:
a stream ends when its key is revoked or expires and passes on nothing made after that; a key holds at most
its number of streams; the backend's call ends the moment the caller's does; the gateway caps deadlines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from fovea.common.server import Registration, ServerHandle, create_server
from fovea.detection.v1 import detection_pb2, detection_pb2_grpc
from fovea.faces.v1 import faces_pb2, faces_pb2_grpc
from fovea.gateway.auth import Authenticator, add_key, revoke_key
from fovea.gateway.proxy import Forwarder, public_backends
from fovea.gateway.streams import OpenCalls

MiB = 1024 * 1024
WATCH = "/fovea.faces.v1.FacesService/WatchEvents"
DETECT_STREAM = "/fovea.detection.v1.DetectionService/DetectStream"
SWEEP_S = 0.05


@dataclass
class Backend(faces_pb2_grpc.FacesServiceServicer, detection_pb2_grpc.DetectionServiceServicer):
    """WatchEvents sends what is put in ``events`` (or, with ``flood``, an event every millisecond);
    DetectStream answers each request. ``open`` counts the calls still running here."""

    events: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    flood: bool = False
    open: int = 0

    async def WatchEvents(
        self, request: faces_pb2.WatchEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[faces_pb2.Event]:
        self.open += 1
        try:
            n = 0
            while True:
                if self.flood:
                    n += 1
                    await asyncio.sleep(0.001)
                    yield faces_pb2.Event(event_id=f"{n}-0", reason="x" * 2000)
                else:
                    yield faces_pb2.Event(event_id=await self.events.get())
        finally:
            self.open -= 1

    async def DetectStream(
        self, request_iterator: AsyncIterator[detection_pb2.DetectRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[detection_pb2.DetectResponse]:
        self.open += 1
        try:
            async for request in request_iterator:
                yield detection_pb2.DetectResponse(client_tag=request.client_tag)
        finally:
            self.open -= 1


@dataclass
class Gateway:
    address: str
    keys: Path
    backend: Backend
    calls: OpenCalls
    handles: list[ServerHandle]
    tasks: list[asyncio.Task[None]]

    def key(self, name: str, expires: datetime | None = None) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {add_key(self.keys, name, ['*'], expires)}"),)

    async def wait_closed(self, timeout_s: float = 2.0) -> float:
        """Seconds until the backend has no call left running (fails after ``timeout_s``)."""
        start = time.monotonic()
        while self.backend.open:
            assert time.monotonic() - start < timeout_s, f"{self.backend.open} backend calls still open"
            await asyncio.sleep(0.01)
        return time.monotonic() - start


async def start(tmp_path: Path, *, max_streams_per_key: int = 8, max_stream_s: float = 3600.0) -> Gateway:
    backend = Backend()
    services = [
        (faces_pb2_grpc.add_FacesServiceServicer_to_server, faces_pb2, "FacesService"),
        (detection_pb2_grpc.add_DetectionServiceServicer_to_server, detection_pb2, "DetectionService"),
    ]
    registrations = [
        Registration(add, backend, module.DESCRIPTOR.services_by_name[name].full_name)
        for add, module, name in services
    ]
    standin = await create_server("standin", "127.0.0.1:0", registrations, max_message_bytes=4 * MiB)
    await standin.set_serving(True)
    address = f"127.0.0.1:{standin.port}"
    keys = tmp_path / "keys.json"
    add_key(keys, "admin", ["*"])
    auth = Authenticator.from_file(keys)
    calls = OpenCalls(auth, max_streams_per_key)
    forwarder = Forwarder(auth, default_timeout_s=30, max_stream_s=max_stream_s, calls=calls)
    detection, faces, *_ = public_backends(address, address, "127.0.0.1:1", "127.0.0.1:1", 4 * MiB)
    gateway = await create_server(
        "gateway",
        "127.0.0.1:0",
        [],
        max_message_bytes=4 * MiB,
        generic_handlers=[forwarder.generic_handler(faces), forwarder.generic_handler(detection)],
        edge=True,
    )
    sweeping = asyncio.create_task(calls.watch(SWEEP_S))
    return Gateway(f"127.0.0.1:{gateway.port}", keys, backend, calls, [standin, gateway], [sweeping])


@pytest.fixture()
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    gw = await start(tmp_path)
    yield gw
    await stop(gw)


async def stop(gw: Gateway) -> None:
    for task in gw.tasks:
        task.cancel()
    for handle in gw.handles:
        await handle.server.stop(0)


def watch(channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...], timeout: float = 10) -> object:
    return channel.unary_stream(WATCH)(
        faces_pb2.WatchEventsRequest().SerializeToString(), metadata=metadata, timeout=timeout
    )


async def test_a_revoked_key_ends_its_stream_unauthenticated_within_a_sweep(gateway: Gateway) -> None:
    key = gateway.key("door-panel")
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        call = watch(channel, key)
        gateway.backend.events.put_nowait("1-0")
        first = faces_pb2.Event.FromString(await call.read())  # type: ignore[attr-defined]
        assert first.event_id == "1-0"
        revoke_key(gateway.keys, "door-panel")
        revoked = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()  # type: ignore[attr-defined]
        ended_s = time.monotonic() - revoked
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "API key 'door-panel' was revoked while this call was open" in (err.value.details() or "")
    assert ended_s < 1.0  # a sweep every 0.05 s
    await gateway.wait_closed()
    assert len(gateway.calls) == 0


async def test_nothing_made_after_a_revocation_is_passed_on(tmp_path: Path) -> None:
    gw = await start(tmp_path)
    gw.tasks.pop().cancel()  # no sweeps: only the check before each message can stop it
    try:
        key = gw.key("camera")
        async with grpc.aio.insecure_channel(gw.address) as channel:
            call = watch(channel, key)
            gw.backend.events.put_nowait("1-0")
            assert faces_pb2.Event.FromString(await call.read()).event_id == "1-0"  # type: ignore[attr-defined]
            revoke_key(gw.keys, "camera")
            gw.backend.events.put_nowait("2-0")  # made after the revocation
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call.read()  # type: ignore[attr-defined]
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        await gw.wait_closed()
    finally:
        await stop(gw)


async def test_an_expired_key_ends_its_stream(gateway: Gateway) -> None:
    key = gateway.key("visitor", expires=datetime.now(UTC) + timedelta(seconds=1.5))
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        call = watch(channel, key)
        await call.initial_metadata()  # type: ignore[attr-defined]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()  # type: ignore[attr-defined]
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "API key 'visitor' expired at" in (err.value.details() or "")
    await gateway.wait_closed()


async def test_a_revoked_key_ends_its_bidirectional_stream(gateway: Gateway) -> None:
    key = gateway.key("camera")
    outgoing: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def requests() -> AsyncIterator[bytes]:
        while (item := await outgoing.get()) is not None:
            yield item

    answers = []
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        call = channel.stream_stream(DETECT_STREAM)(requests(), metadata=key, timeout=10)
        outgoing.put_nowait(detection_pb2.DetectRequest(client_tag="a").SerializeToString())
        answers.append(detection_pb2.DetectResponse.FromString(await call.read()).client_tag)
        revoke_key(gateway.keys, "camera")
        outgoing.put_nowait(detection_pb2.DetectRequest(client_tag="b").SerializeToString())
        with pytest.raises(grpc.aio.AioRpcError) as err:
            while (answer := await call.read()) is not grpc.aio.EOF:
                answers.append(detection_pb2.DetectResponse.FromString(answer).client_tag)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert answers == ["a"]  # "b" came after the revocation: never answered
    await gateway.wait_closed()


async def test_a_key_holds_at_most_its_streams_and_gets_a_slot_back_when_one_ends(tmp_path: Path) -> None:
    gw = await start(tmp_path, max_streams_per_key=3)
    try:
        key, other = gw.key("dashboard"), gw.key("door")
        async with grpc.aio.insecure_channel(gw.address) as channel:
            held = [watch(channel, key) for _ in range(3)]
            for call in held:
                await call.initial_metadata()  # type: ignore[attr-defined]
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await watch(channel, key).read()  # type: ignore[attr-defined]
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            details = err.value.details() or ""
            assert "API key 'dashboard' has 3 streams open" in details
            assert "FOVEA_GATEWAY_MAX_STREAMS_PER_KEY" in details and "retry when one ends" in details
            another = watch(channel, other)  # another key is not held up
            await another.initial_metadata()  # type: ignore[attr-defined]
            held[0].cancel()  # type: ignore[attr-defined]
            start_s = time.monotonic()
            while True:  # the slot is back as soon as the gateway learns of the cancellation
                again = watch(channel, key)
                await again.initial_metadata()  # type: ignore[attr-defined]
                await asyncio.sleep(0.05)
                if not again.done():  # type: ignore[attr-defined]
                    break
                assert time.monotonic() - start_s < 1.0, "no slot back within a second"
    finally:
        await stop(gw)


@pytest.mark.parametrize("flood", [False, True])
async def test_the_backend_call_ends_when_the_caller_goes_away(tmp_path: Path, flood: bool) -> None:
    """``flood``: the backend sends as fast as it can, so the caller's reset lands while the gateway is
    sending (the case where grpc leaves the handler's generator suspended, for the garbage collector)."""
    gateway = await start(tmp_path, max_streams_per_key=64)
    gateway.backend.flood = flood
    key = gateway.key("kiosk")
    channel = grpc.aio.insecure_channel(gateway.address)
    calls = [watch(channel, key, timeout=120) for _ in range(20)]
    for call in calls:
        await call.initial_metadata()  # type: ignore[attr-defined]
    await asyncio.sleep(0.3)
    assert gateway.backend.open == 20
    await channel.close()  # every stream reset; the backend's deadline is still two minutes away
    try:
        await gateway.wait_closed(timeout_s=2.0)
        assert len(gateway.calls) == 0
    finally:
        await stop(gateway)


async def test_a_stream_lasts_no_longer_than_the_gateways_cap(tmp_path: Path) -> None:
    gw = await start(tmp_path, max_stream_s=0.5)
    try:
        async with grpc.aio.insecure_channel(gw.address) as channel:
            call = watch(channel, gw.key("long"), timeout=60)
            start_s = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call.read()  # type: ignore[attr-defined]
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "the gateway ends a stream after 0.5 s" in (err.value.details() or "")
        assert "FOVEA_GATEWAY_MAX_STREAM_S" in (err.value.details() or "")
        assert time.monotonic() - start_s < 5
        await gw.wait_closed()
    finally:
        await stop(gw)
