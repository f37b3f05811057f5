"""Training jobs and cached features in Redis (synchronous: the worker's thread, and the service through
``asyncio.to_thread``).

Keys (prefix ``fovea:classify``):

- ``job:<id>``: hash of the job's fields (``state``, ``stage``, ``epoch``, ``loss``, ... and ``result`` as
  JSON); expires ``job_ttl_s`` after it ends.
- ``job:<id>:images``: list of the encoded images in request order, ``job:<id>:labels`` their class names
  (JSON); deleted when the job ends (a finished job keeps only its result).
- ``job:<id>:sources``: each image's source as the client named it (a file name; JSON), for messages.
- ``running``: sorted set of the RUNNING jobs by the end of their lease (the reaper's index).
- ``training:<classifier name>``: the id of the job that trains that classifier now (one at a time).
- ``features:<backbone>:<sha256>``: float32 bytes of an input crop's features, ``<backbone>`` = a digest of the
  backbone's ONNX file (a rebuilt backbone does not reuse them); expire after ``feature_cache_ttl_s``.

A job moves QUEUED -> RUNNING -> SUCCEEDED | FAILED; a finished job is never changed again (a redelivered
message finds it finished and does nothing). A RUNNING job has an ``owner`` (the run of a worker that holds
it) and a ``lease_until``, renewed by that worker's heartbeat every few seconds: a redelivered message finds
the lease fresh and does not start the job a second time; once the lease ran out (its worker was lost) the
classify service's reaper puts it back to QUEUED and queues it again (``fovea.classify.reaper``). Only the
owner's progress and end are recorded (a run whose job was taken over stops), so a job ends once. While a
job of a classifier is QUEUED or RUNNING, another job for the same classifier is refused.

Every Redis error is ``UpstreamUnavailable`` (UNAVAILABLE: the worker's task retries, callers are told to
retry). A job id is 32 hex digits; any other is NOT_FOUND before Redis is asked.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis

from fovea.common import redis_client
from fovea.common.errors import FailedPrecondition, NotFound, UpstreamUnavailable

PREFIX = "fovea:classify"
RUNNING_INDEX = f"{PREFIX}:running"
QUEUED, RUNNING, SUCCEEDED, FAILED = "QUEUED", "RUNNING", "SUCCEEDED", "FAILED"
TERMINAL = frozenset({SUCCEEDED, FAILED})
STARTED, ENDED, BUSY = "STARTED", "ENDED", "BUSY"  # what start() found
JOB_ID = re.compile(r"[0-9a-f]{32}")


def check_job_id(job_id: str) -> str:
    """``job_id`` when it is one :meth:`TrainingStore.create` could have made (32 hex digits).

    Raises:
        NotFound: any other string (never a key of Redis' own).
    """
    if not JOB_ID.fullmatch(job_id):
        raise NotFound(f"no training job {job_id[:64]!r} (job ids are 32 hex digits)")
    return job_id


class TrainingInProgress(FailedPrecondition):
    """A job for the same classifier is queued or running (one job per classifier at a time)."""


class TakenOver(Exception):
    """The job is no longer this run's: its lease ran out and it was requeued, or it ended."""


# HSET of the job's fields, only while ``owner`` (ARGV[1]) holds it; renews its lease and its index entry.
# KEYS: job, running index; ARGV: owner, now, lease seconds, job id, field, value, ...
_RENEW = """
if redis.call('HGET', KEYS[1], 'state') ~= 'RUNNING' or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return 0
end
local lease = tonumber(ARGV[2]) + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'lease_until', lease)
if #ARGV > 4 then redis.call('HSET', KEYS[1], unpack(ARGV, 5)) end
redis.call('ZADD', KEYS[2], lease, ARGV[4])
return 1
"""
# QUEUED (or RUNNING on a lease that ran out) -> RUNNING for ``owner``.
# KEYS: job, running index; ARGV: owner, now, lease seconds, job id
_START = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'SUCCEEDED' or state == 'FAILED' then return 'ENDED' end
if state == 'RUNNING' then
  local holder = redis.call('HGET', KEYS[1], 'owner')
  local lease = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0')
  if holder and holder ~= ARGV[1] and lease > tonumber(ARGV[2]) then return 'BUSY' end
end
local lease = tonumber(ARGV[2]) + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'state', 'RUNNING', 'stage', 'starting', 'error', '', 'updated', ARGV[2],
  'owner', ARGV[1], 'lease_until', lease)
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('ZADD', KEYS[2], lease, ARGV[4])
return 'STARTED'
"""
# End the job (once): only its owner's run may ('' = whoever holds it), and never a job that ended.
# KEYS: job, running index, training lock, images, labels, groups, sources;
# ARGV: owner, ttl seconds, job id, field, value, ...
_FINISH = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'SUCCEEDED' or state == 'FAILED' then return 0 end
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('HDEL', KEYS[1], 'lease_until')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
redis.call('ZREM', KEYS[2], ARGV[3])
if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
redis.call('DEL', KEYS[4], KEYS[5], KEYS[6], KEYS[7])
return 1
"""
# A RUNNING job whose lease ran out -> QUEUED (owner cleared, one more worker loss), or its index entry
# fixed when it is not that. KEYS: job, running index; ARGV: now, job id, error.
# Returns the job's worker losses when requeued, else 0.
_REQUEUE = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'RUNNING' then redis.call('ZREM', KEYS[2], ARGV[2]) return 0 end
local lease = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0')
if lease > tonumber(ARGV[1]) then redis.call('ZADD', KEYS[2], lease, ARGV[2]) return 0 end
redis.call('HSET', KEYS[1], 'state', 'QUEUED', 'stage', 'queued again (its worker was lost)', 'owner', '',
  'error', ARGV[3], 'updated', ARGV[1])
