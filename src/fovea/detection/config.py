"""Detection service settings, from ``FOVEA_DETECTION_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from fovea.common.paths import model_repository
from fovea.common.settings import FoveaSettings


class DetectionSettings(FoveaSettings):  # an unknown FOVEA_<SVC>_* variable stops the start
    model_config = SettingsConfigDict(env_prefix="FOVEA_DETECTION_", extra="forbid")

    host: str = Field("127.0.0.1", description="Address the gRPC server binds to")
    port: int = Field(50061, ge=0, le=65535, description="gRPC port (0 = any free port)")
    metrics_port: int = Field(9101, ge=0, le=65535, description="Prometheus /metrics port (0 = off)")
    triton_url: str = Field("127.0.0.1:8001", description="Triton gRPC host:port")
    triton_timeout_s: float = Field(30.0, gt=0, le=600, description="Deadline of one Triton call")
    model_repository: Path = Field(
        default_factory=model_repository, description="Where detector metadata lives"
    )
    user_model_repository: Path | None = Field(
        None,
        description="A second repository of detectors (`fovea models import-onnx`), rescanned for unknown names",
    )
    default_model: str = Field("nanodet", description="Detector used when a request names none")
    min_score: float = Field(0.35, gt=0, lt=1, description="Default score threshold")
    iou_threshold: float = Field(0.5, gt=0, le=1, description="Default IoU threshold of class-aware NMS")
    max_detections: int = Field(100, ge=1, le=10_000, description="Default and upper cap of detections")
    max_image_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="Largest encoded image accepted")
    max_image_pixels: int = Field(40_000_000, ge=1024, description="Largest decoded image (w*h) accepted")
    min_image_side: int = Field(16, ge=1, description="Smallest image side accepted, in pixels")
    max_message_bytes: int = Field(32 * 1024 * 1024, ge=1024 * 1024, le=512 * 1024 * 1024)
    log_level: str = Field("INFO", description="Python logging level")
    internal_token_file: Path | None = Field(
        None,
        description="File holding the secret the gateway sends (x-fovea-internal-token); unset = any caller is answered",
    )
