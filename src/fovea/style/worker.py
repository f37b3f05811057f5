"""``fovea worker``: a Celery worker process for style jobs (wiring only)."""

from __future__ import annotations

from fovea.common.jobs import run_worker
from fovea.common.logs import setup_logging
from fovea.common.metrics import serve_metrics
from fovea.style.config import StyleSettings
from fovea.style.tasks import QUEUE, create_app, create_runner, register_transfer


def main() -> None:
    settings = StyleSettings()
    setup_logging(settings.log_level)
    app = create_app(settings)
    register_transfer(app, settings, create_runner(settings))
    serve_metrics(settings.host, settings.worker_metrics_port)
    run_worker(app, QUEUE, "fovea-style@%h", settings.worker_concurrency, settings.log_level)
