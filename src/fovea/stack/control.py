"""``fovea up`` / ``fovea down`` / ``fovea status``: the whole platform on one machine."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from fovea.gateway.auth import add_key
from fovea.stack.config import StackSettings
from fovea.stack.health import Probe, probes
from fovea.stack.mqtt_setup import plan_mqtt
from fovea.stack.redis_setup import plan_redis, redis_answers
from fovea.stack.supervisor import Supervisor, programs, render_config, write_private


class StackError(RuntimeError):
    pass


@dataclass
class ProcessStatus:
    name: str
    state: str
    pid: int
    uptime_s: int
    probes: list[Probe]

    @property
    def healthy(self) -> bool:
        return self.state == "RUNNING" and all(p.ok for p in self.probes)


def ensure_api_key(settings: StackSettings) -> None:
    """First start: create an all-scopes key for local use, its plain value in ``<data>/api-key`` (0600)."""
    keys = settings.api_keys_file
    if keys.exists():
        return
    key = add_key(keys, "local-admin", ["*"])
    path = settings.data / "api-key"
    path.write_text(key + "\n")
    path.chmod(0o600)


def redacted(url: str) -> str:
    """``url`` without its password (``redis://:***@host:port/0``), for what `fovea status` prints."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    user = f"{parts.username}:" if parts.username else ":"
    return urlunsplit(parts._replace(netloc=f"{user}***@{parts.hostname}:{parts.port}"))


def ensure_secret(path: Path) -> str:
    """The secret in ``path``, made (random, 0600) when missing; kept across restarts of the stack."""
    if path.exists() and len(path.read_text().strip()) >= 32:
        path.chmod(0o600)
        return path.read_text().strip()
    secret = secrets.token_urlsafe(32)
    write_private(path, secret + "\n")
    return secret


def up(settings: StackSettings, wait: bool = True) -> list[ProcessStatus]:
    data = settings.data
    data.mkdir(parents=True, exist_ok=True)
    sup = Supervisor(data)
    if sup.running():
        raise StackError(f"the stack already runs from {data}: `fovea status`, or `fovea down` first")
    ensure_secret(settings.internal_token_file)  # the gateway sends it, the services require it
    ensure_secret(settings.challenge_secret_file)  # the faces service signs door challenges with it
    plan = plan_redis(settings.redis_url, settings.redis_port, ensure_secret(settings.redis_password_file))
    ensure_api_key(settings)
    mqtt_url = plan_mqtt(settings.mqtt_url)  # the faces service publishes its events there when it answers
    progs = programs(settings, plan, mqtt_url)
    record = {"redis_url": plan.url, "mqtt_url": mqtt_url, "started": time.time()}
    write_private(data / "stack.json", json.dumps(record) + "\n")
    sup.start(render_config(settings, progs))
    if wait:
        wait_healthy(settings, sup)
    return status(settings)


def wait_healthy(settings: StackSettings, sup: Supervisor) -> None:
    deadline = time.monotonic() + settings.start_timeout_s
    while True:
        current = status(settings)
        failed = [p for p in current if p.state in ("FATAL", "EXITED", "BACKOFF")]
        if failed:
            names = ", ".join(f"{p.name} ({p.state})" for p in failed)
            raise StackError(
                f"{names} did not start:\n" + "\n".join(log_tail(settings, p.name) for p in failed)
            )
        if all(p.healthy for p in current):
            return
        if time.monotonic() > deadline:
            waiting = [p.name for p in current if not p.healthy]
            raise StackError(
                f"not healthy after {settings.start_timeout_s:.0f}s: {', '.join(waiting)}; "
                f"logs in {settings.data / 'logs'}"
            )
        time.sleep(0.5)


def log_tail(settings: StackSettings, name: str, lines: int = 15) -> str:
    path = settings.data / "logs" / f"{name}.log"
    if not path.exists():
        return f"--- {name}: no log at {path}"
    tail = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- last lines of {path}:\n" + "\n".join(tail)


def status(settings: StackSettings) -> list[ProcessStatus]:
    sup = Supervisor(settings.data)
    if not sup.running():
        raise StackError(f"the stack is not running (no supervisord at {sup.socket}): `fovea up`")
    checks = probes(settings)
    result = []
    for info in sup.processes():
        name = info["name"]
        uptime = int(info["now"] - info["start"]) if info["statename"] == "RUNNING" else 0
        own = checks.get(name, [])
        if name == "redis":
            url = json.loads((settings.data / "stack.json").read_text())["redis_url"]
            own = [Probe(redacted(url), redis_answers(url), "PONG")]
        result.append(ProcessStatus(name, info["statename"], info["pid"], uptime, own))
    return result


def down(settings: StackSettings) -> bool:
    sup = Supervisor(settings.data)
    if not sup.running():
        return False
    sup.shutdown()
    return True
