"""The Celery application of the style capability (Redis broker) and its one task.

``acks_late`` because the result is keyed by job id (a rerun after a lost worker is harmless and the state
machine in the store lets only one run complete the job); retries only for Triton UNAVAILABLE, with backoff
and a bound. The worker runs a thread pool (the work happens in Triton), where Celery's own time limits
do not apply: the runner enforces the soft limit between progress updates and Triton calls carry the hard
limit as their timeout. A worker that dies leaves its job unacknowledged in Redis, which redelivers it
after the visibility timeout.
"""

from __future__ import annotations

import logging
import time

from celery import Celery, Task
from celery.signals import worker_init

from fovea.common.errors import UpstreamUnavailable
from fovea.common.metrics import serve_metrics
from fovea.common.triton import SyncTritonClient
from fovea.models.multistyle import STYLE_NAMES
from fovea.style.config import StyleSettings
from fovea.style.core.jobs import JobState
from fovea.style.metrics import JOB_DURATION, JOBS_FINISHED
from fovea.style.runner import JobRunner
from fovea.style.store import JobStore

log = logging.getLogger(__name__)

TASK_NAME = "fovea.style.v1.transfer"
QUEUE = "fovea.style"


def create_app(settings: StyleSettings) -> Celery:
    app = Celery("fovea.style", broker=settings.redis_url, backend=None)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_default_queue=QUEUE,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app


settings = StyleSettings()
app = create_app(settings)
_runner: JobRunner | None = None


def runner() -> JobRunner:
    global _runner
    if _runner is None:
        store = JobStore(settings.redis_url, settings.result_ttl_s, settings.idempotency_ttl_s)
        triton = SyncTritonClient(settings.triton_url, timeout_s=settings.hard_time_limit_s)
        _runner = JobRunner(store, triton, STYLE_NAMES, settings.soft_time_limit_s)
    return _runner


@app.task(name=TASK_NAME, bind=True, max_retries=settings.max_retries)
def transfer(self: Task, job_id: str, kind: str) -> str:
    start = time.perf_counter()
    state = JobState.FAILED
    try:
        state = runner().run(job_id)
    except UpstreamUnavailable as exc:
        if self.request.retries >= settings.max_retries:
            runner().store.transition(
                job_id,
                JobState.FAILED,
                {"error": f"Triton unavailable after {settings.max_retries} retries: {exc}"},
            )
            return JobState.FAILED.value
        state = JobState.QUEUED
        raise self.retry(exc=exc, countdown=settings.retry_backoff_s * 2**self.request.retries) from exc
    finally:
        JOB_DURATION.labels(kind, state.value).observe(time.perf_counter() - start)
        JOBS_FINISHED.labels(kind, state.value).inc()
    return state.value


@worker_init.connect
def _metrics(**_: object) -> None:
    serve_metrics(settings.host, settings.worker_metrics_port)
