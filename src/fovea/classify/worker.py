"""``fovea worker classify``: a Celery worker process for training jobs (wiring only)."""

from __future__ import annotations

from fovea.classify.config import ClassifySettings
from fovea.classify.tasks import QUEUE, create_app, create_trainer, register_train
from fovea.common.jobs import run_worker
from fovea.common.logs import setup_logging
from fovea.common.metrics import serve_metrics


def main() -> None:
    settings = ClassifySettings()
    setup_logging(settings.log_level)
    app = create_app(settings)
    register_train(app, create_trainer(settings))
    serve_metrics(settings.host, settings.worker_metrics_port)
    # one job at a time: its head training holds a core
    run_worker(app, QUEUE, "fovea-classify@%h", concurrency=1, log_level=settings.log_level)
