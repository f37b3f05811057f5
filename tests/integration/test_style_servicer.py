"""The style service in process on port 0 with a real Redis (no worker): what a caller sees of the job
store's caps. A result dropped for newer ones: the job stays SUCCEEDED and says "result expired"; a store
full of queued jobs' images refuses the next with RESOURCE_EXHAUSTED; preserve_color and the canonical
style name are kept with the job."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import grpc
import pytest
from PIL import Image

from fovea.common.server import Registration, ServerHandle, create_server
from fovea.common.v1 import common_pb2
from fovea.contracts.styles import STYLES
from fovea.style.config import StyleSettings
from fovea.style.core.jobs import JobState
from fovea.style.servicer import StyleServicer
from fovea.style.store import PREFIX, RESULT_EXPIRED, open_store
from fovea.style.tasks import QUEUE, create_app
from fovea.style.v1 import style_pb2, style_pb2_grpc

URL = "redis://127.0.0.1:6379/12"


def png(side: int) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((side, side), 60).convert("RGB").save(buf, format="PNG")  # noise: does not compress
    return buf.getvalue()


@pytest.fixture()
async def service() -> AsyncIterator[tuple[style_pb2_grpc.StyleServiceStub, StyleServicer]]:
    settings = StyleSettings(redis_url=URL, max_results=2, max_stored_bytes=1024 * 1024)
    store = open_store(settings)
    if not store.ping():
        pytest.fail(f"no Redis at {URL}: .ci/run starts one")

    def clean() -> None:
        for key in [*store.redis.scan_iter(f"{PREFIX}:*"), QUEUE]:
            store.redis.delete(key)

    clean()
    servicer = StyleServicer(settings, store, create_app(settings), STYLES)
    name = style_pb2.DESCRIPTOR.services_by_name["StyleService"].full_name
    reg = Registration(style_pb2_grpc.add_StyleServiceServicer_to_server, servicer, name)
    handle: ServerHandle = await create_server("style", "127.0.0.1:0", [reg], max_message_bytes=4 << 20)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{handle.port}") as channel:
        yield style_pb2_grpc.StyleServiceStub(channel), servicer
    await handle.server.stop(0)
    clean()


async def test_a_dropped_result_says_result_expired(
    service: tuple[style_pb2_grpc.StyleServiceStub, StyleServicer],
) -> None:
    stub, servicer = service
    content = common_pb2.Image(data=png(64))
    ids = []
    for _ in range(3):
        job = await stub.SubmitJob(
            style_pb2.SubmitJobRequest(content=content, style_name="style19", preserve_color=True), timeout=10
        )
        ids.append(job.job_id)
        # what a worker does: claim, then finish with a result
        servicer.store.transition(job.job_id, JobState.RUNNING, {"owner": "w"})
        servicer.store.transition(job.job_id, JobState.SUCCEEDED, result=b"png", owner="w")
    first, *rest = [await stub.GetJob(style_pb2.GetJobRequest(job_id=i), timeout=10) for i in ids]
    # max_results=2: the oldest result went when the third arrived
    assert first.state == style_pb2.SUCCEEDED and first.result_expired and not first.result_png
    assert first.error == RESULT_EXPIRED
    assert all(j.result_png == b"png" and not j.result_expired and not j.error for j in rest)
    assert first.preserve_color
    assert servicer.store.get(ids[0]).style_name == "blue-yellow-swirls"  # the alias is stored as the name
    watched = [j async for j in stub.WatchJob(style_pb2.WatchJobRequest(job_id=ids[0]), timeout=10)]
    assert watched and watched[-1].result_expired


async def test_a_store_full_of_queued_images_refuses_the_next_job(
    service: tuple[style_pb2_grpc.StyleServiceStub, StyleServicer],
) -> None:
    stub, _ = service
    content = common_pb2.Image(data=png(400))  # ~480 KB of noise: two fit in 1 MiB, a third does not
    assert len(content.data) > 1024 * 1024 // 3
    for _ in range(2):
        await stub.SubmitJob(style_pb2.SubmitJobRequest(content=content, style_name="style1"), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SubmitJob(style_pb2.SubmitJobRequest(content=content, style_name="style1"), timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "job store is full" in (err.value.details() or "")
