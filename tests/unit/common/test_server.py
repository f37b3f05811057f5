"""``create_server`` in process on port 0: with an internal token file only callers that send the token are
answered (UNAUTHENTICATED otherwise, unary and streaming alike), health checks stay open; a bad token file
stops the start with a message naming it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fovea.common.interceptors import INTERNAL_TOKEN_HEADER
from fovea.common.server import Registration, ServerHandle, create_server, read_internal_token
from fovea.detection.v1 import detection_pb2, detection_pb2_grpc

MiB = 1024 * 1024
TOKEN = "t" * 43


class StandIn(detection_pb2_grpc.DetectionServiceServicer):
    async def Detect(
        self, request: detection_pb2.DetectRequest, context: grpc.aio.ServicerContext
    ) -> detection_pb2.DetectResponse:
        return detection_pb2.DetectResponse(client_tag=request.client_tag)

    async def DetectStream(
        self, request_iterator: AsyncIterator[detection_pb2.DetectRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[detection_pb2.DetectResponse]:
        async for request in request_iterator:
            yield detection_pb2.DetectResponse(client_tag=request.client_tag)


@pytest.fixture()
async def server(tmp_path: Path) -> AsyncIterator[ServerHandle]:
    token = tmp_path / "internal-token"
    token.write_text(TOKEN + "\n")
    service = detection_pb2.DESCRIPTOR.services_by_name["DetectionService"].full_name
    reg = Registration(detection_pb2_grpc.add_DetectionServiceServicer_to_server, StandIn(), service)
    handle = await create_server(
        "standin_token", "127.0.0.1:0", [reg], max_message_bytes=4 * MiB, internal_token_file=token
    )
    await handle.set_serving(True)
    yield handle
    await handle.server.stop(0)


@pytest.mark.parametrize(
    "metadata", [(), ((INTERNAL_TOKEN_HEADER, "t" * 42 + "x"),), ((INTERNAL_TOKEN_HEADER, ""),)]
)
async def test_calls_without_the_token_are_refused(server: ServerHandle, metadata: tuple) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = detection_pb2_grpc.DetectionServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as unary:
            await stub.Detect(detection_pb2.DetectRequest(client_tag="a"), metadata=metadata, timeout=5)
        assert unary.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "gateway" in (unary.value.details() or "")
        stream = stub.DetectStream(iter([detection_pb2.DetectRequest(client_tag="b")]), metadata=metadata)
        with pytest.raises(grpc.aio.AioRpcError) as streamed:
            async for _ in stream:
                pass
        assert streamed.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_the_token_opens_every_method(server: ServerHandle) -> None:
    metadata = ((INTERNAL_TOKEN_HEADER, TOKEN),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = detection_pb2_grpc.DetectionServiceStub(channel)
        reply = await stub.Detect(detection_pb2.DetectRequest(client_tag="a"), metadata=metadata, timeout=5)
        assert reply.client_tag == "a"
        requests = [detection_pb2.DetectRequest(client_tag=t) for t in ("b", "c")]
        tags = [r.client_tag async for r in stub.DetectStream(iter(requests), metadata=metadata, timeout=5)]
        assert tags == ["b", "c"]


async def test_health_stays_open(server: ServerHandle) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_bad_token_files_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="No such file"):
        read_internal_token(tmp_path / "missing")
    short = tmp_path / "short"
    short.write_text("abc\n")
    with pytest.raises(ValueError, match="16 or more printable"):
        read_internal_token(short)
    good = tmp_path / "good"
    good.write_text(TOKEN + "\n")
    assert read_internal_token(good) == TOKEN.encode()


def test_a_server_with_keepalive_pings_its_clients() -> None:
    """The gateway pings its callers (issue 24: a vanished client's calls are cancelled within time +
    timeout); the services behind it do not, and accept the gateway's pings."""
    from fovea.common.server import Keepalive, server_options

    plain = dict(server_options(4 * 1024 * 1024))
    assert "grpc.keepalive_time_ms" not in plain and plain["grpc.keepalive_permit_without_calls"] == 1
    edge = dict(server_options(4 * 1024 * 1024, Keepalive(time_s=20, timeout_s=10)))
    assert edge["grpc.keepalive_time_ms"] == 20_000 and edge["grpc.keepalive_timeout_ms"] == 10_000
    assert edge["grpc.http2.max_pings_without_data"] == 0
