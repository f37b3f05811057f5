"""Which Redis the stack uses: ``FOVEA_REDIS_URL`` when it answers, else one it starts itself."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import redis

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


def plan_redis(url: str, host: str, own_port: int) -> RedisPlan:
    """Use ``url`` if it answers; otherwise (or when ``url`` is empty) plan our own redis-server, or fail
    with an install hint."""
    if url and redis_answers(url):
        return RedisPlan(url=url, start_own=False)
    if shutil.which("redis-server") is None:
        raise RuntimeError(INSTALL_HINT.format(url=url or "(none set)"))
    return RedisPlan(url=f"redis://{host}:{own_port}/0", start_own=True)
