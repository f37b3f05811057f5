"""Style jobs through the real gateway, Celery worker and Triton: fast and Gatys jobs, named styles and
their aliases, preserved colours, idempotency, bad input refused at submit time, cancel, and a worker killed
mid-job (requeued by its stopped heartbeat)."""

from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fovea.client import FoveaClient, FoveaClientError, StyleJob
from fovea.common.v1 import common_pb2
from fovea.contracts.styles import STYLES
from fovea.convert.samples import sample
from fovea.style.config import StyleSettings
from fovea.style.core.color import chroma_distance
from fovea.style.core.images import fit_array
from fovea.style.reaper import WORKER_LOST
from fovea.style.store import PREFIX, JobStore, store_limits
from fovea.style.tasks import QUEUE
from fovea.style.v1 import style_pb2

from .conftest import Stack, eventually

pytestmark = pytest.mark.integration

DONE = {"SUCCEEDED", "FAILED", "CANCELLED"}


def store(stack: Stack) -> JobStore:
    import json

    url = json.loads((stack.settings.data / "stack.json").read_text())["redis_url"]
    return JobStore(url, ttl_s=600, idempotency_ttl_s=600, limits=store_limits(StyleSettings()))


def gatys_request(iterations: int, side: int = 64, key: str = "") -> style_pb2.SubmitJobRequest:
    return style_pb2.SubmitJobRequest(
        content=common_pb2.Image(data=sample("dog").read_bytes()),
        style_image=common_pb2.Image(data=sample("giraffe").read_bytes()),
        gatys=style_pb2.GatysParams(
            iterations=iterations, max_side=side, optimizer=style_pb2.ADAM, preview_every=2
        ),
        idempotency_key=key,
    )


def wait(client: FoveaClient, job_id: str, timeout_s: float = 120) -> list[StyleJob]:
    return list(client.watch_job(job_id, timeout_s=timeout_s))


