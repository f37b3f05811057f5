"""The tritonserver command line ``fovea triton`` builds (src/fovea/stack/triton.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from fovea.stack.config import TritonSettings
from fovea.stack.triton import server_command


def command(config_name: str = "") -> list[str]:
    return server_command(
        Path("/bin/tritonserver"), [Path("/m")], Path("/b"), "127.0.0.1", 1, 2, 3, config_name
    )


def test_config_name_selects_the_flavour() -> None:
    assert "--model-config-name=gpu" in command("gpu")
    assert not [c for c in command() if c.startswith("--model-config-name")]


def test_config_name_is_checked_at_start() -> None:
    assert TritonSettings(model_config_name="gpu").model_config_name == "gpu"
    with pytest.raises(ValidationError):
        TritonSettings(model_config_name="../gpu")


def test_restriction_leaves_health_open() -> None:
    from fovea.stack.triton import RESTRICTED_APIS, restriction_flags

    grpc_flag, http_flag = restriction_flags("s3cret-token-0123456789")
    assert (
        grpc_flag
        == f"--grpc-restricted-protocol={RESTRICTED_APIS}:x-fovea-internal-token=s3cret-token-0123456789"
    )
    assert http_flag.startswith("--http-restricted-api=") and http_flag.endswith(
        ":x-fovea-internal-token=s3cret-token-0123456789"
    )
    assert "health" not in RESTRICTED_APIS.split(",") and "inference" in RESTRICTED_APIS.split(",")


def test_metrics_stay_on_loopback_unless_asked_whatever_the_host() -> None:
    """/metrics answers without the token: it listens on loopback even when Triton's APIs do not."""
    wide = server_command(Path("/bin/tritonserver"), [Path("/m")], Path("/b"), "0.0.0.0", 1, 2, 3)
    assert "--metrics-address=127.0.0.1" in wide and "--grpc-address=0.0.0.0" in wide
    assert TritonSettings().metrics_host == "127.0.0.1"
    asked = server_command(
        Path("/bin/tritonserver"), [Path("/m")], Path("/b"), "0.0.0.0", 1, 2, 3, metrics_host="0.0.0.0"
    )
    assert "--metrics-address=0.0.0.0" in asked
