"""Faces service settings, from ``FOVEA_FACES_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FacesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FOVEA_FACES_", extra="forbid")

    host: str = Field("127.0.0.1", description="Address the gRPC server binds to")
    port: int = Field(50062, ge=0, le=65535, description="gRPC port (0 = any free port)")
    metrics_port: int = Field(9102, ge=0, le=65535, description="Prometheus /metrics port (0 = off)")
    triton_url: str = Field("127.0.0.1:8001", description="Triton gRPC host:port")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis holding galleries and templates")
    max_message_bytes: int = Field(32 * 1024 * 1024, ge=1024 * 1024, le=512 * 1024 * 1024)
    log_level: str = Field("INFO", description="Python logging level")
