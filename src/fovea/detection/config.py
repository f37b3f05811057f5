"""Detection service settings, from ``FOVEA_DETECTION_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from fovea.common.paths import model_repository
from fovea.common.settings import ServiceSettings


class DetectionSettings(ServiceSettings):  # an unknown FOVEA_<SVC>_* variable stops the start
    model_config = SettingsConfigDict(env_prefix="FOVEA_DETECTION_", extra="forbid")

    port: int = Field(50061, ge=0, le=65535, description="gRPC port (0 = any free port)")
    metrics_port: int = Field(9101, ge=0, le=65535, description="Prometheus /metrics port (0 = off)")
    triton_timeout_s: float = Field(30.0, gt=0, le=600, description="Deadline of one Triton call")
    model_repository: Path = Field(
        default_factory=model_repository, description="Where detector metadata lives"
    )
    user_model_repository: Path | None = Field(
        None,
        description="A second repository of detectors (`fovea models import-onnx`), rescanned for unknown names",
    )
    default_model: str = Field(
        "nanodet_int8",
        description='Detector used when a request names none (nanodet_int8: bench/README.md, "The INT8 recipe")',
    )
    min_score: float = Field(0.35, gt=0, lt=1, description="Default score threshold")
    iou_threshold: float = Field(0.5, gt=0, le=1, description="Default IoU threshold of class-aware NMS")
    max_detections: int = Field(100, ge=1, le=10_000, description="Default and upper cap of detections")
    min_image_side: int = Field(16, ge=1, description="Smallest image side accepted, in pixels")
