"""Classify service settings, from ``FOVEA_CLASSIFY_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from fovea.common.settings import FoveaSettings
from fovea.stack.config import REPO_ROOT


class ClassifySettings(FoveaSettings):  # an unknown FOVEA_<SVC>_* variable stops the start
    model_config = SettingsConfigDict(env_prefix="FOVEA_CLASSIFY_", extra="forbid")

    host: str = Field("127.0.0.1", description="Address the gRPC server binds to")
    port: int = Field(50064, ge=0, le=65535, description="gRPC port (0 = any free port)")
    metrics_port: int = Field(9105, ge=0, le=65535, description="Prometheus /metrics port (0 = off)")
    triton_url: str = Field("127.0.0.1:8001", description="Triton gRPC host:port")
    triton_timeout_s: float = Field(30.0, gt=0, le=600, description="Deadline of one Triton call")
    model_repository: Path = Field(
        REPO_ROOT / "model_repository", description="Where the classifiers' labels.txt files live"
    )
    models: list[str] = Field(
        default_factory=lambda: ["classifier_imagenet"],
        min_length=1,
        description="Classifiers served (model directories with a labels.txt), checked at start-up",
    )
    default_model: str = Field("classifier_imagenet", description="Classifier used when a request names none")
    top_k: int = Field(5, ge=1, le=1000, description="Classes returned when a request asks for 0")
    max_image_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="Largest encoded image accepted")
    max_image_pixels: int = Field(40_000_000, ge=1024, description="Largest decoded image (w*h) accepted")
    min_image_side: int = Field(16, ge=1, description="Smallest image side accepted, in pixels")
    max_message_bytes: int = Field(32 * 1024 * 1024, ge=1024 * 1024, le=512 * 1024 * 1024)
    log_level: str = Field("INFO", description="Python logging level")
    internal_token_file: Path | None = Field(
        None,
        description="File holding the secret the gateway sends (x-fovea-internal-token); unset = any caller is answered",
    )