def cpu_seconds(pattern: str, stack: Stack) -> float:
    """CPU time so far of every process of ``stack`` whose command line contains ``pattern`` (Triton's model
    stubs run from the stack's data dir; other stacks on the machine do not count)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            if pattern not in cmdline or str(stack.settings.data) not in cmdline:
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            continue
    return total


def test_list_styles(stack: Stack) -> None:
    with stack.client() as client:
        catalog = client.style_catalog()
    assert [s.name for s in catalog] == [s.name for s in STYLES]
    assert [s.aliases for s in catalog] == [[f"style{i}"] for i in range(26)]
    assert all(s.description for s in catalog)


def rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_a_name_and_its_alias_give_the_same_image(stack: Stack) -> None:
    with stack.client() as client:
        by_name = client.submit_style(sample("dog").read_bytes(), style=STYLES[5].name, max_side=128)
        by_alias = client.submit_style(sample("dog").read_bytes(), style="style5", max_side=128)
        finals = [wait(client, job.job_id)[-1] for job in (by_name, by_alias)]
    assert [f.state for f in finals] == ["SUCCEEDED"] * 2
    np.testing.assert_array_equal(rgb(finals[0].result_png), rgb(finals[1].result_png))


def test_preserve_color_keeps_the_contents_chroma_in_fast_and_gatys_jobs(stack: Stack) -> None:
    """Mean |dCb| + |dCr| / 2 of the result against the content (fitted to the result's size), 0-255 units."""
    content = sample("dog").read_bytes()
    distances: dict[tuple[str, bool], float] = {}
    with stack.client() as client:
        for preserve in (False, True):
            fast = client.submit_style(content, style="style3", max_side=128, preserve_color=preserve)
            gatys = gatys_request(iterations=20)
            gatys.preserve_color = preserve
            slow = client.call(client.style.SubmitJob, gatys)
            for kind, job in (("fast", fast), ("gatys", slow)):
                final = wait(client, job.job_id)[-1]
                assert final.state == "SUCCEEDED", final.error
                assert final.preserve_color == preserve
                result = rgb(final.result_png)
                reference = fit_array(rgb(content), max(result.shape[:2]))
                distances[(kind, preserve)] = chroma_distance(result, reference)
    print("chroma distance to the content (kind, preserve_color):", distances)
    for kind in ("fast", "gatys"):
        assert (
            distances[(kind, True)] < 2.0
        )  # rounding, and chroma clipped where the new luminance is extreme
        assert distances[(kind, False)] > 3 * distances[(kind, True)]


def test_fast_style_job_end_to_end(stack: Stack, tmp_path: Path) -> None:
    with stack.client() as client:
        job = client.submit_style(sample("dog").read_bytes(), style="style3")
        assert job.state == "QUEUED"
        updates = wait(client, job.job_id)
    final = updates[-1]
    assert final.state == "SUCCEEDED", final.error
    image = Image.open(io.BytesIO(final.result_png))
    assert image.size == (768, 576)  # within the default max side (1024): the content's size
    image.save(tmp_path / "style3.png")


def test_gatys_job_streams_progress(stack: Stack) -> None:
    # WatchJob polls the job every 0.2 s: enough iterations that the job runs through several polls (6 ran
    # in under one on a fast machine, and the watch saw QUEUED, then SUCCEEDED)
    with stack.client() as client:
        job = client.call(client.style.SubmitJob, gatys_request(iterations=40))
        updates = wait(client, job.job_id)
    final = updates[-1]
    assert final.state == "SUCCEEDED", final.error
    assert final.progress.iteration == 40 and final.progress.total_iterations == 40
    assert any(u.state == "RUNNING" and u.progress.total_cost > 0 for u in updates)
    assert Image.open(io.BytesIO(final.result_png)).size == (64, 48)


def test_same_idempotency_key_same_job(stack: Stack) -> None:
    with stack.client() as client:
        a = client.submit_style(sample("dog").read_bytes(), style="style1", idempotency_key="idem-1")
        b = client.submit_style(sample("dog").read_bytes(), style="style1", idempotency_key="idem-1")
        c = client.submit_style(sample("dog").read_bytes(), style="style1", idempotency_key="idem-2")
        assert a.job_id == b.job_id != c.job_id
        for job_id in (a.job_id, c.job_id):
            assert wait(client, job_id)[-1].state == "SUCCEEDED"


def huge_png() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            lambda: style_pb2.SubmitJobRequest(
                content=common_pb2.Image(data=sample("dog").read_bytes()), style_name="vangogh"
            ),
            "unknown style",
        ),
        (
            lambda: style_pb2.SubmitJobRequest(
                content=common_pb2.Image(data=b"\x89PNG broken"), style_name="style1"
            ),
            "could not be decoded",
        ),
        (lambda: gatys_request(iterations=0), "iterations"),
        (
            lambda: style_pb2.SubmitJobRequest(
                content=common_pb2.Image(data=huge_png()), style_name="style1"
            ),
            "decompression bomb",
        ),
        (lambda: gatys_request(iterations=5, side=4096), "max_side"),
        (
            lambda: style_pb2.SubmitJobRequest(content=common_pb2.Image(data=sample("dog").read_bytes())),
            "give a style",
        ),
    ],
)
def test_bad_input_is_refused_at_submit_and_nothing_is_queued(
    stack: Stack, request_: object, message: str
) -> None:
    s = store(stack)
    before = (s.redis.llen(QUEUE), len(list(s.redis.scan_iter(f"{PREFIX}:job:*"))))
    with stack.client() as client, pytest.raises(FoveaClientError) as err:
        client.call(client.style.SubmitJob, request_())  # type: ignore[operator]
    assert err.value.code == "INVALID_ARGUMENT"
    assert message in err.value.message
    assert (s.redis.llen(QUEUE), len(list(s.redis.scan_iter(f"{PREFIX}:job:*")))) == before


