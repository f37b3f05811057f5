"""fovea.classify.reaper against a real Redis (the broker too): a job whose worker stopped renewing its lease
is put back to QUEUED and its message sent again, once whatever the number of reapers; a live job is left
alone; a job that lost its worker ``max_worker_losses`` times fails."""

from __future__ import annotations

import json
import time
from pathlib import Path

import redis

from fovea.classify.config import ClassifySettings
from fovea.classify.reaper import WORKER_LOST, requeue_lost_jobs
from fovea.classify.store import FAILED, QUEUED, RUNNING, STARTED, TrainingStore
from fovea.classify.tasks import QUEUE, TASK_NAME, create_app


def test_a_lost_workers_job_is_requeued_once_and_a_live_one_left_alone(
    redis_url: str, tmp_path: Path
) -> None:
    settings = ClassifySettings(redis_url=redis_url, trained_repository=tmp_path, max_worker_losses=2)
    store = TrainingStore(redis_url, 600, 600, lease_s=1.0)
    client = redis.Redis.from_url(redis_url)
    client.delete(QUEUE)
    celery = create_app(settings)
    lost = store.create("lost", [b"x"], ["a"], {"epochs": 1})
    alive = store.create("alive", [b"x"], ["a"], {"epochs": 1})
    assert store.start(lost, "killed") == STARTED and store.start(alive, "running") == STARTED
    time.sleep(1.1)
    assert store.heartbeat(alive, "running")  # its worker beats; the other's stopped
    assert requeue_lost_jobs(store, celery, settings) == [lost]
    # the live worker beats again, as it does every lease / 3: the first pass's first message (a cold broker
    # connection) may take long on a busy machine
    assert store.heartbeat(alive, "running")
    assert requeue_lost_jobs(store, celery, settings) == []  # a second pass (another replica) finds nothing
    job = store.get(lost)
    assert (job.state, job.error, job.worker_losses) == (QUEUED, WORKER_LOST, 1)
    assert store.get(alive).state == RUNNING
    assert store.finish(alive, FAILED, owner="running", error="done with it")
    [message] = client.lrange(QUEUE, 0, -1)
    assert json.loads(message)["headers"]["task"] == TASK_NAME
    assert json.loads(message)["headers"]["argsrepr"] == repr([lost])
    client.delete(QUEUE)
    # lost again: the second loss is the last (max_worker_losses=2); the classifier is free again
    assert store.start(lost, "killed-again") == STARTED
    time.sleep(1.1)
    assert requeue_lost_jobs(store, celery, settings) == [] and client.llen(QUEUE) == 0
    job = store.get(lost)
    assert (job.state, job.worker_losses) == (FAILED, 2)
    assert job.error == "the worker running it was lost 2 times; not retried"
    store.create("lost", [b"y"], ["a"], {"epochs": 1})
