"""fovea.classify.store: every Redis error is UNAVAILABLE, job ids are checked before Redis is asked, and a
running job's lease keeps a redelivered message from starting it twice (against a real Redis)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
from ports import free_port

from fovea.classify.store import BUSY, ENDED, FAILED, RUNNING, STARTED, TrainingStore, check_job_id
from fovea.common.errors import NotFound, UpstreamUnavailable

JOB = "0123456789abcdef0123456789abcdef"

CALLS: dict[str, Callable[[TrainingStore], object]] = {
    "create": lambda s: s.create("bins", [b"x"], ["a"], {"epochs": 1}),
    "drop": lambda s: s.drop(JOB),
    "get": lambda s: s.get(JOB),
    "inputs": lambda s: s.inputs(JOB),
    "update": lambda s: s.update(JOB, stage="x"),
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
    store.update(job_id, stage="epoch 1/1")  # progress renews the lease
    time.sleep(0.3)
    assert store.start(job_id, "worker-b") == BUSY
    time.sleep(0.6)  # worker-a lost: its lease runs out
    assert store.lease_left(job_id) == 0
    assert store.start(job_id, "worker-b") == STARTED
    store.finish(job_id, FAILED, error="x")
    assert store.start(job_id, "worker-c") == ENDED
    assert store.inputs(job_id) == ([], [])
