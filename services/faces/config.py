"""Faces service settings, from ``FOVEA_FACES_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from fovea.common.settings import FoveaSettings
from fovea.faces.core.access import LIVENESS_CHECKS


class FacesSettings(FoveaSettings):  # an unknown FOVEA_<SVC>_* variable stops the start
    model_config = SettingsConfigDict(env_prefix="FOVEA_FACES_", extra="forbid")

    host: str = Field("127.0.0.1", description="Address the gRPC server binds to")
    port: int = Field(50062, ge=0, le=65535, description="gRPC port (0 = any free port)")
    metrics_port: int = Field(9102, ge=0, le=65535, description="Prometheus /metrics port (0 = off)")
    triton_url: str = Field("127.0.0.1:8001", description="Triton gRPC host:port")
    triton_timeout_s: float = Field(10.0, gt=0, le=600, description="Deadline of one Triton call")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis holding galleries and templates")
    max_message_bytes: int = Field(32 * 1024 * 1024, ge=1024 * 1024, le=512 * 1024 * 1024)
    log_level: str = Field("INFO", description="Python logging level")
    internal_token_file: Path | None = Field(
        None,
        description="File holding the secret the gateway sends (x-fovea-internal-token); unset = any caller is answered",
    )

    # models
    detector_model: str = Field("face_detector", description="Triton model giving boxes + 5 landmarks")
    embedder_model: str = Field("face_embedder", description="Triton model giving 128-D embeddings")
    detect_max_side: int = Field(
        1024, ge=64, le=8192, description="Photos are downsized to this longer side before detection"
    )
    min_face_score: float = Field(
        0.9, ge=0, le=1, description="Detections below this face probability are ignored everywhere"
    )

    # images and requests
    max_image_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="Largest encoded image accepted")
    max_image_pixels: int = Field(40_000_000, ge=1024, description="Largest decoded image (w*h) accepted")
    min_image_side: int = Field(16, ge=12, description="Smallest image side accepted, in pixels")
    max_photos: int = Field(10, ge=1, le=100, description="Most photos per Enroll / frames per VerifyAccess")
    max_top_k: int = Field(1000, ge=1, le=100_000, description="Largest top_k of Identify")
    max_top_k_unprivileged: int = Field(
        10,
        ge=1,
        le=1000,
        description="Largest top_k of Identify for a key without faces:admin (a larger one is cut to it)",
    )

    # enrollment quality
    min_inter_ocular_px: float = Field(
        20.0, ge=0, description="Enrollment refuses faces whose eyes are closer than this (original pixels)"
    )
    min_sharpness: float = Field(
        25.0,
        ge=0,
        description="Enrollment refuses chips whose variance of the Laplacian is lower (sharp 80-1200, blurred 5-10)",
    )

    # store and sync
    changes_maxlen: int = Field(100_000, ge=1000, description="Approximate length of the change stream")
    audit_maxlen: int = Field(1_000_000, ge=1000, description="Approximate length of the audit stream")
    sync_wait_s: float = Field(
        2.0, gt=0, le=30, description="How long a write waits to see itself in this replica's search index"
    )

    # door access
    access_timeout_s: float = Field(
        5.0, gt=0, le=60, description="VerifyAccess answers DENY when its work takes longer than this"
    )
    door_policies_file: Path | None = Field(
        None, description='JSON {"default": {...}, "doors": {"door-7": {...}}} of DoorPolicy fields'
    )
    liveness_check: str = Field(
        "none",
        description=f"Liveness check of the default policy (known: {', '.join(sorted(LIVENESS_CHECKS))})",
    )
    deny_unchecked_liveness: bool = Field(
        False, description="Default policy: DENY when no liveness check ran (NOT_CHECKED)"
    )
    min_matching_frames: int = Field(
        0,
        ge=0,
        le=100,
        description="Default policy: frames that must match the claimed identity (0 = every frame with a face)",
    )
    pad_min_parallax: float = Field(
        0.12,
        gt=0,
        lt=1,
        description="Presentation-attack geometry check: the nose's travel across the eye-mouth plane a burst "
        "must show to be a head, in inter-ocular distances (0.12: a head turn of about 20 degrees)",
    )
    audit_backlog: int = Field(
        10_000, ge=0, le=1_000_000, description="Audit records kept in memory while Redis is down"
    )
