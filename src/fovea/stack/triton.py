"""``fovea triton``: run the ``tritonserver`` bundled in the ``nvidia-pytriton`` wheel.

It prepares the python backend (stub for this interpreter, library paths, this venv first on PATH so
models import our packages), starts the server on the model repository, waits until every model has
loaded and exits with code 3 and a message naming the model when one fails; otherwise it stays in the
foreground until SIGTERM, which it passes on. See shared notes ``triton-local.md`` for the traps.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path

from fovea.common.server import internal_token
from fovea.common.triton import TRITON_TOKEN_HEADER
from fovea.stack.config import LOOPBACK, TritonSettings

log = logging.getLogger(__name__)

MODEL_LOAD_FAILED = 3  # exit code supervisor treats as final (no restart loop)


def pytriton_root() -> Path:
    spec = find_spec("pytriton")
    if spec is None or spec.origin is None:
        raise RuntimeError("nvidia-pytriton is not installed: pip install nvidia-pytriton==0.7.0")
    return Path(spec.origin).parent / "tritonserver"


def prepare_backends(work_dir: Path) -> Path:
    """Copy the python backend next to the stub for this Python; return the backends directory."""
    root = pytriton_root()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.exists():
        raise RuntimeError(f"nvidia-pytriton has no python backend stub for Python {version}")
    backends = work_dir / "backends"
    shutil.copytree(root / "backends", backends, dirs_exist_ok=True)
    shutil.copy2(stub, backends / "python" / "triton_python_backend_stub")
    return backends


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    libs = [sysconfig.get_config_var("LIBDIR"), str(pytriton_root().parent.parent / "nvidia_pytriton.libs")]
    env["LD_LIBRARY_PATH"] = ":".join([*filter(None, libs), env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


def server_command(
    binary: Path,
    repositories: Sequence[Path],
    backends: Path,
    host: str,
    http_port: int,
    grpc_port: int,
    metrics_port: int,
    model_config_name: str = "",
    metrics_host: str = LOOPBACK,
) -> list[str]:
    """``metrics_host``: where ``/metrics`` listens, loopback unless set, whatever ``host`` is: tritonserver
    cannot put it behind the token (its restricted APIs do not cover it)."""
    return [
        str(binary),
        *(f"--model-repository={repository}" for repository in repositories),
        f"--backend-directory={backends}",
        "--model-control-mode=explicit",
        "--load-model=*",
        "--exit-on-error=false",
        "--strict-readiness=true",
        f"--http-address={host}",
        f"--http-port={http_port}",
        f"--grpc-address={host}",
        f"--grpc-port={grpc_port}",
        f"--metrics-address={metrics_host}",
        f"--metrics-port={metrics_port}",
        "--log-info=false",
        *([f"--model-config-name={model_config_name}"] if model_config_name else []),
    ]


RESTRICTED_APIS = "metadata,inference,shared-memory,model-config,model-repository,statistics,trace,logging"
"""Everything but health (probes stay open): tritonserver then answers only calls carrying the token."""


def restriction_flags(token: str) -> list[str]:
    """tritonserver flags that require ``x-fovea-internal-token: token`` on every API but health.

    tritonserver takes the value on its command line only, so a local user who can list processes can read
    it; the token file itself is 0600. In compose and Kubernetes Triton is not published at all."""
    header = f"{TRITON_TOKEN_HEADER}={token}"
    return [
        f"--grpc-restricted-protocol={RESTRICTED_APIS}:{header}",
        f"--http-restricted-api={RESTRICTED_APIS}:{header}",
    ]


def _get_json(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> object:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(request, timeout=2) as resp:
        body = resp.read()
    return json.loads(body) if body else {}


def wait_for_models(
    http: str, proc: subprocess.Popen[bytes], timeout_s: float, headers: dict[str, str] | None = None
) -> list[tuple[str | None, str]]:
    """Wait until no model is loading; return ``(model name or None, message)`` per failure (empty when
    every model is READY)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return [(None, f"tritonserver exited with code {proc.returncode} before it was live")]
        try:
            index = _get_json(f"{http}/v2/repository/index", data=b"{}", headers=headers)
        except (urllib.error.URLError, OSError, ValueError):
            time.sleep(0.3)
            continue
        states = index if isinstance(index, list) else []
        if states and all(m.get("state") in ("READY", "UNAVAILABLE") for m in states):
            return [
                (m["name"], f"model {m['name']!r} failed to load: {m.get('reason') or 'no reason given'}")
                for m in states
                if m.get("state") != "READY"
            ]
        time.sleep(0.3)
    return [(None, f"models still loading after {timeout_s:.0f}s")]


def run(settings: TritonSettings) -> int:
    """Run Triton in the foreground; returns its exit code (3 when a model failed to load).

    By default the server bundled in nvidia-pytriton, prepared for this interpreter; with
    ``FOVEA_TRITON_BINARY`` (the NGC image) that server and its own backends, environment untouched.
    """
    if settings.binary is not None:
        binary, backends = settings.binary, settings.backend_dir or settings.binary.parent.parent / "backends"
        env = dict(os.environ)
    else:
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        binary, backends = pytriton_root() / "bin" / "tritonserver", prepare_backends(settings.work_dir)
        env = server_env()
    host, http_port = settings.host, settings.http_port
    repository, user_repository = settings.model_repository, settings.user_model_repository
    repositories = [repository]
    if user_repository is not None:
        user_repository.mkdir(parents=True, exist_ok=True)  # Triton refuses a missing repository
        repositories.append(user_repository)
    cmd = server_command(
        binary,
        repositories,
        backends,
        host,
        http_port,
        settings.grpc_port,
        settings.metrics_port,
        settings.model_config_name,
        settings.metrics_host,
    )
    token = internal_token(settings.internal_token_file)
    if token and settings.metrics_host != LOOPBACK:
        log.warning(
            "Triton's /metrics on %s:%d answers without the internal token (tritonserver cannot restrict it): "
            "only a network policy keeps others out",
            settings.metrics_host,
            settings.metrics_port,
        )
    log.info(
        "starting %s%s", " ".join(cmd), " (APIs but health restricted to the internal token)" if token else ""
    )
    if token:
        cmd += restriction_flags(token.decode())
    proc = subprocess.Popen(cmd, env=env)
    stop = lambda signum, _frame: proc.send_signal(signum)  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # Fatal for imported models too: a failed load keeps Triton's strict readiness false until restart.
    user_models = {p.name for p in user_repository.iterdir()} if user_repository is not None else set()
    failures = [
        f"{failure} (an imported model: fix or remove {user_repository}/{model})"
        if model in user_models
        else failure
        for model, failure in wait_for_models(
            f"http://{host}:{http_port}",
            proc,
            settings.load_timeout_s,
            {TRITON_TOKEN_HEADER: token.decode()} if token else None,
        )
    ]
    if failures:
        for failure in failures:
            log.error("Triton: %s", failure)
            print(f"fovea triton: {failure}", file=sys.stderr, flush=True)
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        return MODEL_LOAD_FAILED
    log.info("Triton ready: every model in %s loaded", " and ".join(map(str, repositories)))
    return proc.wait()
