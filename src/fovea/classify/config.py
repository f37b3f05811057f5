"""Classify service settings, from ``FOVEA_CLASSIFY_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from fovea.common.paths import model_repository
from fovea.common.settings import ServiceSettings


class ClassifySettings(ServiceSettings):  # an unknown FOVEA_<SVC>_* variable stops the start
    model_config = SettingsConfigDict(env_prefix="FOVEA_CLASSIFY_", extra="forbid")

    port: int = Field(50064, ge=0, le=65535, description="gRPC port (0 = any free port)")
    metrics_port: int = Field(9105, ge=0, le=65535, description="Prometheus /metrics port (0 = off)")
    triton_timeout_s: float = Field(30.0, gt=0, le=600, description="Deadline of one Triton call")
    triton_replicas_dns: str = Field(
        "",
        max_length=253,
        pattern=r"^[A-Za-z0-9.-]*$",
        description=(
            "DNS name whose addresses are every Triton replica (Kubernetes: a headless Service, "
            "triton-headless.<namespace>.svc): trained versions are loaded, deleted classifiers unloaded, "
            "on each, at the port of triton_url; empty = triton_url alone"
        ),
    )
    model_repository: Path = Field(
        default_factory=model_repository, description="Where the classifiers' labels.txt files live"
    )
    models: list[str] = Field(
        default_factory=lambda: ["classifier_imagenet"],
        min_length=1,
        description="Classifiers served (model directories with a labels.txt), checked at start-up",
    )
    default_model: str = Field("classifier_imagenet", description="Classifier used when a request names none")
    top_k: int = Field(5, ge=1, le=1000, description="Classes returned when a request asks for 0")
    min_image_side: int = Field(16, ge=1, description="Smallest image side accepted, in pixels")
    # ---- training (TrainClassifier jobs, the classify worker)
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis holding the training jobs, the Celery broker, the features",
    )
    trained_repository: Path | None = Field(
        None,
        description=(
            "Triton repository the trained classifiers are written to (the stack's <data dir>/user-models, "
            "which Triton serves too); unset = training is off"
        ),
    )
    backbone_model: str = Field(
        "classifier_imagenet", description="Triton model whose FEATURES the new softmax layers are trained on"
    )
    max_versions: int = Field(
        5, ge=1, le=100, description="Versions kept per trained classifier (oldest dropped)"
    )
    min_images_per_class: int = Field(10, ge=2, le=10_000, description="Fewest images a class may have")
    min_pad_bursts: int = Field(
        8,
        ge=2,
        le=10_000,
        description="The pad recipe: fewest bursts of each kind (bona fide, attack); see the README's learning curve",
    )
    max_training_images: int = Field(
        1000, ge=4, le=100_000, description="Most images one training set may have"
    )
    max_training_bytes: int = Field(
        30 * 1024 * 1024, ge=1024, description="Most encoded image bytes one training set may have"
    )
    max_epochs: int = Field(500, ge=1, le=10_000, description="Upper bound of a job's epochs")
    default_epochs: int = Field(30, ge=1, le=10_000, description="Epochs when a job sets none")
    default_learning_rate: float = Field(0.01, gt=0, le=1, description="Adam step size when a job sets none")
    default_validation_fraction: float = Field(0.15, ge=0.05, le=0.5, description="Held-out share per class")
    default_augment_copies: int = Field(2, ge=0, le=8, description="Augmented copies per training image")
    default_weight_decay: float = Field(1e-4, ge=0, le=1, description="L2 weight decay of the head")
    feature_batch: int = Field(8, ge=1, le=32, description="Images per Triton call when computing features")
    train_triton_timeout_s: float = Field(
        300.0,
        gt=0,
        le=3600,
        description="Deadline of one Triton call of a training job (features, load_model)",
    )
    feature_cache_ttl_s: int = Field(
        7 * 24 * 3600, ge=60, description="How long computed features stay cached in Redis (by image SHA-256)"
    )
    job_ttl_s: int = Field(
        7 * 24 * 3600, ge=60, description="How long a finished training job's record is kept"
    )
    max_queued_jobs: int = Field(100, ge=1, description="Training jobs queued at most -> RESOURCE_EXHAUSTED")
    watch_poll_s: float = Field(0.2, gt=0, le=10, description="How often WatchTrainingJob looks for progress")
    job_lease_s: float = Field(
        15.0,
        ge=2,
        le=3600,
        description=(
            "A running job stays its worker's this long without a heartbeat: then its worker counts as lost and "
            "the classify service queues the job again (a redelivered message does not start it while fresh)"
        ),
    )
    heartbeat_interval_s: float = Field(
        2.0, gt=0, le=600, description="How often the worker renews the lease of the job it runs"
    )
    reaper_interval_s: float = Field(
        2.0, gt=0, le=600, description="How often the classify service looks for jobs of lost workers"
    )
    max_worker_losses: int = Field(
        3,
        ge=1,
        le=100,
        description="A job whose worker was lost this many times fails instead of running again (it may be the cause)",
    )
    max_watch_streams: int = Field(
        200,
        ge=1,
        le=100_000,
        description="WatchTrainingJob streams open at once per process -> RESOURCE_EXHAUSTED",
    )
    watch_max_s: float = Field(
        3600.0,
        gt=0,
        le=7 * 24 * 3600,
        description="Longest WatchTrainingJob stream (then DEADLINE_EXCEEDED: watch again)",
    )
    visibility_timeout_s: int = Field(
        3600, ge=5, description="Redis broker: an unacknowledged job is redelivered after this (worker lost)"
    )
    worker_metrics_port: int = Field(
        9106, ge=0, le=65535, description="Classify worker's /metrics port (0 = off)"
    )

    @model_validator(mode="after")
    def _heartbeats_within_the_lease(self) -> ClassifySettings:
        if self.heartbeat_interval_s * 2 > self.job_lease_s:
            raise ValueError(
                f"heartbeat_interval_s ({self.heartbeat_interval_s}) must be at most half of job_lease_s "
                f"({self.job_lease_s}): one late heartbeat must not make a live worker look lost"
            )
        return self
