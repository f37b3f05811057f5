"""What the Celery job queues share (style transfers, classifier training): the app on the Redis broker, the
worker process that serves one queue, and the heartbeat thread that tells a job's service its worker is
alive (a reaper there requeues a job whose heartbeats stopped). Each capability keeps its own queue, name,
settings and store."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable

from celery import Celery

from fovea.common.errors import UpstreamUnavailable
from fovea.common.redis_client import celery_broker

log = logging.getLogger(__name__)


def create_celery(name: str, broker_url: str, queue: str, visibility_timeout_s: float) -> Celery:
    """The Celery app ``name`` on the Redis broker (``redis+sentinel://`` URLs through its Sentinels), without tasks (enough to send jobs by name): late acks
    (a rerun is harmless), one message prefetched at a time, results kept by the service, not Celery."""
    broker, transport = celery_broker(broker_url)
    app = Celery(name, broker=broker, backend=None)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_default_queue=queue,
        worker_prefetch_multiplier=1,
        broker_transport_options={**transport, "visibility_timeout": visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app


def run_worker(app: Celery, queue: str, hostname: str, concurrency: int, log_level: str) -> None:
    """Serve ``queue`` in this process with a thread pool of ``concurrency`` (blocks until the worker stops)."""
    app.worker_main(
        [
            "worker",
            "--loglevel",
            log_level,
            "--pool",
            "threads",
            "--concurrency",
            str(concurrency),
            "--queues",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            hostname,
        ]
    )


class Heartbeats:
    """One daemon thread per worker process that marks every job the process runs as alive, every
    ``interval_s``: ``beat(job_id, owner)`` is the store's, True while the job is still the owner's. A job
    found taken from its run (requeued while its worker was thought lost, or ended) is noted: the run asks
    :meth:`lost` and stops."""

    def __init__(self, beat: Callable[[str, str], bool], interval_s: float, name: str = "heartbeats") -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self.beat = beat
        self.interval_s = interval_s
        self.name = name
        self._jobs: dict[str, str] = {}
        self._lost: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, job_id: str, owner: str) -> None:
        with self._lock:
            self._jobs[job_id] = owner
            self._lost.discard(job_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()

    def remove(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)
            self._lost.discard(job_id)

    def lost(self, job_id: str) -> bool:
        """Whether a heartbeat found the job taken from this run."""
        with self._lock:
            return job_id in self._lost

    def close(self) -> None:
        self._stop.set()

    def beat_once(self) -> None:
        with self._lock:
            jobs = list(self._jobs.items())
        for job_id, owner in jobs:
            try:
                alive = self.beat(job_id, owner)
            except UpstreamUnavailable:
                continue  # logged by the store; the next beat tries again
            if not alive:
                log.warning("job %s is no longer ours (%s): stopping it", job_id, owner)
                with self._lock:
                    if job_id in self._jobs:
                        self._lost.add(job_id)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.beat_once()
            except Exception:  # noqa: BLE001 - the thread must outlive any one failure
                log.exception("heartbeat failed")


def new_owner() -> str:
    """A token naming one run of a job: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
