"""The Celery application of the style capability (Redis broker) and its one task.

Nothing is built at import: the style service calls :func:`create_app` to send jobs; the worker
(``fovea.style.worker``) builds the app, the runner and the task from its settings.

``acks_late`` because the result is keyed by job id (a rerun after a lost worker is harmless and the state
machine in the store lets only one run complete the job); retries only for Triton UNAVAILABLE, with backoff
and a bound. The worker runs a thread pool (the work happens in Triton), where Celery's own time limits
do not apply: the runner enforces the soft limit between progress updates and Triton calls carry the hard
limit as their timeout. A worker that dies stops heartbeating its job, and the style service requeues it
within ``heartbeat_timeout_s`` + ``reaper_interval_s`` (``fovea.style.reaper``); the unacknowledged message
Redis redelivers after the visibility timeout then finds the job finished or running and does nothing.
"""

from __future__ import annotations

import logging
import time

from celery import Celery, Task

from fovea.common.errors import NotFound, UpstreamUnavailable
from fovea.common.images import limits_from
from fovea.common.jobs import Heartbeats, create_celery
from fovea.common.server import internal_token
from fovea.common.triton import SyncTritonClient
from fovea.style.config import StyleSettings
from fovea.style.core.jobs import JobState
from fovea.style.metrics import JOB_DURATION, JOBS_FINISHED
from fovea.style.runner import JobRunner
from fovea.style.store import open_store

log = logging.getLogger(__name__)

TASK_NAME = "fovea.style.v1.transfer"
QUEUE = "fovea.style"


def create_app(settings: StyleSettings) -> Celery:
    """The Celery app on the Redis broker, without tasks (enough to send jobs by name)."""
    return create_celery("fovea.style", settings.redis_url, QUEUE, settings.visibility_timeout_s)


def create_runner(settings: StyleSettings) -> JobRunner:
    store = open_store(settings)
    return JobRunner(
        store,
        SyncTritonClient(
            settings.triton_url,
            timeout_s=settings.hard_time_limit_s,
            token=internal_token(settings.internal_token_file),
        ),
        time_limit_s=settings.soft_time_limit_s,
        limits=limits_from(settings),
        heartbeats=Heartbeats(store.heartbeat, settings.heartbeat_interval_s, "style-heartbeats"),
        heartbeat_timeout_s=settings.heartbeat_timeout_s,
    )


def register_transfer(app: Celery, settings: StyleSettings, runner: JobRunner) -> Task:
    """Define the ``fovea.style.v1.transfer`` task on ``app``, running jobs with ``runner``."""

    @app.task(name=TASK_NAME, bind=True, max_retries=settings.max_retries, shared=False)
    def transfer(self: Task, job_id: str, kind: str) -> str:
        start = time.perf_counter()
        state: JobState | None = JobState.FAILED
        try:
            state = runner.run(job_id)
        except NotFound:
            # a late redelivery of a job whose record was dropped (the store's caps or TTL): nothing to do
            state = None
            log.info("job %s is gone (expired or dropped): nothing to do", job_id)
            return "GONE"
        except UpstreamUnavailable as exc:
            if self.request.retries >= settings.max_retries:
                runner.store.transition(
                    job_id,
                    JobState.FAILED,
                    {"error": f"Triton unavailable after {settings.max_retries} retries: {exc}"},
                )
                return JobState.FAILED.value
            state = JobState.QUEUED
            raise self.retry(exc=exc, countdown=settings.retry_backoff_s * 2**self.request.retries) from exc
        finally:
            if state is not None:
                JOB_DURATION.labels(kind, state.value).observe(time.perf_counter() - start)
                JOBS_FINISHED.labels(kind, state.value).inc()
        return state.value

    return transfer  # type: ignore[no-any-return]