def test_cancel_stops_the_optimisation_and_frees_the_worker(stack: Stack) -> None:
    with stack.client() as client:
        job = client.call(client.style.SubmitJob, gatys_request(iterations=2000, side=96))
        for update in client.watch_job(job.job_id, timeout_s=60):
            if update.state == "RUNNING" and update.progress.iteration >= 2:
                break
        cancelled = client.cancel_job(job.job_id)
        assert cancelled.state in ("RUNNING", "CANCELLED")
        final = wait(client, job.job_id, timeout_s=30)[-1]
        assert final.state == "CANCELLED"
        assert final.progress.iteration < 2000
        time.sleep(1.0)
        used = cpu_seconds("style_gatys", stack)
        assert used > 0  # the stub was found
        time.sleep(3.0)
        assert cpu_seconds("style_gatys", stack) - used < 0.5  # the Triton model stopped optimising
        # The worker is free: the next job runs at once.
        after = client.submit_style(sample("giraffe").read_bytes(), style="style2")
        assert wait(client, after.job_id, timeout_s=60)[-1].state == "SUCCEEDED"


def test_job_of_a_killed_worker_is_requeued_within_a_minute_and_completes_once(stack: Stack) -> None:
    s = store(stack)
    with stack.client() as client:
        job = client.call(client.style.SubmitJob, gatys_request(iterations=40, side=64))
        for update in client.watch_job(job.job_id, timeout_s=60):
            if update.state == "RUNNING" and update.progress.iteration >= 2:
                break
        pid = stack.supervisor.proxy().supervisor.getProcessInfo("worker")["pid"]
        os.kill(pid, signal.SIGKILL)  # its heartbeats stop; the broker would redeliver only after 600 s
        killed = time.monotonic()
        while (record := s.get(job.job_id)).worker_losses == 0:
            assert time.monotonic() - killed < 60, f"not requeued within 60 s: {record}"
            time.sleep(0.25)
        requeued_s = time.monotonic() - killed
        print(f"requeued {requeued_s:.1f} s after the kill: {record.state} {record.error!r}")
        assert record.error == WORKER_LOST or record.attempts == 2  # queued again, or running again already
        final = wait(client, job.job_id, timeout_s=180)[-1]
    assert final.state == "SUCCEEDED", final.error
    record = s.get(job.job_id)
    assert (record.attempts, record.worker_losses) == (2, 1)  # ran again on the restarted worker...
    assert final.progress.iteration == 40
    results = list(s.redis.scan_iter(f"{PREFIX}:job:{job.job_id}:result"))
    assert len(results) == 1  # ...and its result exists once


def small_png(side: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (90, 140, 200)).save(buf, format="PNG")
    return buf.getvalue()


# Issue 9, item 2: each of these was INTERNAL (or UNKNOWN, or RESOURCE_EXHAUSTED) through the gateway.
@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            lambda: style_pb2.SubmitJobRequest(
                content=gatys_request(3).content,
                style_image=gatys_request(3).style_image,
                gatys=style_pb2.GatysParams(iterations=3, optimizer=7),  # type: ignore[arg-type]
            ),
            "gatys.optimizer 7 is not a known Optimizer",
        ),
        (
            lambda: style_pb2.SubmitJobRequest(
                content=gatys_request(3).content,
                style_image=gatys_request(3).style_image,
                gatys=style_pb2.GatysParams(iterations=3, init=-1),  # type: ignore[arg-type]
            ),
            "gatys.init -1 is not a known Init",
        ),
        (
            lambda: style_pb2.SubmitJobRequest(
                content=gatys_request(3).content,
                style_image=gatys_request(3).style_image,
                gatys=style_pb2.GatysParams(iterations=3, alpha=1e38),
            ),
            "alpha must be a finite number within [0, 1e+06]",
        ),
        (
            lambda: style_pb2.SubmitJobRequest(
                content=common_pb2.Image(data=small_png(16)), style_name="style1"
            ),
            "content image is 16x16 pixels; style transfer needs both sides at least 32 pixels",
        ),
        (
            lambda: style_pb2.SubmitJobRequest(
                content=gatys_request(3).content, style_name="style1", idempotency_key="k" * 100_000
            ),
            "idempotency_key is 100000 characters long; at most 256",
        ),
    ],
)
def test_submit_mistakes_are_invalid_argument(stack: Stack, request_: object, message: str) -> None:
    with stack.client() as client, pytest.raises(FoveaClientError) as err:
        client.call(client.style.SubmitJob, request_())  # type: ignore[operator]
    assert err.value.code == "INVALID_ARGUMENT"
    assert message in err.value.message