redis.call('HDEL', KEYS[1], 'lease_until')
redis.call('ZREM', KEYS[2], ARGV[2])
return redis.call('HINCRBY', KEYS[1], 'worker_losses', 1)
"""

# ``owner``'s RUNNING job -> QUEUED (its run gives it back to wait for an upstream; no worker was lost).
# KEYS: job, running index; ARGV: owner, now, job id, error.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'state') ~= 'RUNNING' or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'QUEUED', 'stage', 'queued', 'owner', '', 'error', ARGV[4],
  'updated', ARGV[2])
redis.call('HDEL', KEYS[1], 'lease_until')
redis.call('ZREM', KEYS[2], ARGV[3])
return 1
"""


@contextmanager
def _redis(what: str) -> Iterator[None]:
    """``RedisError`` -> ``UpstreamUnavailable`` (the address left out of the message)."""
    try:
        yield
    except redis.RedisError as exc:
        raise UpstreamUnavailable(f"Redis did not {what}; retry later ({type(exc).__name__})") from exc


@dataclass
class TrainingJob:
    job_id: str
    name: str
    state: str
    stage: str = ""
    epoch: int = 0
    epochs: int = 0
    loss: float = 0.0
    validation_accuracy: float = 0.0
    error: str = ""
    created: float = 0.0
    updated: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    owner: str = ""  # the run that holds a RUNNING job
    lease_until: float = 0.0
    attempts: int = 0  # runs started
    worker_losses: int = 0  # runs whose worker was lost (requeued by the reaper)


_FLOATS = ("loss", "validation_accuracy", "created", "updated", "lease_until")
_INTS = ("epoch", "epochs", "attempts", "worker_losses")


