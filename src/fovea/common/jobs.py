"""What the Celery job queues share (style transfers, classifier training): the app on the Redis broker and
the worker process that serves one queue. Each capability keeps its own queue, name and settings."""

from __future__ import annotations

from celery import Celery

from fovea.common.redis_client import celery_broker


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
