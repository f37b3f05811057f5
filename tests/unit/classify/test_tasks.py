"""fovea.classify.tasks: a message for a job another worker holds (a fresh lease) does not run it, and is not
sent again: should that worker be lost, the classify service's reaper queues the job (against a real Redis,
the broker too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import redis

from fovea.classify.config import ClassifySettings
from fovea.classify.store import BUSY, RUNNING, STARTED, TrainingStore
from fovea.classify.tasks import QUEUE, create_app, register_train
from fovea.classify.trained import TrainedRepository
from fovea.classify.trainer import Trainer


def test_a_job_held_elsewhere_is_left_to_its_worker(redis_url: str, tmp_path: Path) -> None:
    settings = ClassifySettings(redis_url=redis_url, trained_repository=tmp_path)
    store = TrainingStore(redis_url, 600, 600, lease_s=120)
    job_id = store.create("bins", [b"x"], ["a"], {"epochs": 1})
    assert store.start(job_id, "another-worker") == STARTED
    client = redis.Redis.from_url(redis_url)
    client.delete(QUEUE)
    app = create_app(settings)
    trainer = Trainer(settings, store, cast(Any, None), TrainedRepository(tmp_path))  # no Triton: not reached
    train = register_train(app, trainer)
    assert train.apply(args=[job_id]).get() == BUSY  # run here, now: the job is not started a second time
    assert store.get(job_id).state == RUNNING and store.get(job_id).stage == "starting"
    assert client.lrange(QUEUE, 0, -1) == []  # not sent again: its lease, and the reaper, look after it
