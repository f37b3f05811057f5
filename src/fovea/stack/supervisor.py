"""The local stack's processes, supervised by supervisord (one log file per process)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from fovea.stack.config import LOOPBACK, StackSettings
from fovea.stack.redis_setup import RedisPlan, redis_config


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600 from the start, then renamed over)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.chmod(0o600)
    tmp.replace(path)


@dataclass
class Program:
    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    priority: int = 100
    stopwaitsecs: int = 15
    exitcodes: str = "0"


def programs(settings: StackSettings, redis: RedisPlan, mqtt_url: str = "") -> list[Program]:
    """Every process of the local stack with its command line and environment; ``mqtt_url``: the broker the
    faces service publishes its events to ('' = none, see ``mqtt_setup``)."""
    py = [sys.executable, "-m", "fovea"]
    host = settings.host
    triton = settings.triton_grpc_url
    triton_http = settings.triton_http_url
    common = {"FOVEA_LOG_LEVEL": settings.log_level}
    progs = []
    if redis.start_own:
        redis_dir = settings.data / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        conf = settings.data / "redis.conf"
        password = settings.redis_password_file.read_text().strip()
        write_private(conf, redis_config(settings.redis_port, redis_dir, password))
        progs.append(
            Program("redis", [shutil.which("redis-server") or "redis-server", str(conf)], priority=10)
        )
    token = str(settings.internal_token_file)
    progs += [
        Program(
            "triton",
            [*py, "triton"],
            {
                "FOVEA_TRITON_MODEL_REPOSITORY": str(settings.model_repository.resolve()),
                "FOVEA_TRITON_USER_MODEL_REPOSITORY": str(settings.user_models),
                "FOVEA_TRITON_WORK_DIR": str(settings.data / "triton"),
                "FOVEA_TRITON_HOST": LOOPBACK,  # only the local processes call Triton
                "FOVEA_TRITON_HTTP_PORT": str(settings.triton_http_port),
                "FOVEA_TRITON_GRPC_PORT": str(settings.triton_grpc_port),
                "FOVEA_TRITON_METRICS_PORT": str(settings.triton_metrics_port),
                "FOVEA_TRITON_INTERNAL_TOKEN_FILE": token,
            },
            priority=20,
            stopwaitsecs=30,
            exitcodes="0,3",
        ),
        Program(
            "detection",
            [*py, "serve", "detection"],
            {
                "FOVEA_DETECTION_HOST": host,
                "FOVEA_DETECTION_PORT": str(settings.detection_port),
                "FOVEA_DETECTION_INTERNAL_TOKEN_FILE": token,
                "FOVEA_DETECTION_METRICS_PORT": str(settings.detection_metrics_port),
                "FOVEA_DETECTION_TRITON_URL": triton,
                "FOVEA_DETECTION_TRITON_HTTP_URL": triton_http,
                "FOVEA_DETECTION_MODEL_REPOSITORY": str(settings.model_repository.resolve()),
                "FOVEA_DETECTION_USER_MODEL_REPOSITORY": str(settings.user_models),
            },
            priority=30,
        ),
        Program(
            "classify",
            [*py, "serve", "classify"],
            {
                "FOVEA_CLASSIFY_HOST": host,
                "FOVEA_CLASSIFY_PORT": str(settings.classify_port),
                "FOVEA_CLASSIFY_INTERNAL_TOKEN_FILE": token,
                "FOVEA_CLASSIFY_METRICS_PORT": str(settings.classify_metrics_port),
                "FOVEA_CLASSIFY_TRITON_URL": triton,
                "FOVEA_CLASSIFY_TRITON_HTTP_URL": triton_http,
                "FOVEA_CLASSIFY_MODEL_REPOSITORY": str(settings.model_repository.resolve()),
                "FOVEA_CLASSIFY_REDIS_URL": redis.url,
                "FOVEA_CLASSIFY_TRAINED_REPOSITORY": str(settings.user_models),
            },
            priority=30,
        ),
        Program(
            "classify-worker",  # training jobs (fovea.classify queue): writes versions into user-models
            [*py, "worker", "classify"],
            {
                "FOVEA_CLASSIFY_HOST": host,
                "FOVEA_CLASSIFY_INTERNAL_TOKEN_FILE": token,  # for Triton
                "FOVEA_CLASSIFY_WORKER_METRICS_PORT": str(settings.classify_worker_metrics_port),
                "FOVEA_CLASSIFY_TRITON_URL": triton,
                "FOVEA_CLASSIFY_MODEL_REPOSITORY": str(settings.model_repository.resolve()),
                "FOVEA_CLASSIFY_REDIS_URL": redis.url,
                "FOVEA_CLASSIFY_TRAINED_REPOSITORY": str(settings.user_models),
            },
            priority=40,
            stopwaitsecs=20,
        ),
        Program(
            "faces",
            [*py, "serve", "faces"],
            {
                "FOVEA_FACES_HOST": host,
                "FOVEA_FACES_PORT": str(settings.faces_port),
                "FOVEA_FACES_INTERNAL_TOKEN_FILE": token,
                "FOVEA_FACES_CHALLENGE_SECRET_FILE": str(settings.challenge_secret_file),
                "FOVEA_FACES_METRICS_PORT": str(settings.faces_metrics_port),
                "FOVEA_FACES_TRITON_URL": triton,
                "FOVEA_FACES_TRITON_HTTP_URL": triton_http,
                "FOVEA_FACES_TRAINED_REPOSITORY": str(settings.user_models),
                "FOVEA_FACES_REDIS_URL": redis.url,
                **({"FOVEA_FACES_MQTT_URL": mqtt_url} if mqtt_url else {}),
            },
            priority=30,
        ),
        Program(
            "style",
            [*py, "serve", "style"],
            {
                "FOVEA_STYLE_HOST": host,
                "FOVEA_STYLE_PORT": str(settings.style_port),
                "FOVEA_STYLE_INTERNAL_TOKEN_FILE": token,
                "FOVEA_STYLE_METRICS_PORT": str(settings.style_metrics_port),
                "FOVEA_STYLE_TRITON_URL": triton,
                "FOVEA_STYLE_REDIS_URL": redis.url,
            },
            priority=30,
        ),
        Program(
            "worker",
            [*py, "worker"],
            {
                "FOVEA_STYLE_TRITON_URL": triton,
                "FOVEA_STYLE_REDIS_URL": redis.url,
                "FOVEA_STYLE_WORKER_METRICS_PORT": str(settings.worker_metrics_port),
                "FOVEA_STYLE_HOST": host,
                "FOVEA_STYLE_INTERNAL_TOKEN_FILE": token,
            },
            priority=40,
            stopwaitsecs=20,
        ),
        Program(
            "gateway",
            [*py, "serve", "gateway"],
            {
                "FOVEA_GATEWAY_HOST": host,
                "FOVEA_GATEWAY_PORT": str(settings.gateway_port),
                "FOVEA_GATEWAY_HTTP_PORT": str(settings.gateway_http_port),
                "FOVEA_GATEWAY_METRICS_PORT": str(settings.gateway_metrics_port),
                "FOVEA_GATEWAY_API_KEYS_FILE": str(settings.api_keys_file),
                "FOVEA_GATEWAY_INTERNAL_TOKEN_FILE": token,
                "FOVEA_GATEWAY_DETECTION_ADDR": f"{host}:{settings.detection_port}",
                "FOVEA_GATEWAY_FACES_ADDR": f"{host}:{settings.faces_port}",
                "FOVEA_GATEWAY_STYLE_ADDR": f"{host}:{settings.style_port}",
                "FOVEA_GATEWAY_CLASSIFY_ADDR": f"{host}:{settings.classify_port}",
                "FOVEA_GATEWAY_TRITON_URL": triton,
            },
            priority=50,
        ),
    ]
    for prog in progs:
        prog.env = {**common, **prog.env}
    return progs


def _quote(value: str) -> str:
    return '"' + value.replace("%", "%%").replace('"', '\\"') + '"'


def render_config(settings: StackSettings, progs: list[Program]) -> str:
    data = settings.data
    logs = data / "logs"
    lines = [
        "[unix_http_server]",
        f"file={data / 'supervisor.sock'}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={logs / 'supervisord.log'}",
        f"pidfile={data / 'supervisord.pid'}",
        f"directory={Path.cwd()}",
        "nodaemon=false",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{data / 'supervisor.sock'}",
        "",
    ]
    for prog in progs:
        env = ",".join(f"{k}={_quote(v)}" for k, v in sorted(prog.env.items()))
        lines += [
            f"[program:{prog.name}]",
            "command=" + " ".join(_quote(c) if (" " in c or not c) else c for c in prog.command),
            f"environment={env}" if env else "",
            f"priority={prog.priority}",
            "autostart=true",
            "autorestart=unexpected",
            f"exitcodes={prog.exitcodes}",
            "startsecs=1",
            "startretries=5",
            f"stopwaitsecs={prog.stopwaitsecs}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={logs / (prog.name + '.log')}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=2",
            "",
        ]
    return "\n".join(lines)


class Supervisor:
    """Control of a running supervisord through its XML-RPC interface on a unix socket."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.socket = data_dir / "supervisor.sock"
        self.config = data_dir / "supervisord.conf"

    def proxy(self) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def running(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return self.proxy().supervisor.getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def start(self, config_text: str) -> None:
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        write_private(self.config, config_text)  # holds the Redis URL with its password
        supervisord = Path(sys.executable).parent / "supervisord"
        subprocess.run([str(supervisord), "-c", str(self.config)], check=True)
        deadline = time.monotonic() + 15
        while not self.running():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"supervisord did not start: see {self.data_dir / 'logs' / 'supervisord.log'}"
                )
            time.sleep(0.1)

    def processes(self) -> list[dict[str, Any]]:
        return list(self.proxy().supervisor.getAllProcessInfo())

    def stop_process(self, name: str) -> None:
        self.proxy().supervisor.stopProcess(name, True)

    def start_process(self, name: str) -> None:
        self.proxy().supervisor.startProcess(name, True)

    def shutdown(self, timeout_s: float = 60.0) -> None:
        if not self.running():
            return
        self.proxy().supervisor.shutdown()
        deadline = time.monotonic() + timeout_s
        while self.socket.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
