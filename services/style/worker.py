"""``fovea worker``: a Celery worker process for style jobs."""

from __future__ import annotations

from fovea.common.logs import setup_logging


def main() -> None:
    from fovea.style.tasks import QUEUE, app, settings

    setup_logging(settings.log_level)
    app.worker_main(
        [
            "worker",
            "--loglevel",
            settings.log_level,
            "--pool",
            "threads",
            "--concurrency",
            str(settings.worker_concurrency),
            "--queues",
            QUEUE,
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            "fovea-style@%h",
        ]
    )
