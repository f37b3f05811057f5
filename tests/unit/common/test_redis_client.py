"""redis_client.connect against a real ``redis-server``: a cancellation that arrives while a command is being
written reaches the caller, where redis-py's own connection (on Python 3.11) can drop it."""

from __future__ import annotations

import asyncio
import sys

import pytest
import redis.asyncio as aioredis

from fovea.common import redis_client


async def write_while_cancelled(client: aioredis.Redis) -> str:
    """Write PING on a connected connection of ``client`` from a task that is cancelled in the same loop
    iteration as the write completes: ``cancelled`` when the cancellation came through, ``lost`` when the
    write returned as though it had not been asked."""
    conn = await client.connection_pool.get_connection()
    try:

        async def write() -> str:
            task = asyncio.current_task()
            assert task is not None
            asyncio.get_running_loop().call_soon(task.cancel)
            try:
                await conn.send_packed_command(conn.pack_command("PING"))
            except asyncio.CancelledError:
                return "cancelled"
            task.uncancel()
            return "lost"

        return await asyncio.create_task(write())
    finally:
        await client.connection_pool.release(conn)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="Python 3.12's wait_for keeps the cancellation")
async def test_redis_py_alone_loses_the_cancellation(redis_url: str) -> None:
    """The CPython bug (gh-86296) the module works around: if this starts failing, redis-py or Python no
    longer lose it, and redis_client can go."""
    client = aioredis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        assert await write_while_cancelled(client) == "lost"
    finally:
        await client.aclose()


async def test_a_cancellation_during_a_write_reaches_the_caller(redis_url: str) -> None:
    client = redis_client.connect(redis_url, socket_timeout=5)
    try:
        assert await write_while_cancelled(client) == "cancelled"
        # the connection whose reply was left unread was closed: the next command gets its own reply
        assert await client.ping() is True
        assert await client.echo("after") == b"after"
    finally:
        await client.aclose()
