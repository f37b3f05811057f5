"""The job runner against a real Redis, with Triton replaced at the edge by a stand-in that answers like the
style models: heartbeats while a job runs, a run whose job was taken over stops and records nothing,
preserve_color on the result, the configured image limits."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import pytest
from PIL import Image

from fovea.common.images import ImageLimits
from fovea.common.jobs import Heartbeats
from fovea.style.core.color import chroma_distance
from fovea.style.core.jobs import JobKind, JobState
from fovea.style.runner import JobRunner
from fovea.style.store import PREFIX, JobStore, StoreLimits, now_ms

URL = "redis://127.0.0.1:6379/12"


class FakeTriton:
    """style_fast: the image with its channels reversed (other colours, same size). style_gatys: ``steps``
    responses ``delay_s`` apart, the last with the content inverted as IMAGE."""

    def __init__(self, steps: int = 3, delay_s: float = 0.0) -> None:
        self.steps = steps
        self.delay_s = delay_s

    def infer(
        self, model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        assert model == "style_fast"
        return {"IMAGE": np.ascontiguousarray(inputs["IMAGE"][..., ::-1])}

    def stream(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        on_response: Callable[[dict[str, np.ndarray]], bool],
    ) -> None:
        assert model == "style_gatys"
        empty = np.zeros((0, 0, 3), np.uint8)
        for i in range(1, self.steps + 1):
            time.sleep(self.delay_s)
            last = i == self.steps
            out = {
                "ITERATION": np.array([i], np.int32),
                "COSTS": np.array([1.0, 2.0, 3.0], np.float32),
                "PREVIEW": empty,
                "IMAGE": (255 - inputs["CONTENT"]) if last else empty,
            }
            if not on_response(out):
                return


def png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def store() -> Iterator[JobStore]:
    s = JobStore(URL, 600, 600, StoreLimits(max_results=100, max_bytes=64 << 20, max_records=100))
    if not s.ping():
        pytest.fail(f"no Redis at {URL}: .ci/run starts one")
    yield s
    for key in s.redis.scan_iter(f"{PREFIX}:*"):
        s.redis.delete(key)


def runner(store: JobStore, triton: FakeTriton, interval_s: float = 0.1, **limits: int) -> JobRunner:
    return JobRunner(
        store,
        triton,  # type: ignore[arg-type]
        time_limit_s=30,
        limits=ImageLimits(**limits),
        heartbeats=Heartbeats(store.heartbeat, interval_s, "style-heartbeats"),
        heartbeat_timeout_s=1.0,
    )


def content() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)


@pytest.mark.parametrize("preserve", [False, True])
def test_fast_job_with_and_without_preserved_colours(store: JobStore, preserve: bool) -> None:
    image = content()
    job_id, _ = store.create(
        JobKind.FAST, "teal-mosaic", {"max_side": 64}, {"content": png(image)}, "", preserve
    )
    assert runner(store, FakeTriton()).run(job_id) == JobState.SUCCEEDED
    result = np.asarray(Image.open(io.BytesIO(store.blob(job_id, "result") or b"")).convert("RGB"))
    distance = chroma_distance(result, image)
    # channels reversed: the chroma moves a lot; with preserve_color only the rounding is left
    assert distance < 1.0 if preserve else distance > 20
    assert store.get(job_id).owner and store.usage().running == 0


def test_configured_image_limits_are_used(store: JobStore) -> None:
    job_id, _ = store.create(JobKind.FAST, "style1", {"max_side": 64}, {"content": png(content())})
    assert runner(store, FakeTriton(), max_pixels=1000).run(job_id) == JobState.FAILED  # 40x48 > 1000 px
    assert "pixels" in store.get(job_id).error


def test_heartbeats_while_running_and_a_taken_over_run_records_nothing(store: JobStore) -> None:
    job_id, _ = store.create(
        JobKind.GATYS,
        "",
        {"max_side": 64, "iterations": 2},
        {"content": png(content()), "style": png(content())},
    )
    triton = FakeTriton(steps=30, delay_s=0.1)
    first = runner(store, triton)
    outcome: list[JobState] = []
    thread = threading.Thread(target=lambda: outcome.append(first.run(job_id)))
    thread.start()
    time.sleep(1.0)
    job = store.get(job_id)
    assert job.state == JobState.RUNNING and now_ms() - job.heartbeat_ms < 500  # beating
    # the reaper's move, as if the heartbeat had stopped, then a second run takes the job
    store.transition(job_id, JobState.QUEUED, {"owner": ""})
    second = runner(store, FakeTriton(steps=2))
    assert second.run(job_id) == JobState.SUCCEEDED
    thread.join(10)
    assert outcome and outcome[0] in (JobState.RUNNING, JobState.SUCCEEDED)  # it stopped, as someone else's
    job = store.get(job_id)
    assert job.attempts == 2 and job.iteration == 2  # the second run's progress, not the first's
