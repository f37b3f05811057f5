"""Style service settings, from ``FOVEA_STYLE_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StyleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FOVEA_STYLE_", extra="forbid")

    host: str = Field("127.0.0.1", description="Address the gRPC server binds to")
    port: int = Field(50063, ge=0, le=65535, description="gRPC port (0 = any free port)")
    metrics_port: int = Field(9103, ge=0, le=65535, description="Prometheus /metrics port (0 = off)")
    triton_url: str = Field("127.0.0.1:8001", description="Triton gRPC host:port")
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis holding the Celery broker and job state"
    )
    max_message_bytes: int = Field(32 * 1024 * 1024, ge=1024 * 1024, le=512 * 1024 * 1024)
    log_level: str = Field("INFO", description="Python logging level")
    worker_metrics_port: int = Field(
        9104, ge=0, le=65535, description="Celery worker's /metrics port (0 = off)"
    )
    worker_concurrency: int = Field(1, ge=1, le=64, description="Jobs one worker process runs at once")
