"""The style job store against a real Redis: atomic transitions, idempotency, cancel, nothing half-written,
the caps on what is kept (count and bytes, with exact accounting), owners and heartbeats, the reaper."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fovea.common.errors import NotFound
from fovea.style.core.jobs import JobKind, JobState
from fovea.style.store import PREFIX, JobStore, StoreLimits, now_ms

URL = "redis://127.0.0.1:6379/12"
ROOMY = StoreLimits(max_results=1000, max_bytes=64 << 20, max_records=1000)


def clean(s: JobStore) -> None:
    for key in s.redis.scan_iter(f"{PREFIX}:*"):
        s.redis.delete(key)


@pytest.fixture()
def store() -> Iterator[JobStore]:
    s = JobStore(URL, ttl_s=600, idempotency_ttl_s=600, limits=ROOMY)
    if not s.ping():
        pytest.fail(f"no Redis at {URL}: .ci/run starts one")
    clean(s)
    yield s
    clean(s)


def small_store(**limits: int) -> JobStore:
    caps = {"max_results": 1000, "max_bytes": 64 << 20, "max_records": 1000, **limits}
    return JobStore(URL, ttl_s=600, idempotency_ttl_s=600, limits=StoreLimits(**caps))


def stored_bytes(s: JobStore) -> int:
    """The bytes of every image key there is, counted the slow way (what the index must agree with)."""
    total = 0
    for key in s.redis.scan_iter(f"{PREFIX}:job:*:*"):
        total += int(s.redis.strlen(key))
    return total


def finish(s: JobStore, job_id: str, result: bytes) -> None:
    assert s.transition(job_id, JobState.RUNNING, {"owner": "w"})[0]
    assert s.transition(job_id, JobState.SUCCEEDED, result=result, owner="w")[0]


def test_create_and_complete_once(store: JobStore) -> None:
    job_id, created = store.create(JobKind.FAST, "mosaic", {"max_side": 256}, {"content": b"img"})
    assert created and store.get(job_id).state == JobState.QUEUED
    assert store.blob(job_id, "content") == b"img"
    assert store.transition(job_id, JobState.RUNNING, {"owner": "a"})[0]
    assert store.transition(job_id, JobState.RUNNING, {"owner": "b"})[0]  # a redelivered job is taken over
    done, _ = store.transition(job_id, JobState.SUCCEEDED, result=b"png1")
    assert done
    # A second worker finishing the same job changes nothing: one result.
    done, before = store.transition(job_id, JobState.SUCCEEDED, result=b"png2")
    assert not done and before == "SUCCEEDED"
    assert store.blob(job_id, "result") == b"png1"
    assert store.redis.ttl(store.key(job_id)) > 0
    assert store.blob(job_id, "content") is None  # a finished job keeps only its result
    assert store.usage().image_bytes == stored_bytes(store) == 4


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

    s = JobStore("redis://127.0.0.1:1/0", ttl_s=60, idempotency_ttl_s=60, limits=ROOMY)
    with pytest.raises(UpstreamUnavailable):
        s.create(JobKind.FAST, "mosaic", {}, {"content": b"x"})


def test_only_the_owner_ends_a_job_and_a_live_one_is_not_taken(store: JobStore) -> None:
    job_id, _ = store.create(JobKind.FAST, "mosaic", {}, {"content": b"x"})
    assert store.transition(job_id, JobState.RUNNING, {"owner": "a"})[0]
    stale = now_ms() - 15_000
    # a duplicate delivery while "a" heartbeats: refused
    assert store.transition(job_id, JobState.RUNNING, {"owner": "b"}, stale_before_ms=stale) == (
        False,
        "RUNNING",
    )
    assert store.heartbeat(job_id, "a", {"iteration": 3}, b"preview")
    assert store.get(job_id).iteration == 3 and store.blob(job_id, "preview") == b"preview"
    assert not store.heartbeat(job_id, "b")  # not b's
    # "a" stops heartbeating: the job is lost, and taken over once
    store.redis.hset(store.key(job_id), "heartbeat_ms", stale - 1)
    store.redis.zadd(store.index_key("running"), {job_id: stale - 1})
    assert store.lost_jobs(stale) == [job_id]
    assert store.transition(job_id, JobState.QUEUED, {"owner": ""}, stale_before_ms=stale)[0]
    assert store.lost_jobs(stale) == []
    assert store.transition(job_id, JobState.RUNNING, {"owner": "b"}, stale_before_ms=stale)[0]
    # "a" comes back: its heartbeat, progress and result change nothing
    assert not store.heartbeat(job_id, "a", {"iteration": 99})
    assert store.transition(job_id, JobState.SUCCEEDED, result=b"a's", owner="a") == (False, "RUNNING")
    assert store.transition(job_id, JobState.SUCCEEDED, result=b"b's", owner="b")[0]
    job = store.get(job_id)
    assert job.state == JobState.SUCCEEDED and job.iteration != 99 and store.blob(job_id, "result") == b"b's"
    assert store.usage().running == 0


def test_oldest_results_are_dropped_first_by_count(store: JobStore) -> None:
    s = small_store(max_results=3)
    ids = []
    for i in range(5):
        job_id, _ = s.create(JobKind.FAST, "mosaic", {}, {"content": b"c" * 10})
        finish(s, job_id, b"r" * (100 + i))
        ids.append(job_id)
    assert [s.blob(i, "result") is not None for i in ids] == [False, False, True, True, True]
    assert [s.get(i).result_expired for i in ids] == [True, True, False, False, False]
    assert s.get(ids[0]).state == JobState.SUCCEEDED  # the record stays: it says why there is no result
    # 102 + 103 + 104 bytes of results left, exactly what is stored
    assert s.usage().image_bytes == stored_bytes(s) == 309


def test_oldest_results_are_dropped_first_by_bytes_and_a_full_store_refuses(store: JobStore) -> None:
    from fovea.common.errors import ResourceExhausted

    s = small_store(max_bytes=1000)
    done = []
    for _ in range(4):
        job_id, _ = s.create(JobKind.FAST, "mosaic", {}, {"content": b"c" * 100})
        finish(s, job_id, b"r" * 300)
        done.append(job_id)
    # 4 x 300 > 1000: the oldest result went when the fourth arrived
    assert [s.get(i).result_expired for i in done] == [True, False, False, False]
    assert s.usage().image_bytes == stored_bytes(s) == 900
    # a queued job's 400 bytes of inputs: two more results go to make room (900 + 400 > 1000, 600 + 400 = 1000)
    queued, _ = s.create(JobKind.GATYS, "", {}, {"content": b"c" * 200, "style": b"s" * 200})
    assert [s.get(i).result_expired for i in done] == [True, True, False, False]
    assert s.usage().image_bytes == stored_bytes(s) == 1000
    # inputs that cannot fit even with every result gone: refused, nothing written
    with pytest.raises(ResourceExhausted, match="full"):
        s.create(JobKind.FAST, "mosaic", {}, {"content": b"c" * 700})
    assert all(s.get(i).result_expired for i in done)  # (the results were dropped trying)
    assert s.usage().image_bytes == stored_bytes(s) == 400
    assert s.get(queued).state == JobState.QUEUED and s.blob(queued, "style") == b"s" * 200


def test_oldest_finished_records_are_deleted_beyond_the_cap(store: JobStore) -> None:
    s = small_store(max_records=2)
    ids = []
    for _ in range(4):
        job_id, _ = s.create(JobKind.FAST, "mosaic", {}, {"content": b"c"}, idempotency_key=f"k-{len(ids)}")
        finish(s, job_id, b"r")
        ids.append(job_id)
    active, _ = s.create(JobKind.FAST, "mosaic", {}, {"content": b"c"})  # active jobs do not count
    assert [bool(s.redis.exists(s.key(i))) for i in ids] == [False, False, True, True]
    assert not s.redis.exists(f"{PREFIX}:idem:k-0") and s.redis.exists(f"{PREFIX}:idem:k-3")
    assert s.get(active).state == JobState.QUEUED
    usage = s.usage()
    assert (usage.records, usage.results) == (2, 2) and usage.image_bytes == stored_bytes(s) == 3


def test_sweep_forgets_jobs_whose_records_expired(store: JobStore) -> None:
    job_id, _ = store.create(JobKind.GATYS, "", {}, {"content": b"c" * 10, "style": b"s" * 10})
    done_id, _ = store.create(JobKind.FAST, "mosaic", {}, {"content": b"c"})
    finish(store, done_id, b"r" * 5)
    store.redis.delete(
        store.key(job_id), store.key(job_id, "content"), store.key(job_id, "style")
    )  # as the TTL does
    assert store.usage().image_bytes == 25  # not yet known
    assert store.sweep() == 1
    assert store.usage().image_bytes == stored_bytes(store) == 5


def test_reaper_requeues_a_lost_job_once_and_fails_one_that_keeps_losing_workers(store: JobStore) -> None:
    from fovea.style.config import StyleSettings
    from fovea.style.reaper import WORKER_LOST, requeue_lost_jobs
    from fovea.style.tasks import QUEUE, create_app

    settings = StyleSettings(
        redis_url=URL, heartbeat_timeout_s=6, heartbeat_interval_s=2, max_worker_losses=2
    )
    celery = create_app(settings)
    store.redis.delete(QUEUE)
    lost, _ = store.create(JobKind.FAST, "mosaic", {}, {"content": b"c"})
    live, _ = store.create(JobKind.FAST, "mosaic", {}, {"content": b"c"})
    for job_id, owner in ((lost, "dead"), (live, "alive")):
        assert store.transition(job_id, JobState.RUNNING, {"owner": owner})[0]
    old = now_ms() - 7_000
    store.redis.hset(store.key(lost), "heartbeat_ms", old)
    store.redis.zadd(store.index_key("running"), {lost: old})
    assert requeue_lost_jobs(store, celery, settings) == [lost]
    assert requeue_lost_jobs(store, celery, settings) == []  # once
    job = store.get(lost)
    assert (job.state, job.error, job.worker_losses) == (JobState.QUEUED, WORKER_LOST, 1)
    assert store.get(live).state == JobState.RUNNING
    assert store.redis.llen(QUEUE) == 1  # one new message
    # it loses its second worker: max_worker_losses=2, so it fails
    assert store.transition(lost, JobState.RUNNING, {"owner": "dead-too"})[0]
    store.redis.hset(store.key(lost), "heartbeat_ms", old)
    store.redis.zadd(store.index_key("running"), {lost: old})
    assert requeue_lost_jobs(store, celery, settings) == []
    job = store.get(lost)
    assert job.state == JobState.FAILED and "lost 2 times" in job.error
    store.redis.delete(QUEUE)
