"""The job store with a Redis that does not answer (a closed port): every call is UpstreamUnavailable
naming the job store, never a raw ``RedisError`` nor the address. (Against a real Redis:
tests/integration/test_style_store.py.)"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from fovea.common.errors import UpstreamUnavailable
from fovea.style.core.jobs import JobKind, JobState
from fovea.style.store import JobStore, StoreLimits

LIMITS = StoreLimits(max_results=10, max_bytes=1 << 20, max_records=20)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def store() -> JobStore:
    return JobStore(f"redis://127.0.0.1:{closed_port()}/0", ttl_s=600, idempotency_ttl_s=600, limits=LIMITS)


CALLS: dict[str, Callable[[JobStore], object]] = {
    "create": lambda s: s.create(JobKind.FAST, "style1", {"max_side": 256}, {"content": b"x"}, "key"),
    "delete": lambda s: s.delete("j"),
    "get": lambda s: s.get("j"),
    "blob": lambda s: s.blob("j", "result"),
    "transition": lambda s: s.transition("j", JobState.RUNNING),
    "heartbeat": lambda s: s.heartbeat("j", "owner", {"iteration": 1}, b"png"),
    "lost_jobs": lambda s: s.lost_jobs(0),
    "sweep": lambda s: s.sweep(),
    "usage": lambda s: s.usage(),
    "request_cancel": lambda s: s.request_cancel("j"),
    "cancel_requested": lambda s: s.cancel_requested("j"),
    "queue_length": lambda s: s.queue_length("fovea.style"),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_call_is_unavailable_when_redis_is_down(store: JobStore, name: str) -> None:
    with pytest.raises(UpstreamUnavailable) as err:
        CALLS[name](store)
    assert str(err.value) == "the job store (Redis) is unavailable; retry later"


def test_ping_is_false_when_redis_is_down(store: JobStore) -> None:
    assert store.ping() is False
