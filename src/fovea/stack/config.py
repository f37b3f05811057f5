"""Settings of the local stack (``fovea up``), from ``FOVEA_*`` environment variables.

The stack passes each process its own ``FOVEA_<SVC>_*`` variables, the same ones the compose file sets.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fovea.common.paths import model_repository
from fovea.common.settings import FoveaSettings

LOOPBACK = "127.0.0.1"


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FOVEA_", extra="ignore")

    data_dir: Path = Field(Path(".data"), description="Logs, Redis data, API keys, supervisor files")
    model_repository: Path = Field(default_factory=model_repository, description="Triton model repository")
    user_model_repository: Path | None = Field(
        None,
        description="Second Triton repository, for `fovea models import-onnx` models; default <data_dir>/user-models",
    )
    host: str = Field(
        "127.0.0.1",
        description="Address the gateway and the services bind to; Triton and our own Redis stay on loopback",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis to use when it answers; empty = always start our own"
    )
    mqtt_url: str = Field(
        "mqtt://127.0.0.1:1883",
        description="MQTT broker the faces service publishes its events to when it answers at start; empty = off",
    )
    redis_port: int = Field(6390, ge=1, le=65535, description="Port of the Redis the stack starts otherwise")
    gateway_port: int = Field(50051, ge=1, le=65535)
    gateway_http_port: int = Field(8080, ge=0, le=65535, description="The gateway's HTTP/JSON port (0 = off)")
    detection_port: int = Field(50061, ge=1, le=65535)
    faces_port: int = Field(50062, ge=1, le=65535)
    style_port: int = Field(50063, ge=1, le=65535)
    classify_port: int = Field(50064, ge=1, le=65535)
    triton_http_port: int = Field(8000, ge=1, le=65535)
    triton_grpc_port: int = Field(8001, ge=1, le=65535)
    triton_metrics_port: int = Field(8002, ge=1, le=65535)
    gateway_metrics_port: int = Field(9100, ge=1, le=65535)
    detection_metrics_port: int = Field(9101, ge=1, le=65535)
    faces_metrics_port: int = Field(9102, ge=1, le=65535)
    style_metrics_port: int = Field(9103, ge=1, le=65535)
    worker_metrics_port: int = Field(9104, ge=1, le=65535)
    classify_metrics_port: int = Field(9105, ge=1, le=65535)
    classify_worker_metrics_port: int = Field(9106, ge=1, le=65535)
    start_timeout_s: float = Field(180.0, gt=0, description="How long `fovea up` waits for readiness")
    log_level: str = Field("INFO")

    @property
    def data(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def user_models(self) -> Path:
        """The user model repository: ``user_model_repository`` or ``<data_dir>/user-models``."""
        path = self.user_model_repository or self.data / "user-models"
        return path.expanduser().resolve()

    @property
    def api_keys_file(self) -> Path:
        """The gateway's hashed API keys (``fovea keys``; the first ``fovea up`` makes a local admin key)."""
        return self.data / "api-keys.json"

    @property
    def triton_grpc_url(self) -> str:
        """Triton of the local stack: on loopback whatever ``host`` says (only local processes use it)."""
        return f"{LOOPBACK}:{self.triton_grpc_port}"

    @property
    def triton_http_url(self) -> str:
        """Triton's HTTP endpoint of the local stack, where the services send inference requests."""
        return f"{LOOPBACK}:{self.triton_http_port}"

    @property
    def internal_token_file(self) -> Path:
        """The secret the gateway sends and the services require (made by `fovea up`, 0600)."""
        return self.data / "internal-token"

    @property
    def challenge_secret_file(self) -> Path:
        """The key the faces service signs door challenges with (made by `fovea up`, 0600)."""
        return self.data / "challenge-secret"

    @property
    def redis_password_file(self) -> Path:
        """The password of the Redis the stack starts itself (made by `fovea up`, 0600)."""
        return self.data / "redis-password"


class TritonSettings(FoveaSettings):  # an unknown FOVEA_<SVC>_* variable stops the start
    """``fovea triton`` (what supervisor runs), from ``FOVEA_TRITON_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="FOVEA_TRITON_", extra="forbid")

    model_repository: Path = Field(default_factory=model_repository, description="Triton model repository")
    user_model_repository: Path | None = Field(
        None, description="A second repository, for imported models (created if missing)"
    )
    work_dir: Path = Field(Path(".data/triton"), description="Where the python backend is prepared")
    host: str = Field("127.0.0.1", description="Address Triton binds to")
    http_port: int = Field(8000, ge=1, le=65535)
    grpc_port: int = Field(8001, ge=1, le=65535)
    metrics_port: int = Field(8002, ge=1, le=65535)
    metrics_host: str = Field(
        LOOPBACK,
        description=(
            "Address of Triton's /metrics port, which answers without the internal token (tritonserver cannot "
            "restrict it): loopback unless set; 0.0.0.0 only where a network policy lets Prometheus alone in "
            "(Kubernetes)"
        ),
    )
    load_timeout_s: float = Field(600.0, gt=0, description="How long models may take to load")
    binary: Path | None = Field(
        None, description="A tritonserver to run instead of the one bundled in nvidia-pytriton (NGC image)"
    )
    backend_dir: Path | None = Field(None, description="Backends of that tritonserver (with `binary`)")
    internal_token_file: Path | None = Field(
        None,
        description=(
            "The stack's shared secret: every Triton API but health then requires it in the "
            "x-fovea-internal-token header (tritonserver's restricted APIs); None = open to any local process"
        ),
    )
    model_config_name: str = Field(
        "",
        pattern=r"^[a-z0-9_-]*$",
        description=(
            "Serve `<model>/configs/<name>.pbtxt` where a model has one (else its config.pbtxt): `gpu` selects "
            "the native onnxruntime/TensorRT flavour on the NGC image (docker-compose, k8s); empty = config.pbtxt"
        ),
    )
