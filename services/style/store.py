"""Job state in Redis: one hash per job, image blobs beside it, all expiring after the result TTL.

State changes go through one Lua script that checks the current state against the allowed transitions,
so two workers (a redelivered job) can never both complete a job, and a cancelled job stays cancelled.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

from fovea.common.errors import NotFound, UpstreamUnavailable, clip
from fovea.style.core.jobs import JobKind, JobState, sources_of

log = logging.getLogger(__name__)

PREFIX = "fovea:style"
UNAVAILABLE_MESSAGE = "the job store (Redis) is unavailable; retry later"

# KEYS[1] job hash; ARGV[1] new state; ARGV[2] JSON list of allowed current states; ARGV[3] JSON of extra
# fields; ARGV[4] now ms; ARGV[5] optional blob key; ARGV[6] blob bytes; ARGV[7] ttl s.
_TRANSITION = """
local current = redis.call('HGET', KEYS[1], 'state')
if not current then return {0, ''} end
local allowed = cjson.decode(ARGV[2])
local ok = false
for _, s in ipairs(allowed) do if s == current then ok = true end end
if not ok then return {0, current} end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated_ms', ARGV[4])
for k, v in pairs(cjson.decode(ARGV[3])) do redis.call('HSET', KEYS[1], k, tostring(v)) end
if ARGV[5] ~= '' then redis.call('SET', ARGV[5], ARGV[6], 'EX', ARGV[7]) end
return {1, current}
"""


@dataclass(frozen=True)
class Job:
    job_id: str
    state: JobState
    kind: JobKind
    style_name: str
    params: dict[str, Any]
    created_ms: int
    updated_ms: int
    iteration: int
    total_iterations: int
    content_cost: float
    style_cost: float
    total_cost: float
    error: str
    cancel_requested: bool
    attempts: int

    @classmethod
    def from_hash(cls, job_id: str, h: dict[bytes, bytes]) -> Job:
        def get(key: str, default: str = "") -> str:
            return h.get(key.encode(), default.encode()).decode()

        return cls(
            job_id=job_id,
            state=JobState(get("state")),
            kind=JobKind(get("kind")),
            style_name=get("style_name"),
            params=json.loads(get("params", "{}")),
            created_ms=int(get("created_ms", "0")),
            updated_ms=int(get("updated_ms", "0")),
            iteration=int(get("iteration", "0")),
            total_iterations=int(get("total_iterations", "0")),
            content_cost=float(get("content_cost", "0")),
            style_cost=float(get("style_cost", "0")),
            total_cost=float(get("total_cost", "0")),
            error=get("error"),
            cancel_requested=get("cancel", "0") == "1",
            attempts=int(get("attempts", "0")),
        )


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def now_ms() -> int:
    return int(time.time() * 1000)


@contextmanager
def redis_calls(what: str) -> Iterator[None]:
    """Any ``RedisError`` inside becomes ``UpstreamUnavailable`` naming the job store but not its address
    (which the log keeps, with the request id)."""
    try:
        yield
    except redis.RedisError as exc:
        log.warning("job store (Redis) failed while %s: %s: %s", what, type(exc).__name__, exc)
        raise UpstreamUnavailable(UNAVAILABLE_MESSAGE) from exc


class JobStore:
    """Synchronous (the Celery worker's threads and, through ``asyncio.to_thread``, the gRPC service)."""

    def __init__(self, url: str, ttl_s: int, idempotency_ttl_s: int) -> None:
        self.redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self.ttl_s = ttl_s
        self.idempotency_ttl_s = idempotency_ttl_s
        self._transition = self.redis.register_script(_TRANSITION)

    @staticmethod
    def key(job_id: str, part: str = "") -> str:
        return f"{PREFIX}:job:{job_id}" + (f":{part}" if part else "")

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def create(
        self,
        kind: JobKind,
        style_name: str,
        params: dict[str, Any],
        blobs: dict[str, bytes],
        idempotency_key: str = "",
    ) -> tuple[str, bool]:
        """A new QUEUED job with its input blobs, written in one transaction; returns (job id, created).

        With an idempotency key already used, returns that key's job and ``created=False``.
        """
        job_id = uuid.uuid4().hex
        with redis_calls("creating a job"):
            if idempotency_key:
                idem = f"{PREFIX}:idem:{idempotency_key}"
                if not self.redis.set(idem, job_id, nx=True, ex=self.idempotency_ttl_s):
                    existing = _text(self.redis.get(idem))
                    if existing and self.redis.exists(self.key(existing)):
                        return existing, False
                    self.redis.set(idem, job_id, ex=self.idempotency_ttl_s)
            ms = now_ms()
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(
                    self.key(job_id),
                    mapping={
                        "state": JobState.QUEUED.value,
                        "kind": kind.value,
                        "style_name": style_name,
                        "params": json.dumps(params),
                        "created_ms": ms,
                        "updated_ms": ms,
                        "total_iterations": int(params.get("iterations", 0)),
                        "cancel": 0,
                        "attempts": 0,
                    },
                )
                pipe.expire(self.key(job_id), self.ttl_s)
                for part, data in blobs.items():
                    pipe.set(self.key(job_id, part), data, ex=self.ttl_s)
                pipe.execute()
        return job_id, True

    def delete(self, job_id: str) -> None:
        """Remove a job that could not be queued (nothing half-written stays behind)."""
        parts = ["", "content", "style", "result", "preview"]
        with redis_calls("deleting a job"):
            self.redis.delete(*[self.key(job_id, p) for p in parts])

    def get(self, job_id: str) -> Job:
        with redis_calls("reading a job"):
            h = self.redis.hgetall(self.key(job_id))
        if not h:
            raise NotFound(f"no style job {clip(job_id)!r} (unknown, or older than the result TTL)")
        return Job.from_hash(job_id, {_bytes(k): _bytes(v) for k, v in h.items()})

    def blob(self, job_id: str, part: str) -> bytes | None:
        with redis_calls(f"reading a job's {part} image"):
            value = self.redis.get(self.key(job_id, part))
        return value if isinstance(value, bytes) else None

    def transition(
        self,
        job_id: str,
        to: JobState,
        fields: dict[str, Any] | None = None,
        blob: tuple[str, bytes] | None = None,
    ) -> tuple[bool, str]:
        """Move to ``to`` if allowed from the current state; returns (done, the state before)."""
        blob_key, blob_data = (self.key(job_id, blob[0]), blob[1]) if blob else ("", b"")
        with redis_calls(f"moving a job to {to.value}"):
            done, before = self._transition(
                keys=[self.key(job_id)],
                args=[
                    to.value,
                    json.dumps([s.value for s in sources_of(to)]),
                    json.dumps(fields or {}),
                    now_ms(),
                    blob_key,
                    blob_data,
                    self.ttl_s,
                ],
            )
        return bool(done), before.decode() if isinstance(before, bytes) else str(before)

    def progress(
        self, job_id: str, fields: dict[str, int | float | str], preview: bytes | None = None
    ) -> None:
        with redis_calls("recording progress"), self.redis.pipeline(transaction=True) as pipe:
            mapping: dict[Any, Any] = {**fields, "updated_ms": now_ms()}
            pipe.hset(self.key(job_id), mapping=mapping)
            if preview:
                pipe.set(self.key(job_id, "preview"), preview, ex=self.ttl_s)
            pipe.execute()

    def request_cancel(self, job_id: str) -> Job:
        """Flag the job; a QUEUED job is CANCELLED at once, a RUNNING one by its worker within seconds."""
        job = self.get(job_id)
        if job.state in (JobState.QUEUED, JobState.RUNNING):
            with redis_calls("flagging a job cancelled"):
                self.redis.hset(self.key(job_id), "cancel", 1)
            if job.state == JobState.QUEUED:
                self.transition(job_id, JobState.CANCELLED, {"error": "cancelled before it started"})
        return self.get(job_id)

    def cancel_requested(self, job_id: str) -> bool:
        with redis_calls("reading a job's cancel flag"):
            return self.redis.hget(self.key(job_id), "cancel") == b"1"

    def queue_length(self, queue: str) -> int:
        """Jobs waiting in the Celery queue ``queue`` (a Redis list on the same server)."""
        with redis_calls("reading the queue length"):
            return int(self.redis.llen(queue))
