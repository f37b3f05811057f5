"""The Celery application of the classify capability's training jobs (Redis broker) and its one task.

Its own queue (``fovea.classify``) and worker process (``fovea worker classify``), not the style worker's:
a training job holds a core for its head training and a burst of Triton calls for its features, while style
jobs wait on Triton; separate workers scale (and are limited) apart, and each reads its own settings.
``acks_late`` because a rerun is harmless: the store lets a job that ended run no further, a job another worker
holds (a fresh lease, renewed by its heartbeat) is not started twice, and a job that added its version already
gets that version back (``TrainedRepository.add_version``). A worker that dies stops renewing its job's lease,
and the classify service queues the job again within ``job_lease_s`` + ``reaper_interval_s``
(``fovea.classify.reaper``); the unacknowledged message Redis redelivers after the visibility timeout then
finds the job ended or running elsewhere and does nothing. Retries only for Triton or Redis UNAVAILABLE, with
backoff and a bound (the job waits QUEUED meanwhile).
"""

from __future__ import annotations

import logging

from celery import Celery, Task

from fovea.classify.config import ClassifySettings
from fovea.classify.replicas import TritonReplicas
from fovea.classify.store import BUSY, FAILED, TrainingStore
from fovea.classify.trained import TrainedRepository
from fovea.classify.trainer import Trainer
from fovea.common.errors import NotFound, UpstreamUnavailable
from fovea.common.jobs import create_celery
from fovea.common.server import internal_token
from fovea.common.triton import SyncTritonClient

log = logging.getLogger(__name__)

TASK_NAME = "fovea.classify.v1.train"
QUEUE = "fovea.classify"
MAX_RETRIES = 5
RETRY_BACKOFF_S = 2.0


def create_app(settings: ClassifySettings) -> Celery:
    """The Celery app on the Redis broker, without tasks (enough to send jobs by name)."""
    return create_celery("fovea.classify", settings.redis_url, QUEUE, settings.visibility_timeout_s)


def open_store(settings: ClassifySettings) -> TrainingStore:
    return TrainingStore(
        settings.redis_url, settings.job_ttl_s, settings.feature_cache_ttl_s, settings.job_lease_s
    )


def open_repository(settings: ClassifySettings) -> TrainedRepository:
    if settings.trained_repository is None:
        raise ValueError("FOVEA_CLASSIFY_TRAINED_REPOSITORY is not set: training needs a writable repository")
    return TrainedRepository(settings.trained_repository, settings.max_versions)


def create_trainer(settings: ClassifySettings) -> Trainer:
    token = internal_token(settings.internal_token_file)
    return Trainer(
        settings,
        open_store(settings),
        SyncTritonClient(settings.triton_url, timeout_s=settings.train_triton_timeout_s, token=token),
        open_repository(settings),
        open_replicas(settings, token),
    )


def open_replicas(settings: ClassifySettings, token: bytes | str | None) -> TritonReplicas | None:
    """Every Triton replica, when ``triton_replicas_dns`` names them; None = ``triton_url`` alone."""
    if not settings.triton_replicas_dns:
        return None
    return TritonReplicas(settings.triton_replicas_dns, settings.triton_url, token=token)


def register_train(app: Celery, trainer: Trainer) -> Task:
    """Define the ``fovea.classify.v1.train`` task on ``app``, running jobs with ``trainer``."""

    @app.task(name=TASK_NAME, bind=True, max_retries=MAX_RETRIES, shared=False)
    def train(self: Task, job_id: str) -> str:
        try:
            state = trainer.run(job_id)
            if state == BUSY:  # running elsewhere: should that worker be lost, the reaper queues it again
                log.info("training job %s runs on another worker: nothing to do here", job_id)
            return state
        except NotFound:
            log.info("training job %s is gone (expired): nothing to do", job_id)
            return "GONE"
        except UpstreamUnavailable as exc:
            if self.request.retries >= MAX_RETRIES:
                trainer.store.finish(job_id, FAILED, error=f"unavailable after {MAX_RETRIES} retries: {exc}")
                return FAILED  # QUEUED since the last try (no owner): ended here, once
            raise self.retry(exc=exc, countdown=RETRY_BACKOFF_S * 2**self.request.retries) from exc

    return train  # type: ignore[no-any-return]
