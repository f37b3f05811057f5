"""The asyncio Redis client every service uses: redis-py's, with a cancellation it can lose put back.

redis-py bounds each command's write with ``asyncio.wait_for`` when a socket timeout is set. Before Python
3.12, ``wait_for`` returns the inner result, and drops the cancellation, when its task is cancelled in the
same loop iteration as the write completes (CPython gh-86296, fixed by 3.12's rewrite on
``asyncio.timeout``). The command then reads its reply and returns as though nothing had happened, and a
loop that only stops by cancellation runs on for ever: a ``WatchEvents`` stream whose caller went away keeps
its watcher slot, and a service's shutdown waits on a task that never ends. It happened about once in 150
cancelled watches (tests/unit/faces/test_webhook_delivery.py).

:func:`connect` gives a client whose connections notice that: a write that returns while its task holds more
cancellation requests than before it began closes the connection (its reply will never be read) and raises
``CancelledError`` as the cancellation would have.

Redis behind Sentinel: every Redis URL a service takes may also name Sentinels instead of one server,
``redis+sentinel://[:password@]host1:26379,host2:26379,host3:26379/<master name>/<db>``: the clients then
ask the Sentinels for the current primary and follow a failover (:func:`connect`, :func:`connect_sync`,
:func:`celery_broker`). The password is the Redis servers' (``requirepass``/``masterauth``); the Sentinels
are asked without one unless ``sentinel_password`` is given as a query parameter.

Writes a replica has acknowledged: ``WAIT`` on the connection that made the write (:func:`check_replicas`
reads its answer), so a write answered as done survives the loss of the primary (a failover promotes a
replica that has it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel"


@dataclass(frozen=True)
class SentinelTarget:
    """A ``redis+sentinel://`` URL, parsed: where the Sentinels are and which primary to ask them for."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int
    password: str | None
    sentinel_password: str | None

    @classmethod
    def parse(cls, url: str) -> SentinelTarget | None:
        """The target of a ``redis+sentinel://`` URL; None for any other URL. ``ValueError`` naming what is
        wrong with a malformed one."""
        parts = urlsplit(url)
        if parts.scheme != SENTINEL_SCHEME:
            return None
        hosts = parts.netloc.rsplit("@", 1)[-1]
        password = unquote(parts.netloc.rsplit("@", 1)[0].split(":", 1)[-1]) if "@" in parts.netloc else None
        sentinels = []
        for item in hosts.split(","):
            host, _, port = item.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{url!r}: each Sentinel must be host:port, got {item!r}")
            sentinels.append((host.strip("[]"), int(port)))
        path = [p for p in parts.path.split("/") if p]
        if not path or len(path) > 2:
            raise ValueError(f"{url!r}: the path must be /<master name>[/<db>]")
        db = path[1] if len(path) == 2 else "0"
        if not db.isdigit():
            raise ValueError(f"{url!r}: the database must be a number, got {db!r}")
        sentinel_password = parse_qs(parts.query).get("sentinel_password", [""])[0]
        return cls(tuple(sentinels), path[0], int(db), password or None, sentinel_password or None)

    def sentinel_kwargs(self) -> dict[str, Any]:
        return {"password": self.sentinel_password} if self.sentinel_password else {}

    def client_kwargs(self, socket_timeout: float, socket_connect_timeout: float) -> dict[str, Any]:
        """What ``Sentinel`` (sync or asyncio) takes for this target: the Sentinels asked within the connect
        timeout, the primary's clients with the timeouts, password and database of the URL."""
        return {
            "sentinel_kwargs": {**self.sentinel_kwargs(), "socket_timeout": socket_connect_timeout},
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_connect_timeout,
            "password": self.password,
            "db": self.db,
        }


class _KeepsCancellation:
    """Mixed into redis-py's connection class (TCP, TLS or Unix socket, as the URL chooses)."""

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        task = asyncio.current_task()
        requested = task.cancelling() if task is not None else 0
        await super().send_packed_command(command, check_health)  # type: ignore[misc]
        if task is not None and task.cancelling() > requested:
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            raise asyncio.CancelledError


_SUBCLASSES: dict[type[Any], type[Any]] = {}


def _keeping_cancellation(connection_class: type[Any]) -> type[Any]:
    if connection_class not in _SUBCLASSES:
        _SUBCLASSES[connection_class] = type(
            connection_class.__name__, (_KeepsCancellation, connection_class), {}
        )
    return _SUBCLASSES[connection_class]


def connect(url: str, *, socket_timeout: float, socket_connect_timeout: float = 2.0) -> aioredis.Redis:
    """A client of the Redis at ``url`` (``redis://``, ``rediss://``, ``unix://`` or ``redis+sentinel://``);
    no I/O until the first command. ``socket_timeout`` bounds each read and write, in seconds."""
    target = SentinelTarget.parse(url)
    if target is not None:
        sentinel = AsyncSentinel(
            target.sentinels, **target.client_kwargs(socket_timeout, socket_connect_timeout)
        )
        client = sentinel.master_for(target.master)
        client.connection_pool.connection_class = _keeping_cancellation(
            client.connection_pool.connection_class
        )
        return client
    pool = aioredis.ConnectionPool.from_url(
        url, socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout
    )
    pool.connection_class = _keeping_cancellation(pool.connection_class)
    return aioredis.Redis.from_pool(pool)


def connect_sync(url: str, *, socket_timeout: float, socket_connect_timeout: float = 2.0) -> redis.Redis:
    """The synchronous twin of :func:`connect` (the Celery workers' threads, the job stores)."""
    target = SentinelTarget.parse(url)
    if target is not None:
        sentinel = Sentinel(target.sentinels, **target.client_kwargs(socket_timeout, socket_connect_timeout))
        return sentinel.master_for(target.master)
    return redis.Redis.from_url(
        url, socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout
    )


def celery_broker(url: str) -> tuple[str, dict[str, Any]]:
    """Celery's broker URL and transport options for a Redis URL: kombu's ``sentinel://`` form (one
    ``sentinel://host:port`` per Sentinel, ``master_name`` among the options) for ``redis+sentinel://``."""
    target = SentinelTarget.parse(url)
    if target is None:
        return url, {}
    auth = f":{target.password}@" if target.password else ""
    broker = ";".join(f"sentinel://{auth}{host}:{port}/{target.db}" for host, port in target.sentinels)
    options: dict[str, Any] = {"master_name": target.master}
    if target.sentinel_password:
        options["sentinel_kwargs"] = target.sentinel_kwargs()
    return broker, options


class NotReplicated(redis.RedisError):
    """Fewer replicas than required acknowledged a write in time (it may be lost in a failover)."""


def check_replicas(acknowledged: int, required: int, timeout_ms: int) -> None:
    """``NotReplicated`` when ``WAIT`` answered fewer replicas than ``required``."""
    if acknowledged < required:
        raise NotReplicated(
            f"the write reached {acknowledged} of the {required} Redis replica(s) required within {timeout_ms} ms"
        )


__all__ = [
    "NotReplicated",
    "SentinelTarget",
    "celery_broker",
    "check_replicas",
    "connect",
    "connect_sync",
]
