"""Training jobs and cached features in Redis (synchronous: the worker's thread, and the service through
``asyncio.to_thread``).

Keys (prefix ``fovea:classify``):

- ``job:<id>``: hash of the job's fields (``state``, ``stage``, ``epoch``, ``loss``, ... and ``result`` as
  JSON); expires ``job_ttl_s`` after it ends.
- ``job:<id>:images``: list of the encoded images in request order, ``job:<id>:labels`` their class names
  (JSON); deleted when the job ends (a finished job keeps only its result).
- ``features:<backbone>:<sha256>``: float32 bytes of an input crop's features, ``<backbone>`` = a digest of the
  backbone's ONNX file (a rebuilt backbone does not reuse them); expire after ``feature_cache_ttl_s``.

A job moves QUEUED -> RUNNING -> SUCCEEDED | FAILED; a finished job is never changed again (a redelivered
message finds it finished and does nothing). A RUNNING job has an ``owner`` (the worker running it) and a
``lease_until``, renewed with each progress update: a redelivered message finds the lease fresh and does not
start the job a second time; once the lease ran out (its worker was lost) another worker takes it over.

Every Redis error is ``UpstreamUnavailable`` (UNAVAILABLE: the worker's task retries, callers are told to
retry). A job id is 32 hex digits; any other is NOT_FOUND before Redis is asked.
"""

from __future__ import annotations

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
from fovea.common.errors import NotFound, UpstreamUnavailable

PREFIX = "fovea:classify"
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


_FLOATS = ("loss", "validation_accuracy", "created", "updated")
_INTS = ("epoch", "epochs")


class TrainingStore:
    def __init__(self, url: str, job_ttl_s: int, feature_ttl_s: int, lease_s: float = 900.0) -> None:
        self.redis: Any = redis_client.connect_sync(url, socket_timeout=10)
        self.job_ttl_s = job_ttl_s
        self.feature_ttl_s = feature_ttl_s
        self.lease_s = lease_s

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
    ) -> str:
        """Store a QUEUED job with its images (and each image's group, when given); returns its id."""
        job_id = uuid.uuid4().hex
        now = time.time()
        with _redis("store the training job"), self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(self.key(job_id, "images"), *images)
            pipe.set(self.key(job_id, "labels"), json.dumps(list(labels)))
            pipe.set(self.key(job_id, "groups"), json.dumps(list(groups or [])))
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
            for key in (self.key(job_id), *self._inputs(job_id)):
                pipe.expire(key, self.job_ttl_s)
            pipe.execute()
        return job_id

    def drop(self, job_id: str) -> None:
        """Remove a job entirely (its message could not be queued)."""
        with _redis("remove the training job"):
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
        for name in _FLOATS:
            setattr(job, name, float(fields.get(name, 0.0)))
        for name in _INTS:
            setattr(job, name, int(fields.get(name, 0)))
        job.options = json.loads(fields.get("options", "{}"))
        job.result = json.loads(fields["result"]) if "result" in fields else None
        return job

    def _inputs(self, job_id: str) -> tuple[str, str, str]:
        return self.key(job_id, "images"), self.key(job_id, "labels"), self.key(job_id, "groups")

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

    def update(self, job_id: str, **fields: Any) -> None:
        """Progress of a running job (stage, epoch, loss, validation_accuracy); renews its lease."""
        now = time.time()
        with _redis("record the job's progress"):
            self.redis.hset(
                self.key(job_id), mapping={**fields, "updated": now, "lease_until": now + self.lease_s}
            )

    def start(self, job_id: str, owner: str) -> str:
        """QUEUED (or RUNNING with a lease that ran out: a lost worker) -> RUNNING, leased to ``owner``.

        Returns ``STARTED``; ``ENDED`` when the job ended (or is gone); ``BUSY`` when another owner holds a
        fresh lease (a redelivered message while the job runs elsewhere).
        """
        key = self.key(job_id)
        with _redis("start the training job"), self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    state, holder, lease = pipe.hmget(key, ["state", "owner", "lease_until"])
                    if state is None or state.decode() in TERMINAL:
                        pipe.unwatch()
                        return ENDED
                    now = time.time()
                    if (
                        state.decode() == RUNNING
                        and holder is not None
                        and holder.decode() != owner
                        and float(lease or 0) > now
                    ):
                        pipe.unwatch()
                        return BUSY
                    pipe.multi()
                    pipe.hset(
                        key,
                        mapping={
                            "state": RUNNING,
                            "stage": "starting",
                            "updated": now,
                            "owner": owner,
                            "lease_until": now + self.lease_s,
                        },
                    )
                    pipe.execute()
                    return STARTED
                except redis.WatchError:
                    continue

    def lease_left(self, job_id: str) -> float:
        """Seconds until the job's lease runs out (0 when it has none, or it ran out)."""
        with _redis("answer"):
            lease = self.redis.hget(self.key(job_id), "lease_until")
        return max(0.0, float(lease or 0) - time.time())

    def finish(
        self, job_id: str, state: str, *, result: dict[str, Any] | None = None, error: str = ""
    ) -> None:
        """End the job (SUCCEEDED with its result or FAILED with the reason) and drop its inputs."""
        fields: dict[str, Any] = {"state": state, "stage": state.lower(), "updated": time.time()}
        if result is not None:
            fields["result"] = json.dumps(result)
        if error:
            fields["error"] = error
        with _redis("record the job's end"), self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key(job_id), mapping=fields)
            pipe.hdel(self.key(job_id), "lease_until")
            pipe.expire(self.key(job_id), self.job_ttl_s)
            pipe.delete(*self._inputs(job_id))
            pipe.execute()

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
    "TrainingJob",
    "TrainingStore",
    "check_job_id",
]
