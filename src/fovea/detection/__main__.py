"""``fovea serve detection`` (wiring only)."""

from __future__ import annotations

import asyncio

import torch

from fovea.common.logs import setup_logging
from fovea.common.metrics import serve_metrics
from fovea.common.server import Registration, create_server, internal_token, serve_forever, watch_readiness
from fovea.common.triton import TritonClient
from fovea.detection.config import DetectionSettings
from fovea.detection.registry import DetectorRegistry
from fovea.detection.servicer import DetectionServicer
from fovea.detection.v1 import detection_pb2, detection_pb2_grpc


async def run(settings: DetectionSettings) -> None:
    repositories = [settings.model_repository]
    if settings.user_model_repository is not None:
        repositories.append(settings.user_model_repository)
    detectors = DetectorRegistry(repositories, settings.default_model)  # fails fast
    triton = TritonClient(
        settings.triton_url,
        timeout_s=settings.triton_timeout_s,
        token=internal_token(settings.internal_token_file),
        http_url=settings.triton_http_url,
    )
    service = detection_pb2.DESCRIPTOR.services_by_name["DetectionService"]
    handle = await create_server(
        "detection",
        f"{settings.host}:{settings.port}",
        [
            Registration(
                detection_pb2_grpc.add_DetectionServiceServicer_to_server,
                DetectionServicer(settings, detectors, triton),
                service.full_name,
            )
        ],
        max_message_bytes=settings.max_message_bytes,
        internal_token_file=settings.internal_token_file,
    )
    serve_metrics(settings.host, settings.metrics_port)

    async def ready() -> bool:
        return await triton.is_model_ready(settings.default_model)

    await serve_forever(handle, watch_readiness(handle, ready), on_stop=triton.close)


def main() -> None:
    settings = DetectionSettings()
    setup_logging(settings.log_level)
    # Head decoding and NMS are small per request; one torch thread per worker thread keeps concurrent
    # requests from oversubscribing the cores the models need (measured: finish 2 ms CPU on one thread).
    torch.set_num_threads(1)
    asyncio.run(run(settings))
