"""Job state in Redis: one hash per job, image blobs beside it, indexes that bound what is kept.

State changes go through one Lua script that checks the current state against the allowed transitions,
so two workers (a redelivered or requeued job) can never both complete a job, and a cancelled job stays
cancelled. A running job belongs to one run (``owner``): only that run's heartbeats, progress and final
state count, and a job whose heartbeat stopped can be taken from it (the worker was lost).

Memory is bounded by count and bytes, not only by the TTL: a finished job keeps only its result image
(its inputs and preview are deleted when it ends); at most ``max_results`` results and ``max_bytes`` of
images are kept (the oldest results are dropped first and their jobs show "result expired"); at most
``max_records`` finished job records are kept (the oldest are deleted). Every image's size is accounted
in ``index:sizes`` and ``index:bytes`` by the same scripts that write it, so the totals stay exact.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from fovea.common import redis_client
from fovea.common.errors import NotFound, ResourceExhausted, UpstreamUnavailable, clip
from fovea.style.core.jobs import TERMINAL, JobKind, JobState, sources_of

if TYPE_CHECKING:
    from fovea.style.config import StyleSettings

log = logging.getLogger(__name__)

PREFIX = "fovea:style"
UNAVAILABLE_MESSAGE = "the job store (Redis) is unavailable; retry later"
BLOB_PARTS = ("content", "style", "preview", "result")
RESULT_EXPIRED = (
    "result expired: the job store keeps only the newest results (its count and size caps); submit the job "
    "again"
)

# Shared by every script. ARGV[1] is a JSON object ``A`` (prefix, id, caps, ...); image bytes follow in
# ARGV[2..]. Index keys: running (zset id -> last heartbeat ms), results (zset id -> finish order: jobs
# holding a result), done (zset id -> finish order: finished job records), sizes (hash "id:part" -> bytes),
# bytes (the sum of sizes), seq (a counter ordering jobs that end in the same millisecond).
_PRELUDE = """
local A = cjson.decode(ARGV[1])
local P = A.prefix
local RUNNING, RESULTS, DONE = P .. ':index:running', P .. ':index:results', P .. ':index:done'
local SIZES, BYTES = P .. ':index:sizes', P .. ':index:bytes'
local function job_key(id) return P .. ':job:' .. id end
local function blob_key(id, part) return P .. ':job:' .. id .. ':' .. part end
local function stored_bytes() return tonumber(redis.call('GET', BYTES) or '0') end
local function oldest(zset) return redis.call('ZRANGE', zset, 0, 0)[1] end
-- The score of results and done: finish ms * 1000 + a counter, so jobs ending in the same millisecond keep
-- their order (1.8e15 is exact in a double).
local function finish_score() return tonumber(A.now) * 1000 + redis.call('INCR', P .. ':index:seq') % 1000 end

local function drop_blob(id, part)
  local n = tonumber(redis.call('HGET', SIZES, id .. ':' .. part) or '0')
  redis.call('DEL', blob_key(id, part))
  if n > 0 then redis.call('DECRBY', BYTES, n) end
  redis.call('HDEL', SIZES, id .. ':' .. part)
end

