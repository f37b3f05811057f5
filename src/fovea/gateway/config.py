"""Gateway settings, from ``FOVEA_GATEWAY_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from fovea.common.settings import FoveaSettings

MAX_UNARY_S = 300.0
"""Longest deadline a unary call is passed on with (``FOVEA_GATEWAY_MAX_UNARY_S``)."""
MAX_STREAM_S = 3600.0
"""Longest deadline a stream is passed on with (``FOVEA_GATEWAY_MAX_STREAM_S``)."""
MAX_STREAMS_PER_KEY = 32
"""Streams one key may hold open at once (``FOVEA_GATEWAY_MAX_STREAMS_PER_KEY``)."""


class GatewaySettings(FoveaSettings):  # an unknown FOVEA_<SVC>_* variable stops the start
    model_config = SettingsConfigDict(env_prefix="FOVEA_GATEWAY_", extra="forbid")

    host: str = Field("127.0.0.1", description="Address the public gRPC server binds to")
    port: int = Field(50051, ge=0, le=65535, description="Public gRPC port (0 = any free port)")
    metrics_port: int = Field(9100, ge=0, le=65535, description="Prometheus /metrics port (0 = off)")
    http_port: int = Field(
        8080,
        ge=0,
        le=65535,
        description=(
            "HTTP/JSON port beside gRPC, on the same host and with the same TLS: every public RPC as Connect "
            "(POST /<package>.<Service>/<Method>), /openapi.json, /docs, /healthz (0 = off)"
        ),
    )
    api_keys_file: Path = Field(
        Path(".data/api-keys.json"), description="JSON file of hashed API keys and their scopes"
    )
    detection_addr: str = Field(
        "127.0.0.1:50061",
        description="Detection service: host:port, a DNS name of every replica, or IP:port,IP:port,...",
    )
    faces_addr: str = Field("127.0.0.1:50062", description="Faces service replicas (as DETECTION_ADDR)")
    style_addr: str = Field("127.0.0.1:50063", description="Style service replicas (as DETECTION_ADDR)")
    classify_addr: str = Field("127.0.0.1:50064", description="Classify service replicas (as DETECTION_ADDR)")
    triton_url: str = Field("127.0.0.1:8001", description="Triton gRPC host:port (for ListModels)")
    default_timeout_s: float = Field(60.0, gt=0, le=3600, description="Deadline when the caller sets none")
    max_unary_s: float = Field(
        MAX_UNARY_S,
        gt=0,
        le=24 * 3600,
        description="Longest deadline a unary call is given, whatever the caller asks",
    )
    max_stream_s: float = Field(
        MAX_STREAM_S,
        gt=0,
        le=7 * 24 * 3600,
        description=(
            "Longest deadline a stream (WatchEvents, WatchJob, DetectStream, ...) is given, whatever the caller "
            "asks: then DEADLINE_EXCEEDED, and the caller opens it again"
        ),
    )
    max_streams_per_key: int = Field(
        MAX_STREAMS_PER_KEY,
        ge=1,
        le=100_000,
        description=(
            "Streams one API key may hold open at once, gRPC and HTTP together (more: RESOURCE_EXHAUSTED), so "
            "that one key cannot take every watch slot of the services behind the gateway"
        ),
    )
    keepalive_time_s: float = Field(
        20.0,
        ge=1,
        le=7200,
        description="The gateway pings each client connection this often (HTTP/2, and TCP on the HTTP port)",
    )
    keepalive_timeout_s: float = Field(
        10.0,
        ge=1,
        le=600,
        description=(
            "A connection whose ping is not answered within this is closed and its calls cancelled "
            "(a client that vanished without closing it)"
        ),
    )
    max_message_bytes: int = Field(
        32 * 1024 * 1024, ge=1024 * 1024, le=512 * 1024 * 1024, description="Largest gRPC message accepted"
    )
    health_interval_s: float = Field(1.0, gt=0, le=60, description="How often backends' health is polled")
    log_level: str = Field("INFO", description="Python logging level")
    internal_token_file: Path | None = Field(
        None,
        description="File holding the secret the services behind the gateway require (`fovea up` makes it)",
    )
    keys_reload_interval_s: float = Field(
        0.25, gt=0, le=60, description="How often the API keys file is checked for changes (reloaded live)"
    )
    key_usage_file: Path | None = Field(
        None,
        description="Where each key's last use is recorded; default <api keys file stem>.usage.json beside it",
    )
    tls_cert_file: Path | None = Field(
        None, description="PEM certificate chain: with TLS_KEY_FILE, serve TLS"
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of TLS_CERT_FILE")
    tls_client_ca_file: Path | None = Field(
        None, description="PEM CA bundle: when set, clients must present a certificate it signed (mTLS)"
    )
    allow_plaintext: bool = Field(
        False,
        description="Listen without TLS on a non-loopback host (only behind a proxy that terminates TLS)",
    )

    @model_validator(mode="after")
    def _tls_files_together(self) -> GatewaySettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("set both tls_cert_file and tls_key_file, or neither")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file (mTLS) needs tls_cert_file and tls_key_file")
        return self
