"""Jobs of lost workers, noticed in seconds: the style service looks every ``reaper_interval_s`` for RUNNING
jobs whose heartbeat is older than ``heartbeat_timeout_s``, marks them QUEUED ("worker lost; requeued") and
queues them again; a job that lost its worker ``max_worker_losses`` times fails instead (it may be what
kills its workers). The store's
transition script is the judge: a job moves only while its heartbeat is still stale, so of several
services looking at once (replicas) one requeues it, and a worker that comes back changes nothing.

The same loop sweeps the store's indexes of jobs whose records expired by their TTL.
"""

from __future__ import annotations

import asyncio
import logging

from celery import Celery

from fovea.common.errors import NotFound, UpstreamUnavailable
from fovea.style.config import StyleSettings
from fovea.style.core.jobs import JobState
from fovea.style.metrics import JOBS_REQUEUED
from fovea.style.store import JobStore, now_ms
from fovea.style.tasks import QUEUE, TASK_NAME

log = logging.getLogger(__name__)

WORKER_LOST = "worker lost; requeued"


def requeue_lost_jobs(store: JobStore, celery: Celery, settings: StyleSettings) -> list[str]:
    """One pass: requeue (or fail) every RUNNING job whose heartbeat stopped; returns the requeued ids."""
    stale_before = now_ms() - int(settings.heartbeat_timeout_s * 1000)
    requeued = []
    for job_id in store.lost_jobs(stale_before):
        try:
            job = store.get(job_id)
        except NotFound:  # its record expired: the transition finds no job and drops the index entry
            store.transition(job_id, JobState.FAILED, stale_before_ms=stale_before)
            continue
        losses = job.worker_losses + 1
        if losses >= settings.max_worker_losses:
            error = f"the worker running it was lost {losses} times; not retried"
            fields = {"error": error, "worker_losses": losses}
            if store.transition(job_id, JobState.FAILED, fields, stale_before_ms=stale_before)[0]:
                log.warning("job %s failed: %s", job_id, error)
            continue
        done, _ = store.transition(
            job_id,
            JobState.QUEUED,
            {"error": WORKER_LOST, "owner": "", "worker_losses": losses},
            stale_before_ms=stale_before,
        )
        if not done:
            continue  # its worker came back, or another service requeued it first
        age_s = (now_ms() - job.heartbeat_ms) / 1000 if job.heartbeat_ms else float("nan")
        log.warning("job %s: worker lost (%s, last heartbeat %.1fs ago): requeued", job_id, job.owner, age_s)
        try:
            celery.send_task(TASK_NAME, args=[job_id, job.kind.value], queue=QUEUE)
        except Exception as exc:  # noqa: BLE001 - the broker's message of the lost run is redelivered later
            log.warning("could not queue job %s again: %s: %s", job_id, type(exc).__name__, exc)
            continue
        JOBS_REQUEUED.inc()
        requeued.append(job_id)
    return requeued


async def reap_forever(store: JobStore, celery: Celery, settings: StyleSettings) -> None:
    """Requeue jobs of lost workers and sweep expired index entries until cancelled."""
    while True:
        await asyncio.sleep(settings.reaper_interval_s)
        try:
            await asyncio.to_thread(requeue_lost_jobs, store, celery, settings)
            await asyncio.to_thread(store.sweep)
        except UpstreamUnavailable:
            continue  # logged by the store; the next pass tries again
        except Exception:  # noqa: BLE001 - the loop must outlive any one failure
            log.exception("looking for jobs of lost workers failed")