local function put_blob(id, part, data)
  drop_blob(id, part)
  redis.call('SET', blob_key(id, part), data, 'EX', A.ttl)
  redis.call('HSET', SIZES, id .. ':' .. part, #data)
  redis.call('INCRBY', BYTES, #data)
end

local function expire_result(id)
  drop_blob(id, 'result')
  redis.call('ZREM', RESULTS, id)
  if redis.call('EXISTS', job_key(id)) == 1 then redis.call('HSET', job_key(id), 'result_expired', '1') end
end

local function forget(id)
  for _, part in ipairs({'content', 'style', 'preview', 'result'}) do drop_blob(id, part) end
  local idem = redis.call('HGET', job_key(id), 'idem')
  if idem and idem ~= '' and redis.call('GET', P .. ':idem:' .. idem) == id then
    redis.call('DEL', P .. ':idem:' .. idem)
  end
  redis.call('DEL', job_key(id))
  redis.call('ZREM', RUNNING, id)
  redis.call('ZREM', RESULTS, id)
  redis.call('ZREM', DONE, id)
end

-- Oldest results first, until at most max_results remain and ``extra`` more bytes fit; then the oldest
-- finished records beyond max_records.
local function make_room(extra)
  while redis.call('ZCARD', RESULTS) > A.max_results
      or (stored_bytes() + extra > A.max_bytes and redis.call('ZCARD', RESULTS) > 0) do
    expire_result(oldest(RESULTS))
  end
  while redis.call('ZCARD', DONE) > A.max_records do forget(oldest(DONE)) end
end
"""

# A: id, fields (strings), parts (names of the blobs in ARGV[2..]). Returns 1, or 0 when the images do not
# fit even after dropping every result.
_CREATE = (
    _PRELUDE
    + """
local needed = 0
for i = 1, #A.parts do needed = needed + #ARGV[i + 1] end
make_room(needed)
if stored_bytes() + needed > A.max_bytes then return 0 end
local key = job_key(A.id)
for k, v in pairs(A.fields) do redis.call('HSET', key, k, v) end
redis.call('EXPIRE', key, A.ttl)
for i, part in ipairs(A.parts) do put_blob(A.id, part, ARGV[i + 1]) end
return 1
"""
)

# A: id, to, allowed (current states allowed), fields (strings), now, owner ('' = any run), stale_before
# (> 0: a RUNNING job moves only if its last heartbeat is older), terminal, result (ARGV[2] is the result).
# Returns {done, the state before}.
_TRANSITION = (
    _PRELUDE
    + """
local key = job_key(A.id)
local current = redis.call('HGET', key, 'state')
if not current then
  redis.call('ZREM', RUNNING, A.id)
  return {0, ''}
end
local ok = false
for _, s in ipairs(A.allowed) do if s == current then ok = true end end
if not ok then return {0, current} end
if A.owner ~= '' and redis.call('HGET', key, 'owner') ~= A.owner then return {0, current} end
if current == 'RUNNING' and A.stale_before > 0
    and tonumber(redis.call('HGET', key, 'heartbeat_ms') or '0') >= A.stale_before then
  return {0, current}
end
redis.call('HSET', key, 'state', A.to, 'updated_ms', A.now)
for k, v in pairs(A.fields) do redis.call('HSET', key, k, v) end
if A.to == 'RUNNING' then
  redis.call('HSET', key, 'heartbeat_ms', A.now)
  redis.call('ZADD', RUNNING, A.now, A.id)
else
  redis.call('ZREM', RUNNING, A.id)
end
if A.terminal then
  for _, part in ipairs({'content', 'style', 'preview'}) do drop_blob(A.id, part) end
  local score = finish_score()
  if A.result then
    put_blob(A.id, 'result', ARGV[2])
    redis.call('ZADD', RESULTS, score, A.id)
  end
  redis.call('EXPIRE', key, A.ttl)
  redis.call('ZADD', DONE, score, A.id)
  make_room(0)
end
return {1, current}
"""
)

# A: id, owner, now, fields (strings, may be empty), preview (ARGV[2] is a preview image). A heartbeat, with
# progress: returns 1, or 0 when the job is no longer RUNNING for this owner (it was taken over or ended).
_BEAT = (
    _PRELUDE
    + """
local key = job_key(A.id)
if redis.call('HGET', key, 'state') ~= 'RUNNING' or redis.call('HGET', key, 'owner') ~= A.owner then
  return 0
end
redis.call('HSET', key, 'heartbeat_ms', A.now)
for k, v in pairs(A.fields) do redis.call('HSET', key, k, v) end
redis.call('ZADD', RUNNING, A.now, A.id)
if A.preview then put_blob(A.id, 'preview', ARGV[2]) end
return 1
"""
)

# A: id. Deletes the job, its images and its index entries.
_FORGET = _PRELUDE + "forget(A.id) return 1"

# A: now, done_before (the finish score, ms * 1000, before which a record has expired by its TTL). Forgets the index entries
# of jobs whose record is gone, so the byte total stays exact. Returns how many jobs it forgot.
_SWEEP = (
    _PRELUDE
    + """
local gone = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', DONE, '-inf', A.done_before)) do gone[id] = true end
for _, field in ipairs(redis.call('HKEYS', SIZES)) do
  local id = string.match(field, '^(.*):[^:]+$')
  if id and not gone[id] and redis.call('EXISTS', job_key(id)) == 0 then gone[id] = true end
end
local n = 0
for id, _ in pairs(gone) do
  forget(id)
  n = n + 1
end
return n
"""
)


@dataclass(frozen=True)
class StoreLimits:
    """What the job store keeps at most (besides the TTL)."""

    max_results: int
    max_bytes: int
    max_records: int


@dataclass(frozen=True)
class StoreUsage:
    results: int
    records: int
    running: int
    image_bytes: int


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
    preserve_color: bool = False
    owner: str = ""
    heartbeat_ms: int = 0
    result_expired: bool = False
    worker_losses: int = 0

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
            preserve_color=get("preserve_color", "0") == "1",
            owner=get("owner"),
            heartbeat_ms=int(get("heartbeat_ms", "0")),
            result_expired=get("result_expired", "0") == "1",
            worker_losses=int(get("worker_losses", "0")),
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

    def __init__(self, url: str, ttl_s: int, idempotency_ttl_s: int, limits: StoreLimits) -> None:
        self.redis = redis_client.connect_sync(url, socket_timeout=5)
        self.ttl_s = ttl_s
        self.idempotency_ttl_s = idempotency_ttl_s
        self.limits = limits
        self._create = self.redis.register_script(_CREATE)
        self._transition = self.redis.register_script(_TRANSITION)
        self._beat = self.redis.register_script(_BEAT)
        self._sweep = self.redis.register_script(_SWEEP)
        self._forget = self.redis.register_script(_FORGET)

    @staticmethod
    def key(job_id: str, part: str = "") -> str:
        return f"{PREFIX}:job:{job_id}" + (f":{part}" if part else "")

    @staticmethod
    def index_key(name: str) -> str:
        """``running``, ``results``, ``done``, ``sizes`` or ``bytes`` (see the module docstring)."""
        return f"{PREFIX}:index:{name}"

    def _args(self, **fields: Any) -> str:
        """ARGV[1] of every script: the key prefix, the TTL and caps, and the call's own fields."""
        return json.dumps(
            {
                "prefix": PREFIX,
                "ttl": self.ttl_s,
                "max_results": self.limits.max_results,
                "max_bytes": self.limits.max_bytes,
                "max_records": self.limits.max_records,
                **fields,
            }
        )

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
        preserve_color: bool = False,
    ) -> tuple[str, bool]:
        """A new QUEUED job with its input blobs, written in one script; returns (job id, created).

        With an idempotency key already used, returns that key's job and ``created=False``. Older results
        are dropped to make room for the inputs; ``ResourceExhausted`` when they still do not fit (the
        store is full of queued jobs' images).
        """
        if unknown := set(blobs) - set(BLOB_PARTS):
            raise ValueError(f"unknown blob parts {sorted(unknown)}; known: {', '.join(BLOB_PARTS)}")
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
            fields = {
                "state": JobState.QUEUED.value,
                "kind": kind.value,
                "style_name": style_name,
                "params": json.dumps(params),
                "created_ms": ms,
                "updated_ms": ms,
                "total_iterations": int(params.get("iterations", 0)),
                "cancel": 0,
                "attempts": 0,
                "preserve_color": int(preserve_color),
                "idem": idempotency_key,
            }
            parts = list(blobs)
            created = self._create(
                args=[
                    self._args(id=job_id, fields={k: str(v) for k, v in fields.items()}, parts=parts),
                    *[blobs[p] for p in parts],
                ]
            )
        if not created:
            raise ResourceExhausted(
                f"the style job store is full ({self.limits.max_bytes // (1024 * 1024)} MiB of queued jobs' "
                "images); retry later"
            )
        return job_id, True

    def delete(self, job_id: str) -> None:
        """Remove a job that could not be queued (nothing half-written stays behind)."""
        with redis_calls("deleting a job"):
            self._forget(args=[self._args(id=job_id)])

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
        result: bytes | None = None,
        *,
        owner: str = "",
        stale_before_ms: int = 0,
    ) -> tuple[bool, str]:
        """Move to ``to`` if allowed from the current state; returns (done, the state before).

        Args:
            result: the result image (only when ``to`` is SUCCEEDED).
            owner: when given, the job must belong to this run (a run whose job was taken over changes
                nothing).
            stale_before_ms: when > 0, a RUNNING job moves only if its last heartbeat is older (its worker
                is lost); a live worker's job is left alone.
        """
        if result is not None and to != JobState.SUCCEEDED:
            raise ValueError(f"only a SUCCEEDED job has a result, not a {to.value} one")
        with redis_calls(f"moving a job to {to.value}"):
            done, before = self._transition(
                args=[
                    self._args(
                        id=job_id,
                        to=to.value,
                        allowed=[s.value for s in sources_of(to)],
                        fields={k: str(v) for k, v in (fields or {}).items()},
                        now=str(now_ms()),  # a string: Redis would format a Lua number its own way
                        owner=owner,
                        stale_before=stale_before_ms,
                        terminal=to in TERMINAL,
                        result=result is not None,
                    ),
                    result or b"",
                ],
            )
        return bool(done), before.decode() if isinstance(before, bytes) else str(before)

    def heartbeat(
        self,
        job_id: str,
        owner: str,
        fields: dict[str, int | float | str] | None = None,
        preview: bytes | None = None,
    ) -> bool:
        """Mark the job alive (with progress ``fields`` and a ``preview`` image, if any); False when it is no
        longer RUNNING for ``owner`` (taken over after a lost heartbeat, or ended): the run should stop."""
        with redis_calls("recording a heartbeat"):
            alive = self._beat(
                args=[
                    self._args(
                        id=job_id,
                        owner=owner,
                        now=str(now_ms()),  # a string: Redis would format a Lua number its own way
                        fields={k: str(v) for k, v in (fields or {}).items()},
                        preview=preview is not None,
                    ),
                    preview or b"",
                ]
            )
        return bool(alive)

    def lost_jobs(self, stale_before_ms: int) -> list[str]:
        """Ids of RUNNING jobs whose last heartbeat is older than ``stale_before_ms``."""
        with redis_calls("looking for jobs of lost workers"):
            ids = self.redis.zrangebyscore(self.index_key("running"), "-inf", f"({stale_before_ms}")
        return [_text(i) for i in ids]

    def sweep(self) -> int:
        """Forget the index entries of jobs whose record expired by its TTL; returns how many."""
        with redis_calls("sweeping expired jobs"):
            return int(self._sweep(args=[self._args(done_before=str((now_ms() - self.ttl_s * 1000) * 1000))]))

    def usage(self) -> StoreUsage:
        with redis_calls("reading the store's usage"), self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self.index_key("results"))
            pipe.zcard(self.index_key("done"))
            pipe.zcard(self.index_key("running"))
            pipe.get(self.index_key("bytes"))
            results, records, running, image_bytes = pipe.execute()
        return StoreUsage(int(results), int(records), int(running), int(image_bytes or 0))

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


def store_limits(settings: StyleSettings) -> StoreLimits:
    return StoreLimits(
        max_results=settings.max_results,
        max_bytes=settings.max_stored_bytes,
        max_records=settings.max_job_records,
    )


def open_store(settings: StyleSettings) -> JobStore:
    """The job store as the settings describe it."""
    return JobStore(
        settings.redis_url, settings.result_ttl_s, settings.idempotency_ttl_s, store_limits(settings)
    )
