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
message finds it finished and does nothing).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis

from fovea.common.errors import NotFound, UpstreamUnavailable

PREFIX = "fovea:classify"
QUEUED, RUNNING, SUCCEEDED, FAILED = "QUEUED", "RUNNING", "SUCCEEDED", "FAILED"
TERMINAL = frozenset({SUCCEEDED, FAILED})


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
    def __init__(self, url: str, job_ttl_s: int, feature_ttl_s: int) -> None:
        self.redis: Any = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=2)
        self.job_ttl_s = job_ttl_s
        self.feature_ttl_s = feature_ttl_s

    @staticmethod
    def key(job_id: str, part: str = "") -> str:
        return f"{PREFIX}:job:{job_id}" + (f":{part}" if part else "")

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def create(
        self, name: str, images: Sequence[bytes], labels: Sequence[str], options: dict[str, Any]
    ) -> str:
        """Store a QUEUED job with its images; returns its id."""
        job_id = uuid.uuid4().hex
        now = time.time()
        try:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.rpush(self.key(job_id, "images"), *images)
                pipe.set(self.key(job_id, "labels"), json.dumps(list(labels)))
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
                for key in (self.key(job_id), self.key(job_id, "images"), self.key(job_id, "labels")):
                    pipe.expire(key, self.job_ttl_s)
                pipe.execute()
        except redis.RedisError as exc:
            raise UpstreamUnavailable(f"Redis did not store the training job: {exc}") from exc
        return job_id

    def drop(self, job_id: str) -> None:
        """Remove a job entirely (its message could not be queued)."""
        self.redis.delete(self.key(job_id), self.key(job_id, "images"), self.key(job_id, "labels"))

    def get(self, job_id: str) -> TrainingJob:
        try:
            raw = self.redis.hgetall(self.key(job_id)) if job_id else {}
        except redis.RedisError as exc:
            raise UpstreamUnavailable(f"Redis did not answer: {exc}") from exc
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

    def inputs(self, job_id: str) -> tuple[list[bytes], list[str]]:
        """The job's images and their labels (empty once the job has ended)."""
        images = self.redis.lrange(self.key(job_id, "images"), 0, -1)
        labels = json.loads(self.redis.get(self.key(job_id, "labels")) or b"[]")
        return list(images), list(labels)

    def update(self, job_id: str, **fields: Any) -> None:
        """Progress of a running job (stage, epoch, loss, validation_accuracy)."""
        self.redis.hset(self.key(job_id), mapping={**fields, "updated": time.time()})

    def start(self, job_id: str) -> bool:
        """QUEUED (or RUNNING after a lost worker) -> RUNNING; False when the job already ended."""
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self.key(job_id))
                    state = pipe.hget(self.key(job_id), "state")
                    if state is None or state.decode() in TERMINAL:
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.hset(
                        self.key(job_id),
                        mapping={"state": RUNNING, "stage": "starting", "updated": time.time()},
                    )
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue

    def finish(
        self, job_id: str, state: str, *, result: dict[str, Any] | None = None, error: str = ""
    ) -> None:
        """End the job (SUCCEEDED with its result or FAILED with the reason) and drop its inputs."""
        fields: dict[str, Any] = {"state": state, "stage": state.lower(), "updated": time.time()}
        if result is not None:
            fields["result"] = json.dumps(result)
        if error:
            fields["error"] = error
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key(job_id), mapping=fields)
            pipe.expire(self.key(job_id), self.job_ttl_s)
            pipe.delete(self.key(job_id, "images"), self.key(job_id, "labels"))
            pipe.execute()

    def queued(self, queue: str) -> int:
        """Messages waiting in the Celery queue (the Redis list of that name)."""
        try:
            return int(self.redis.llen(queue))
        except redis.RedisError as exc:
            raise UpstreamUnavailable(f"Redis did not answer: {exc}") from exc

    # ---------------------------------------------------------------------------------- features cache
    @staticmethod
    def feature_key(backbone: str, digest: str) -> str:
        return f"{PREFIX}:features:{backbone}:{digest}"

    def cached_features(self, backbone: str, digests: Sequence[str]) -> list[np.ndarray | None]:
        if not digests:
            return []
        values = self.redis.mget([self.feature_key(backbone, d) for d in digests])
        return [None if v is None else np.frombuffer(v, np.float32).copy() for v in values]

    def cache_features(self, backbone: str, digests: Sequence[str], features: np.ndarray) -> None:
        with self.redis.pipeline(transaction=False) as pipe:
            for digest, row in zip(digests, features, strict=True):
                pipe.set(
                    self.feature_key(backbone, digest),
                    np.asarray(row, np.float32).tobytes(),
                    ex=self.feature_ttl_s,
                )
            pipe.execute()


__all__ = ["FAILED", "QUEUED", "RUNNING", "SUCCEEDED", "TERMINAL", "TrainingJob", "TrainingStore"]
