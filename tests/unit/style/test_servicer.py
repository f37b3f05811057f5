"""The style service in process, on port 0, through its real interceptor: what SubmitJob refuses before
anything is stored, and a job store (Redis) that does not answer (a closed port: no Redis needed)."""

from __future__ import annotations

import io
import socket
from collections.abc import AsyncIterator

import grpc
import pytest
from PIL import Image

from fovea.common.server import Registration, ServerHandle, create_server
from fovea.common.v1 import common_pb2
from fovea.contracts.styles import STYLES
from fovea.style.config import StyleSettings
from fovea.style.servicer import StyleServicer
from fovea.style.store import open_store
from fovea.style.tasks import create_app
from fovea.style.v1 import style_pb2, style_pb2_grpc


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def png(width: int, height: int) -> common_pb2.Image:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (120, 80, 40)).save(buf, format="PNG")
    return common_pb2.Image(data=buf.getvalue())


@pytest.fixture()
async def stub() -> AsyncIterator[style_pb2_grpc.StyleServiceStub]:
    """A style service whose Redis (job store and broker) is down."""
    settings = StyleSettings(redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    servicer = StyleServicer(settings, open_store(settings), create_app(settings), STYLES)
    name = style_pb2.DESCRIPTOR.services_by_name["StyleService"].full_name
    reg = Registration(style_pb2_grpc.add_StyleServiceServicer_to_server, servicer, name)
    handle: ServerHandle = await create_server(
        "style", "127.0.0.1:0", [reg], max_message_bytes=4 * 1024 * 1024
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{handle.port}") as channel:
        yield style_pb2_grpc.StyleServiceStub(channel)
    await handle.server.stop(0)


def gatys(**params: object) -> style_pb2.SubmitJobRequest:
    return style_pb2.SubmitJobRequest(
        content=png(64, 48),
        style_image=png(64, 64),
        gatys=style_pb2.GatysParams(iterations=5, **params),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (
            gatys(optimizer=7),
            "gatys.optimizer 7 is not a known Optimizer; known: OPTIMIZER_UNSPECIFIED, LBFGS",
        ),
        (gatys(init=-1), "gatys.init -1 is not a known Init; known: INIT_UNSPECIFIED, CONTENT, NOISE"),
        (gatys(alpha=1e38), "alpha must be a finite number within [0, 1e+06], got 1e+38"),
        (gatys(beta=float("inf")), "beta must be a finite number"),
        (
            style_pb2.SubmitJobRequest(content=png(16, 16), style_name="style1"),
            "content image is 16x16 pixels; style transfer needs both sides at least 32 pixels",
        ),
        (
            style_pb2.SubmitJobRequest(
                content=png(64, 64), style_image=png(16, 16), gatys=style_pb2.GatysParams(iterations=5)
            ),
            "style image is 16x16 pixels",
        ),
        (
            style_pb2.SubmitJobRequest(content=png(64, 64), style_name="n" * 100_000),
            "unknown style 'nnnnnnnn",
        ),
    ],
)
async def test_submit_refuses_work_that_could_only_fail_later(
    stub: style_pb2_grpc.StyleServiceStub, request_: style_pb2.SubmitJobRequest, expected: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SubmitJob(request_, timeout=10)
    details = err.value.details() or ""
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, details
    assert expected in details
    assert len(details) < 1000  # never the caller's 100k characters (the 26 style names at most)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.SubmitJob(
            style_pb2.SubmitJobRequest(content=png(64, 64), style_name="style1"), timeout=10
        ),
        lambda s: s.GetJob(style_pb2.GetJobRequest(job_id="abc"), timeout=10),
        lambda s: s.CancelJob(style_pb2.CancelJobRequest(job_id="abc"), timeout=10),
    ],
)
async def test_redis_down_is_unavailable_naming_the_job_store_not_its_address(
    stub: style_pb2_grpc.StyleServiceStub, call: object
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(stub)  # type: ignore[operator]
    details = err.value.details() or ""
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE, details
    assert "the job store (Redis) is unavailable" in details
    assert "127.0.0.1" not in details


async def test_watch_with_redis_down_is_unavailable(stub: style_pb2_grpc.StyleServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stub.WatchJob(style_pb2.WatchJobRequest(job_id="abc"), timeout=10):
            pass
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_list_styles_names_descriptions_and_aliases(stub: style_pb2_grpc.StyleServiceStub) -> None:
    reply = await stub.ListStyles(style_pb2.ListStylesRequest(), timeout=10)  # needs no Redis
    styles = list(reply.styles)
    assert [s.index for s in styles] == list(range(26))
    assert [list(s.aliases) for s in styles] == [[f"style{i}"] for i in range(26)]
    assert all(s.name and not s.name.startswith("style") for s in styles)
    assert all(len(s.description) > 10 for s in styles)


async def test_unknown_style_lists_the_names(stub: style_pb2_grpc.StyleServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SubmitJob(
            style_pb2.SubmitJobRequest(content=png(64, 64), style_name="vangogh"), timeout=10
        )
    details = err.value.details() or ""
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"known: {STYLES[0].name}, {STYLES[1].name}" in details and "aliases styleN" in details


@pytest.mark.parametrize("name", [STYLES[3].name, "style3"])
async def test_a_name_or_its_alias_passes_validation(
    stub: style_pb2_grpc.StyleServiceStub, name: str
) -> None:
    # Validation passes; storing the job then meets the Redis that is down.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SubmitJob(style_pb2.SubmitJobRequest(content=png(64, 64), style_name=name), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