def test_an_undecodable_message_is_invalid_argument(stack: Stack) -> None:
    import grpc

    with grpc.insecure_channel(stack.gateway) as channel:
        for method in ("SubmitJob", "GetJob", "CancelJob", "ListStyles"):
            call = channel.unary_unary(f"/fovea.style.v1.StyleService/{method}")
            with pytest.raises(grpc.RpcError) as err:
                call(b"\x0a\xff\xff\xff\xff\x0f", metadata=(("x-api-key", stack.admin_key),), timeout=10)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
            assert "request is not a valid" in err.value.details()  # type: ignore[attr-defined]


def test_a_long_job_id_is_refused_without_an_echo(stack: Stack) -> None:
    with stack.client() as client, pytest.raises(FoveaClientError) as err:
        client.call(client.style.GetJob, style_pb2.GetJobRequest(job_id="j" * 100_000))
    assert err.value.code == "INVALID_ARGUMENT"
    assert "job_id is 100000 characters long" in err.value.message and len(err.value.message) < 200


def test_redis_down_is_unavailable_naming_the_job_store(stack: Stack) -> None:
    with stack.client(timeout_s=20) as client:
        stack.supervisor.stop_process("redis")
        try:
            for rpc, request in (
                (
                    client.style.SubmitJob,
                    style_pb2.SubmitJobRequest(content=gatys_request(3).content, style_name="style1"),
                ),
                (client.style.GetJob, style_pb2.GetJobRequest(job_id="abc")),
            ):
                with pytest.raises(FoveaClientError) as err:
                    client.call(rpc, request)
                assert err.value.code == "UNAVAILABLE", err.value.message
                assert "(Redis) is unavailable" in err.value.message
                assert "127.0.0.1" not in err.value.message and "redis://" not in err.value.message
        finally:
            stack.supervisor.start_process("redis")
        eventually(lambda: client.list_styles(), timeout_s=30)


def test_cli_style_list_and_contact_sheet(stack: Stack, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fovea.cli.main import main

    env = {"FOVEA_GATEWAY": stack.gateway, "FOVEA_API_KEY": stack.admin_key}
    listed = CliRunner().invoke(main, ["style", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    lines = listed.output.strip().splitlines()
    assert len(lines) == 26 and lines[19].startswith("blue-yellow-swirls") and "style19" in lines[19]
    small = tmp_path / "content.png"
    Image.open(sample("dog")).convert("RGB").resize((96, 72)).save(small)
    out = tmp_path / "sheet.png"
    made = CliRunner().invoke(
        main, ["style", "sheet", str(small), "--out", str(out), "--max-side", "64"], env=env
    )
    assert made.exit_code == 0, made.output
    # 27 tiles (the content, then the 26 styles), 64x48 each, in 6 columns of 64 px with 6 px gaps and
    # 22 px labels: 6 + 6 * 70 = 426 wide, 5 rows of 48 + 22: 6 + 5 * 76 = 386 high
    sheet = Image.open(out)
    assert sheet.size == (426, 386)
    pixels = np.asarray(sheet.convert("RGB"))
    for i in range(27):  # each tile has something in it and a label under it
        x0, y0 = 6 + (i % 6) * 70, 6 + (i // 6) * 76
        assert pixels[y0 : y0 + 48, x0 : x0 + 64].std() > 10, i
        assert (pixels[y0 + 48 : y0 + 70, x0 : x0 + 64] < 128).any(), i
