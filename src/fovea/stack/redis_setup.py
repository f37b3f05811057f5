"""Which Redis the stack uses: ``FOVEA_REDIS_URL`` when it answers, else one it starts itself."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import redis

from fovea.stack.config import LOOPBACK

INSTALL_HINT = (
    "no Redis answers at {url} and redis-server is not on PATH: install it "
    "(Debian/Ubuntu: sudo apt-get install redis-server) or set FOVEA_REDIS_URL to a running Redis"
)


@dataclass(frozen=True)
class RedisPlan:
    url: str
    start_own: bool  # True: the stack runs redis-server itself, with append-only persistence


def redis_answers(url: str, timeout_s: float = 1.0) -> bool:
    try:
        return bool(
            redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s).ping()
        )
    except (redis.RedisError, OSError):
        return False


def plan_redis(url: str, own_port: int, password: str) -> RedisPlan:
    """Use ``url`` if it answers; otherwise (or when ``url`` is empty) plan our own redis-server on loopback
    that requires ``password``, or fail with an install hint."""
    if url and redis_answers(url):
        return RedisPlan(url=url, start_own=False)
    if shutil.which("redis-server") is None:
        raise RuntimeError(INSTALL_HINT.format(url=url or "(none set)"))
    return RedisPlan(url=f"redis://:{quote(password, safe='')}@{LOOPBACK}:{own_port}/0", start_own=True)


def redis_config(port: int, data_dir: Path, password: str) -> str:
    """The own Redis's configuration file (it holds the password, so it is written 0600, never passed on
    a command line that `ps` shows): loopback only, append-only persistence."""
    if not password or any(c.isspace() or c in "\"'" for c in password):
        raise ValueError("the Redis password must be non-empty, without spaces or quotes")
    return "\n".join(
        [
            f"bind {LOOPBACK}",
            f"port {port}",
            f'dir "{data_dir}"',
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "protected-mode yes",
            f"requirepass {password}",
            # a ceiling, never an eviction (galleries, job state): the style job store's own caps stay under it
            "maxmemory 1gb",
            "maxmemory-policy noeviction",
            "",
        ]
    )
