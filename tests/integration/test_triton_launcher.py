"""`fovea triton` names the model that fails to load and exits (code 3), instead of hanging or looping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import free_ports

pytestmark = pytest.mark.integration

CONFIG = """
name: "broken"
backend: "python"
max_batch_size: 1
input [ { name: "INPUT" data_type: TYPE_FP32 dims: [ 1 ] } ]
output [ { name: "OUTPUT" data_type: TYPE_FP32 dims: [ 1 ] } ]
dynamic_batching { }
instance_group [ { kind: KIND_CPU, count: 1 } ]
"""
MODEL = """
class TritonPythonModel:
    def initialize(self, args):
        raise RuntimeError("weights missing: run fovea models build")
"""


def test_a_model_that_fails_to_load_is_named(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "broken" / "1").mkdir(parents=True)
    (repo / "broken" / "config.pbtxt").write_text(CONFIG)
    (repo / "broken" / "1" / "model.py").write_text(MODEL)
    http, grpc_port, metrics = free_ports(3)
    env = {
        **os.environ,
        "FOVEA_TRITON_MODEL_REPOSITORY": str(repo),
        "FOVEA_TRITON_WORK_DIR": str(tmp_path / "work"),
        "FOVEA_TRITON_HTTP_PORT": str(http),
        "FOVEA_TRITON_GRPC_PORT": str(grpc_port),
        "FOVEA_TRITON_METRICS_PORT": str(metrics),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "fovea", "triton"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "model 'broken' failed to load" in proc.stderr
    assert "weights missing: run fovea models build" in proc.stderr
