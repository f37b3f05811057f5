"""Training jobs of lost workers, noticed in seconds (as ``fovea.style.reaper`` does for style jobs): the
classify service looks every ``reaper_interval_s`` for RUNNING jobs whose lease ran out (their worker stopped
renewing it: killed, its host gone), puts them back to QUEUED ("worker lost; requeued") and queues them again;
a job whose worker was lost ``max_worker_losses`` times fails instead (it may be what kills its workers).
The store's scripts are the judge: a job moves only while its lease is still out, so of several services
looking at once (replicas) one requeues it, and a worker that comes back finds the job no longer its own.
"""

from __future__ import annotations

import asyncio
import logging

from celery import Celery

from fovea.classify.config import ClassifySettings
from fovea.classify.store import FAILED, TrainingStore
from fovea.classify.tasks import QUEUE, TASK_NAME
from fovea.common.errors import UpstreamUnavailable

log = logging.getLogger(__name__)

WORKER_LOST = "worker lost; requeued"


def requeue_lost_jobs(store: TrainingStore, celery: Celery, settings: ClassifySettings) -> list[str]:
    """One pass: requeue (or fail) every RUNNING job whose lease ran out; returns the requeued ids."""
    requeued = []
    for job_id in store.lost_jobs():
        losses = store.requeue(job_id, WORKER_LOST)
        if not losses:
            continue  # a heartbeat came meanwhile, or another service requeued it first
        if losses >= settings.max_worker_losses:
            error = f"the worker running it was lost {losses} times; not retried"
            if store.finish(job_id, FAILED, error=error):
                log.warning("training job %s failed: %s", job_id, error)
            continue
        log.warning("training job %s: worker lost (lease ran out): requeued, loss %d", job_id, losses)
        try:
            celery.send_task(TASK_NAME, args=[job_id], queue=QUEUE)
        except Exception as exc:  # noqa: BLE001 - the broker redelivers the lost run's message later
            log.warning("could not queue training job %s again: %s: %s", job_id, type(exc).__name__, exc)
            continue
        requeued.append(job_id)
    return requeued


async def reap_forever(store: TrainingStore, celery: Celery, settings: ClassifySettings) -> None:
    """Requeue training jobs of lost workers until cancelled."""
    while True:
        await asyncio.sleep(settings.reaper_interval_s)
        try:
            await asyncio.to_thread(requeue_lost_jobs, store, celery, settings)
        except UpstreamUnavailable:
            continue  # Redis is down; the next pass tries again
        except Exception:  # noqa: BLE001 - the loop must outlive any one failure
            log.exception("looking for training jobs of lost workers failed")
