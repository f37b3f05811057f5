"""The style job store against a real Redis: atomic transitions, idempotency, cancel, nothing half-written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fovea.common.errors import NotFound
from fovea.style.core.jobs import JobKind, JobState
from fovea.style.store import PREFIX, JobStore

URL = "redis://127.0.0.1:6379/12"


@pytest.fixture()
def store() -> Iterator[JobStore]:
    s = JobStore(URL, ttl_s=600, idempotency_ttl_s=600)
    if not s.ping():
        pytest.fail(f"no Redis at {URL}: .ci/run starts one")
    yield s
    for key in s.redis.scan_iter(f"{PREFIX}:*"):
        s.redis.delete(key)


def test_create_and_complete_once(store: JobStore) -> None:
    job_id, created = store.create(JobKind.FAST, "mosaic", {"max_side": 256}, {"content": b"img"})
    assert created and store.get(job_id).state == JobState.QUEUED
    assert store.blob(job_id, "content") == b"img"
    assert store.transition(job_id, JobState.RUNNING)[0]
    assert store.transition(job_id, JobState.RUNNING)[0]  # a redelivered job is taken over
    done, _ = store.transition(job_id, JobState.SUCCEEDED, blob=("result", b"png1"))
    assert done
    # A second worker finishing the same job changes nothing: one result.
    done, before = store.transition(job_id, JobState.SUCCEEDED, blob=("result", b"png2"))
    assert not done and before == "SUCCEEDED"
    assert store.blob(job_id, "result") == b"png1"
    assert store.redis.ttl(store.key(job_id)) > 0


def test_idempotency_key(store: JobStore) -> None:
    a, created_a = store.create(JobKind.FAST, "mosaic", {}, {"content": b"x"}, idempotency_key="k1")
    b, created_b = store.create(JobKind.FAST, "mosaic", {}, {"content": b"x"}, idempotency_key="k1")
    c, _ = store.create(JobKind.FAST, "mosaic", {}, {"content": b"x"}, idempotency_key="k2")
    assert (created_a, created_b) == (True, False)
    assert a == b != c


def test_cancel(store: JobStore) -> None:
    queued, _ = store.create(JobKind.GATYS, "", {"iterations": 5}, {"content": b"x", "style": b"y"})
    assert store.request_cancel(queued).state == JobState.CANCELLED
    assert not store.transition(queued, JobState.RUNNING)[0]  # a worker picking it up later does nothing
    running, _ = store.create(JobKind.GATYS, "", {"iterations": 5}, {"content": b"x", "style": b"y"})
    store.transition(running, JobState.RUNNING)
    job = store.request_cancel(running)
    assert job.state == JobState.RUNNING and job.cancel_requested and store.cancel_requested(running)


def test_unknown_job(store: JobStore) -> None:
    with pytest.raises(NotFound):
        store.get("nope")


def test_delete_leaves_nothing(store: JobStore) -> None:
    job_id, _ = store.create(JobKind.GATYS, "", {}, {"content": b"x", "style": b"y"})
    store.delete(job_id)
    assert not list(store.redis.scan_iter(f"{PREFIX}:job:{job_id}*"))


def test_redis_down_is_unavailable() -> None:
    from fovea.common.errors import UpstreamUnavailable

    s = JobStore("redis://127.0.0.1:1/0", ttl_s=60, idempotency_ttl_s=60)
    with pytest.raises(UpstreamUnavailable):
        s.create(JobKind.FAST, "mosaic", {}, {"content": b"x"})
