"""The base of every service's settings class: a ``FOVEA_<SVC>_*`` variable that names no field stops the start.

pydantic-settings reads only the variables that match a field and ignores the rest, ``extra="forbid"``
notwithstanding, so ``FOVEA_GATEWAY_PROT=1`` would pass silently and the gateway would listen on its default
port. :class:`FoveaSettings` looks at every variable with the class's prefix when an instance is made and
refuses the unknown ones, naming the closest known one.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings

from fovea.common.triton_http import parse_address


def known_variables(settings_cls: type[BaseSettings]) -> set[str]:
    """The upper-case environment variable names ``settings_cls`` reads (its prefix + each field name, or the
    field's alias)."""
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    names = set()
    for name, info in settings_cls.model_fields.items():
        alias = info.validation_alias if isinstance(info.validation_alias, str) else None
        names.add((alias or prefix + name).upper())
    return names


def unknown_variables(settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> list[str]:
    """The variables in ``environ`` that carry the class's prefix (any case, as pydantic-settings reads them)
    but name none of its fields, sorted."""
    prefix = str(settings_cls.model_config.get("env_prefix", "")).upper()
    if not prefix:
        return []
    known = known_variables(settings_cls)
    return sorted(k for k in environ if k.upper().startswith(prefix) and k.upper() not in known)


def check_environment(settings_cls: type[BaseSettings], environ: Mapping[str, str] | None = None) -> None:
    """``ValueError`` naming every unknown ``<prefix>*`` variable in ``environ`` (default ``os.environ``)."""
    unknown = unknown_variables(settings_cls, os.environ if environ is None else environ)
    if not unknown:
        return
    known = sorted(known_variables(settings_cls))
    problems = []
    for name in unknown:
        close = difflib.get_close_matches(name.upper(), known, n=1)
        problems.append(f"{name} (did you mean {close[0]}?)" if close else name)
    prefix = settings_cls.model_config.get("env_prefix", "")
    raise ValueError(
        f"unknown setting {', '.join(problems)}: every {prefix}* variable must name a setting of "
        f"{settings_cls.__name__}; known: {', '.join(known)}"
    )


class FoveaSettings(BaseSettings):
    """Base class of the per-process settings classes (``env_prefix="FOVEA_<SVC>_"``, ``extra="forbid"``)."""

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_variables(cls, data: Any) -> Any:
        check_environment(cls)
        return data


class ServiceSettings(FoveaSettings):
    """What every gRPC service's settings share, written once (each service adds its port, metrics port and
    its own fields; a field redefined in a subclass wins)."""

    host: str = Field("127.0.0.1", description="Address the gRPC server (and the metrics page) bind to")
    triton_url: str = Field("127.0.0.1:8001", description="Triton gRPC host:port")
    triton_http_url: str = Field(
        "",
        description="Triton HTTP host:port for inference requests (1.4-2.8 ms less per call than gRPC, "
        "bench/README.md); empty = inference over gRPC too",
    )
    max_message_bytes: int = Field(
        32 * 1024 * 1024, ge=1024 * 1024, le=512 * 1024 * 1024, description="Largest gRPC message accepted"
    )
    log_level: str = Field("INFO", description="Python logging level")
    internal_token_file: Path | None = Field(
        None,
        description="File holding the secret the gateway sends (x-fovea-internal-token); unset = any caller is answered",
    )
    max_image_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="Largest encoded image accepted")
    max_image_pixels: int = Field(40_000_000, ge=1024, description="Largest decoded image (w*h) accepted")

    @field_validator("triton_http_url")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if value:
            parse_address(value)  # ValueError saying what is wrong: start-up fails
        return value


__all__ = ["FoveaSettings", "ServiceSettings", "check_environment", "known_variables", "unknown_variables"]
