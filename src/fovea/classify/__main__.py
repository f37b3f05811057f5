"""``fovea serve classify`` (wiring only)."""

from __future__ import annotations

import asyncio

from fovea.classify.config import ClassifySettings
from fovea.classify.pipeline import load_classifiers
from fovea.classify.reaper import reap_forever
from fovea.classify.servicer import ClassifyServicer, Training
from fovea.classify.tasks import create_app, open_replicas, open_repository, open_store
from fovea.classify.v1 import classify_pb2, classify_pb2_grpc
from fovea.common.logs import setup_logging
from fovea.common.metrics import serve_metrics
from fovea.common.server import Registration, create_server, internal_token, serve_forever, watch_readiness
from fovea.common.triton import TritonClient


async def run(settings: ClassifySettings) -> None:
    classifiers = load_classifiers(settings.model_repository, settings.models, settings.default_model)
    token = internal_token(settings.internal_token_file)
    triton = TritonClient(
        settings.triton_url,
        timeout_s=settings.triton_timeout_s,
        token=token,
        http_url=settings.triton_http_url,
    )
    training = None
    if settings.trained_repository is not None:  # training jobs, versions, rollback: Redis + the worker
        training = Training(open_store(settings), create_app(settings), open_repository(settings))
    service = classify_pb2.DESCRIPTOR.services_by_name["ClassifyService"]
    handle = await create_server(
        "classify",
        f"{settings.host}:{settings.port}",
        [
            Registration(
                classify_pb2_grpc.add_ClassifyServiceServicer_to_server,
                ClassifyServicer(settings, classifiers, triton, training, open_replicas(settings, token)),
                service.full_name,
            )
        ],
        max_message_bytes=settings.max_message_bytes,
        internal_token_file=settings.internal_token_file,
    )
    serve_metrics(settings.host, settings.metrics_port)

    async def ready() -> bool:
        return await triton.is_model_ready(settings.default_model)

    async def watch() -> None:
        loops = [watch_readiness(handle, ready)]
        if training is not None:  # training jobs of lost workers are queued again
            loops.append(reap_forever(training.store, training.celery, settings))
        await asyncio.gather(*loops)

    await serve_forever(handle, watch(), on_stop=triton.close)


def main() -> None:
    settings = ClassifySettings()
    setup_logging(settings.log_level)
    asyncio.run(run(settings))
