"""fovea.classify.store: every Redis error is UNAVAILABLE, job ids are checked before Redis is asked, a
running job's lease keeps a redelivered message from starting it twice, a job of a lost worker is requeued
once and ends once, and one classifier has one job at a time (against a real Redis)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
from ports import free_port

from fovea.classify.store import (
    BUSY,
    ENDED,
    FAILED,
    QUEUED,
    RUNNING,
    STARTED,
    SUCCEEDED,
    TakenOver,
    TrainingInProgress,
    TrainingStore,
    check_job_id,
)
from fovea.common.errors import NotFound, UpstreamUnavailable

JOB = "0123456789abcdef0123456789abcdef"

CALLS: dict[str, Callable[[TrainingStore], object]] = {
    "create": lambda s: s.create("bins", [b"x"], ["a"], {"epochs": 1}),
    "drop": lambda s: s.drop(JOB),
    "get": lambda s: s.get(JOB),
    "inputs": lambda s: s.inputs(JOB),
    "update": lambda s: s.update(JOB, "me", stage="x"),
    "heartbeat": lambda s: s.heartbeat(JOB, "me"),
    "lost_jobs": lambda s: s.lost_jobs(),
    "requeue": lambda s: s.requeue(JOB, "lost"),
    "requeue_own": lambda s: s.requeue_own(JOB, "me", "waiting"),
    "sources": lambda s: s.sources(JOB),
    "start": lambda s: s.start(JOB, "me"),
    "lease_left": lambda s: s.lease_left(JOB),
    "finish": lambda s: s.finish(JOB, FAILED, error="x"),
    "queued": lambda s: s.queued("fovea.classify"),
    "cached_features": lambda s: s.cached_features("b", ["d"]),
    "cache_features": lambda s: s.cache_features("b", ["d"], np.zeros((1, 4), np.float32)),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_call_is_unavailable_when_redis_is_down(name: str) -> None:
    store = TrainingStore(f"redis://127.0.0.1:{free_port()}/0", 60, 60)
    with pytest.raises(UpstreamUnavailable) as err:
        CALLS[name](store)
    assert "127.0.0.1" not in str(err.value)


@pytest.mark.parametrize("job_id", [f"{JOB}:images", JOB.upper(), JOB[:-1], "", "*", f"{JOB}\n"])
def test_a_job_id_create_could_not_have_made_is_not_found(job_id: str) -> None:
    store = TrainingStore(f"redis://127.0.0.1:{free_port()}/0", 60, 60)  # never asked: it does not answer
    with pytest.raises(NotFound, match="32 hex digits"):
        store.get(job_id)
    with pytest.raises(NotFound):
        check_job_id(job_id)
    assert check_job_id(JOB) == JOB


def test_a_running_job_is_leased_to_its_worker(redis_url: str) -> None:
    store = TrainingStore(redis_url, 60, 60, lease_s=0.5)
    job_id = store.create("bins", [b"x"], ["a"], {"epochs": 1})
    assert store.start(job_id, "worker-a") == STARTED
    assert store.start(job_id, "worker-b") == BUSY  # a redelivered message while worker-a runs it
    assert store.get(job_id).state == RUNNING
    assert 0 < store.lease_left(job_id) <= 0.5
    time.sleep(0.3)
    store.update(job_id, "worker-a", stage="epoch 1/1")  # progress renews the lease
    time.sleep(0.3)
    assert store.start(job_id, "worker-b") == BUSY
    time.sleep(0.6)  # worker-a lost: its lease runs out
    assert store.lease_left(job_id) == 0
    assert store.start(job_id, "worker-b") == STARTED
    store.finish(job_id, FAILED, error="x")
    assert store.start(job_id, "worker-c") == ENDED
    assert store.inputs(job_id) == ([], [])


def test_a_job_whose_lease_ran_out_is_requeued_once_and_ends_once(redis_url: str) -> None:
    store = TrainingStore(redis_url, 60, 60, lease_s=0.3)
    job_id = store.create("lost", [b"x"], ["a"], {"epochs": 1}, sources=["a/x.jpg"])
    assert store.sources(job_id) == ["a/x.jpg"]
    assert store.start(job_id, "worker-a") == STARTED
    assert store.heartbeat(job_id, "worker-a")  # alive: nothing to requeue
    assert job_id not in store.lost_jobs() and store.requeue(job_id, "lost") == 0
    time.sleep(0.4)  # worker-a killed: no heartbeat
    assert store.lost_jobs() == [job_id]
    assert store.requeue(job_id, "worker lost") == 1  # its first loss
    assert store.requeue(job_id, "worker lost") == 0  # a second reaper finds it requeued already
    job = store.get(job_id)
    assert (job.state, job.error, job.owner, job.worker_losses) == (QUEUED, "worker lost", "", 1)
    assert store.lost_jobs() == []
    assert store.start(job_id, "worker-b") == STARTED
    assert store.get(job_id).error == ""
    assert not store.heartbeat(job_id, "worker-a")  # worker-a's late heartbeat changes nothing
    with pytest.raises(TakenOver):
        store.update(job_id, "worker-a", stage="epoch 9/9")
    assert not store.finish(job_id, SUCCEEDED, owner="worker-a", result={"version": 1})
    assert store.finish(job_id, SUCCEEDED, owner="worker-b", result={"version": 1})
    assert not store.finish(job_id, FAILED, owner="worker-b", error="again")  # it ends once
    job = store.get(job_id)
    assert (job.state, job.attempts, job.worker_losses, job.result) == (SUCCEEDED, 2, 1, {"version": 1})
    assert store.lost_jobs() == [] and store.inputs(job_id) == ([], [])


def test_one_job_per_classifier_at_a_time(redis_url: str) -> None:
    store = TrainingStore(redis_url, 60, 60)
    first = store.create("one", [b"x"], ["a"], {"epochs": 1})
    other = store.create("two", [b"x"], ["a"], {"epochs": 1})  # another classifier is not held up
    with pytest.raises(TrainingInProgress) as err:
        store.create("one", [b"y"], ["a"], {"epochs": 1})
    assert err.value.code.name == "FAILED_PRECONDITION"
    assert f"classifier 'one' is being trained by job {first} (QUEUED" in str(err.value)
    assert f"fovea classifiers job {first}" in str(err.value)
    assert store.start(first, "w") == STARTED
    with pytest.raises(TrainingInProgress, match="RUNNING"):
        store.create("one", [b"y"], ["a"], {"epochs": 1})
    assert store.finish(first, FAILED, owner="w", error="x")
    again = store.create("one", [b"y"], ["a"], {"epochs": 1})  # the first ended: its hold is gone
    store.drop(again)  # a job that could not be queued lets go too
    store.create("one", [b"z"], ["a"], {"epochs": 1})
    store.redis.delete(store.key(other))  # a job record that expired without letting go: a stale hold
    store.create("two", [b"z"], ["a"], {"epochs": 1})


def test_a_run_waiting_for_an_upstream_gives_its_job_back(redis_url: str) -> None:
    store = TrainingStore(redis_url, 60, 60, lease_s=0.3)
    job_id = store.create("waits", [b"x"], ["a"], {"epochs": 1})
    assert store.start(job_id, "w") == STARTED
    assert not store.requeue_own(job_id, "other", "waiting")
    assert store.requeue_own(job_id, "w", "waiting for Triton")
    job = store.get(job_id)
    assert (job.state, job.error, job.worker_losses) == (QUEUED, "waiting for Triton", 0)
    time.sleep(0.4)
    assert store.lost_jobs() == []  # not a lost worker's: the retry starts it again