class TrainingStore:
    def __init__(self, url: str, job_ttl_s: int, feature_ttl_s: int, lease_s: float = 15.0) -> None:
        """``lease_s``: how long a running job stays its worker's without a heartbeat."""
        self.redis: Any = redis_client.connect_sync(url, socket_timeout=10)
        self.job_ttl_s = job_ttl_s
        self.feature_ttl_s = feature_ttl_s
        self.lease_s = lease_s
        self._renew = self.redis.register_script(_RENEW)
        self._start = self.redis.register_script(_START)
        self._finish = self.redis.register_script(_FINISH)
        self._requeue = self.redis.register_script(_REQUEUE)
        self._release = self.redis.register_script(_RELEASE)

    @staticmethod
    def lock_key(name: str) -> str:
        """Holds the id of the job training classifier ``name`` now."""
        return f"{PREFIX}:training:{name}"

    @staticmethod
    def key(job_id: str, part: str = "") -> str:
        return f"{PREFIX}:job:{check_job_id(job_id)}" + (f":{part}" if part else "")

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def create(
        self,
        name: str,
        images: Sequence[bytes],
        labels: Sequence[str],
        options: dict[str, Any],
        groups: Sequence[str] | None = None,
        sources: Sequence[str] | None = None,
    ) -> str:
        """Store a QUEUED job with its images (each image's group and source, when given); returns its id.

        Raises:
            TrainingInProgress: a job for classifier ``name`` is queued or running; it is named.
        """
        job_id = uuid.uuid4().hex
        now = time.time()
        lock = self.lock_key(name)
        with _redis("store the training job"), self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(lock)
                    holder = pipe.get(lock)
                    if holder is not None:
                        self._refuse_beside(pipe, name, holder.decode())
                    pipe.multi()
                    pipe.set(lock, job_id, ex=self.job_ttl_s)
                    pipe.hset(
                        self.key(job_id),
                        mapping={
                            "name": name,
                            "state": QUEUED,
                            "stage": "queued",
                            "epochs": int(options.get("epochs", 0)),
                            "options": json.dumps(options),
                            "created": now,
                            "updated": now,
                        },
                    )
                    pipe.expire(self.key(job_id), self.job_ttl_s)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        try:
            with _redis("store the training job"), self.redis.pipeline(transaction=True) as pipe:
                pipe.rpush(self.key(job_id, "images"), *images)
                pipe.set(self.key(job_id, "labels"), json.dumps(list(labels)))
                pipe.set(self.key(job_id, "groups"), json.dumps(list(groups or [])))
                pipe.set(self.key(job_id, "sources"), json.dumps(list(sources or [])))
                for key in self._inputs(job_id):
                    pipe.expire(key, self.job_ttl_s)
                pipe.execute()
        except UpstreamUnavailable:
            with contextlib.suppress(UpstreamUnavailable):
                self.drop(job_id)
            raise
        return job_id

    def _refuse_beside(self, pipe: Any, name: str, holder: str) -> None:
        """Raise ``TrainingInProgress`` when job ``holder`` (of classifier ``name``) is queued or running."""
        if not JOB_ID.fullmatch(holder):
            return
        state, stage = pipe.hmget(self.key(holder), ["state", "stage"])
        if state is None or state.decode() in TERMINAL:
            return  # it ended (or expired) without letting go: the lock is stale
        pipe.unwatch()
        raise TrainingInProgress(
            f"classifier {name!r} is being trained by job {holder} ({state.decode()}, "
            f"{(stage or b'').decode()}): one job per classifier at a time; wait for it to end "
            f"(fovea classifiers job {holder}) and train again"
        )

    def drop(self, job_id: str) -> None:
        """Remove a job entirely (its message could not be queued), and its hold on its classifier."""
        with _redis("remove the training job"):
            name = self.redis.hget(self.key(job_id), "name")
            if name is not None and self.redis.get(self.lock_key(name.decode())) == job_id.encode():
                self.redis.delete(self.lock_key(name.decode()))
            self.redis.delete(self.key(job_id), *self._inputs(job_id))

    def get(self, job_id: str) -> TrainingJob:
        with _redis("answer"):
            raw = self.redis.hgetall(self.key(job_id))
        if not raw:
            raise NotFound(f"no training job {job_id[:64]!r} (unknown, or expired)")
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        job = TrainingJob(job_id=job_id, name=fields.get("name", ""), state=fields.get("state", QUEUED))
        job.stage = fields.get("stage", "")
        job.error = fields.get("error", "")
        job.owner = fields.get("owner", "")
        for name in _FLOATS:
            setattr(job, name, float(fields.get(name, 0.0)))
        for name in _INTS:
            setattr(job, name, int(fields.get(name, 0)))
        job.options = json.loads(fields.get("options", "{}"))
        job.result = json.loads(fields["result"]) if "result" in fields else None
        return job

    def _inputs(self, job_id: str) -> tuple[str, str, str, str]:
        return tuple(self.key(job_id, part) for part in ("images", "labels", "groups", "sources"))  # type: ignore[return-value]

    def sources(self, job_id: str) -> list[str]:
        """Each image's source as the client named it ('' = none; empty when the job has none, or ended)."""
        with _redis("return the job's sources"):
            return list(json.loads(self.redis.get(self.key(job_id, "sources")) or b"[]"))

    def groups(self, job_id: str) -> list[str]:
        """Each image's group ('' = none; empty when the job has none, or has ended)."""
        with _redis("return the job's groups"):
            return list(json.loads(self.redis.get(self.key(job_id, "groups")) or b"[]"))

    def inputs(self, job_id: str) -> tuple[list[bytes], list[str]]:
        """The job's images and their labels (empty once the job has ended)."""
        with _redis("return the job's images"):
            images = self.redis.lrange(self.key(job_id, "images"), 0, -1)
            labels = json.loads(self.redis.get(self.key(job_id, "labels")) or b"[]")
        return list(images), list(labels)

    def update(self, job_id: str, owner: str, **fields: Any) -> None:
        """Progress of a running job (stage, epoch, loss, validation_accuracy); renews its lease.

        Raises:
            TakenOver: the job is not ``owner``'s any more (requeued after its lease ran out, or ended).
        """
        if not self.heartbeat(job_id, owner, {**fields, "updated": time.time()}):
            raise TakenOver(f"training job {job_id} is no longer this run's ({owner})")

    def heartbeat(self, job_id: str, owner: str, fields: dict[str, Any] | None = None) -> bool:
        """Renew the lease of ``owner``'s running job (and set ``fields``); False when it is not theirs."""
        now = time.time()
        flat = [str(v) for item in (fields or {}).items() for v in item]
        with _redis("renew the job's lease"):
            done = self._renew(
                keys=[self.key(job_id), RUNNING_INDEX], args=[owner, now, self.lease_s, job_id, *flat]
            )
        return bool(done)

    def start(self, job_id: str, owner: str) -> str:
        """QUEUED (or RUNNING with a lease that ran out: a lost worker) -> RUNNING, leased to ``owner``.

        Returns ``STARTED``; ``ENDED`` when the job ended (or is gone); ``BUSY`` when another owner holds a
        fresh lease (a redelivered message while the job runs elsewhere).
        """
        with _redis("start the training job"):
            found = self._start(
                keys=[self.key(job_id), RUNNING_INDEX], args=[owner, time.time(), self.lease_s, job_id]
            )
        return str(found.decode() if isinstance(found, bytes) else found)

    def lease_left(self, job_id: str) -> float:
        """Seconds until the job's lease runs out (0 when it has none, or it ran out)."""
        with _redis("answer"):
            lease = self.redis.hget(self.key(job_id), "lease_until")
        return max(0.0, float(lease or 0) - time.time())

    def lost_jobs(self, now: float | None = None) -> list[str]:
        """RUNNING jobs whose lease ran out by ``now``: their worker was lost (the reaper's pass)."""
        with _redis("answer"):
            ids = self.redis.zrangebyscore(RUNNING_INDEX, "-inf", time.time() if now is None else now)
        return [i.decode() for i in ids]

    def requeue(self, job_id: str, error: str) -> int:
        """A job whose lease ran out -> QUEUED with ``error``; returns its worker losses then (0: it was not
        requeued: a heartbeat came meanwhile, another service requeued it, or it is not running)."""
        with _redis("requeue the training job"):
            return int(
                self._requeue(keys=[self.key(job_id), RUNNING_INDEX], args=[time.time(), job_id, error])
            )

    def requeue_own(self, job_id: str, owner: str, error: str) -> bool:
        """``owner``'s running job back to QUEUED with ``error`` (its run waits to retry: Triton or Redis is
        down), no worker lost; False when it was not ``owner``'s."""
        with _redis("requeue the training job"):
            return bool(
                self._release(
                    keys=[self.key(job_id), RUNNING_INDEX], args=[owner, time.time(), job_id, error]
                )
            )

    def finish(
        self,
        job_id: str,
        state: str,
        *,
        owner: str = "",
        result: dict[str, Any] | None = None,
        error: str = "",
    ) -> bool:
        """End the job (SUCCEEDED with its result or FAILED with the reason), drop its inputs and its hold on
        its classifier. Only ``owner``'s run may end it ('' = whichever holds it); a job ends once: False
        when it had ended, or another run holds it."""
        fields: dict[str, Any] = {"state": state, "stage": state.lower(), "updated": time.time(), "owner": ""}
        if result is not None:
            fields["result"] = json.dumps(result)
        if error:
            fields["error"] = error
        flat = [str(v) for item in fields.items() for v in item]
        with _redis("record the job's end"):
            name = self.redis.hget(self.key(job_id), "name")
            lock = self.lock_key(name.decode() if name is not None else "")
            done = self._finish(
                keys=[self.key(job_id), RUNNING_INDEX, lock, *self._inputs(job_id)],
                args=[owner, self.job_ttl_s, job_id, *flat],
            )
        return bool(done)

    def queued(self, queue: str) -> int:
        """Messages waiting in the Celery queue (the Redis list of that name)."""
        with _redis("answer"):
            return int(self.redis.llen(queue))

    # ---------------------------------------------------------------------------------- features cache
    @staticmethod
    def feature_key(backbone: str, digest: str) -> str:
        return f"{PREFIX}:features:{backbone}:{digest}"

    def cached_features(self, backbone: str, digests: Sequence[str]) -> list[np.ndarray | None]:
        if not digests:
            return []
        with _redis("return cached features"):
            values = self.redis.mget([self.feature_key(backbone, d) for d in digests])
        return [None if v is None else np.frombuffer(v, np.float32).copy() for v in values]

    def cache_features(self, backbone: str, digests: Sequence[str], features: np.ndarray) -> None:
        with _redis("cache the features"), self.redis.pipeline(transaction=False) as pipe:
            for digest, row in zip(digests, features, strict=True):
                pipe.set(
                    self.feature_key(backbone, digest),
                    np.asarray(row, np.float32).tobytes(),
                    ex=self.feature_ttl_s,
                )
            pipe.execute()


__all__ = [
    "BUSY",
    "ENDED",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "STARTED",
    "SUCCEEDED",
    "TERMINAL",
    "TakenOver",
    "TrainingInProgress",
    "TrainingJob",
    "TrainingStore",
    "check_job_id",
]
