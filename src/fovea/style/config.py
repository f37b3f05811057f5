"""Style service and worker settings, from ``FOVEA_STYLE_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from fovea.common.settings import ServiceSettings


class StyleSettings(ServiceSettings):  # an unknown FOVEA_<SVC>_* variable stops the start
    model_config = SettingsConfigDict(env_prefix="FOVEA_STYLE_", extra="forbid")

    port: int = Field(50063, ge=0, le=65535, description="gRPC port (0 = any free port)")
    metrics_port: int = Field(9103, ge=0, le=65535, description="Prometheus /metrics port (0 = off)")
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis holding the Celery broker and job state"
    )
    worker_metrics_port: int = Field(
        9104, ge=0, le=65535, description="Celery worker's /metrics port (0 = off)"
    )
    worker_concurrency: int = Field(1, ge=1, le=64, description="Jobs one worker process runs at once")
    min_image_side: int = Field(16, ge=1, description="Smallest image side accepted, in pixels")
    fast_max_side: int = Field(1024, ge=64, le=4096, description="Longest side of a feed-forward result")
    gatys_max_side: int = Field(512, ge=32, le=2048, description="Upper bound of a Gatys job's max_side")
    gatys_default_side: int = Field(256, ge=32, le=2048, description="Gatys max_side when a job sets none")
    gatys_max_iterations: int = Field(2000, ge=1, le=100_000, description="Upper bound of Gatys iterations")
    gatys_default_iterations: int = Field(100, ge=1, le=100_000, description="Gatys iterations when unset")
    result_ttl_s: int = Field(
        24 * 3600, ge=60, description="How long results and job records are kept at most"
    )
    idempotency_ttl_s: int = Field(
        24 * 3600, ge=60, description="How long an idempotency key maps to its job"
    )
    max_queued_jobs: int = Field(
        1000, ge=1, description="Submissions beyond this queue depth -> RESOURCE_EXHAUSTED"
    )
    soft_time_limit_s: int = Field(480, ge=5, description="Celery soft time limit of one job")
    hard_time_limit_s: int = Field(540, ge=10, description="Celery hard time limit of one job")
    visibility_timeout_s: int = Field(
        600, ge=5, description="Redis broker: an unacknowledged job is redelivered after this (worker lost)"
    )
    max_retries: int = Field(5, ge=0, le=50, description="Retries of a job while Triton is UNAVAILABLE")
    retry_backoff_s: float = Field(2.0, gt=0, le=300, description="First retry delay; doubles each retry")
    watch_poll_s: float = Field(0.2, gt=0, le=10, description="How often WatchJob looks for progress")
    max_results: int = Field(
        500, ge=1, le=1_000_000, description="Result images kept; beyond it the oldest are dropped first"
    )
    max_stored_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024 * 1024,
        description="Bytes of all job images kept (queued jobs' inputs and results); the oldest results are "
        "dropped first, and a submission that still does not fit -> RESOURCE_EXHAUSTED",
    )
    max_job_records: int = Field(
        20_000, ge=1, le=10_000_000, description="Finished job records kept; beyond it the oldest are deleted"
    )
    heartbeat_interval_s: float = Field(
        2.0, gt=0, le=60, description="How often a worker marks the job it runs as alive"
    )
    heartbeat_timeout_s: float = Field(
        15.0,
        gt=0,
        le=600,
        description="A RUNNING job without a heartbeat this long is requeued (worker lost)",
    )
    max_worker_losses: int = Field(
        3, ge=1, le=100, description="A job whose worker is lost this many times fails instead of requeued"
    )
    reaper_interval_s: float = Field(
        5.0, gt=0, le=300, description="How often the service looks for jobs of lost workers"
    )

    @model_validator(mode="after")
    def _limits_in_order(self) -> StyleSettings:
        if not self.soft_time_limit_s < self.hard_time_limit_s < self.visibility_timeout_s:
            raise ValueError(
                "need soft_time_limit_s < hard_time_limit_s < visibility_timeout_s, or a running job would be "
                "redelivered to a second worker"
            )
        if self.heartbeat_timeout_s < 3 * self.heartbeat_interval_s:
            raise ValueError(
                "need heartbeat_timeout_s >= 3 * heartbeat_interval_s, or a slow heartbeat would requeue a job "
                "whose worker is alive"
            )
        if self.gatys_default_side > self.gatys_max_side:
            raise ValueError("gatys_default_side must not exceed gatys_max_side")
        return self
