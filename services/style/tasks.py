"""The Celery application of the style capability (Redis broker). Tasks have versioned names."""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_init

from fovea.common.metrics import serve_metrics
from fovea.style.config import StyleSettings


def create_app(settings: StyleSettings) -> Celery:
    app = Celery("fovea.style", broker=settings.redis_url, backend=None)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": 3600},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )

    @app.task(name="fovea.style.v1.ping")
    def ping() -> str:
        return "pong"

    return app


settings = StyleSettings()
app = create_app(settings)


@worker_init.connect
def _metrics(**_: object) -> None:
    serve_metrics(settings.host, settings.worker_metrics_port)
