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
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis


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
    """A client of the Redis at ``url`` (``redis://``, ``rediss://`` or ``unix://``); no I/O until the first
    command. ``socket_timeout`` bounds each read and write, in seconds."""
    pool = aioredis.ConnectionPool.from_url(
        url, socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout
    )
    pool.connection_class = _keeping_cancellation(pool.connection_class)
    return aioredis.Redis.from_pool(pool)


__all__ = ["connect"]
