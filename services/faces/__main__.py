"""``fovea serve faces`` (wiring only). The capability itself is not built yet: RPCs answer UNIMPLEMENTED."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from fovea.common.logs import setup_logging
from fovea.common.metrics import serve_metrics
from fovea.common.server import Registration, create_server, serve_forever, watch_readiness
from fovea.common.triton import TritonClient
from fovea.common.unbuilt import unbuilt_servicer
from fovea.faces.config import FacesSettings
from fovea.faces.v1 import faces_pb2, faces_pb2_grpc


async def run(settings: FacesSettings) -> None:
    service = faces_pb2.DESCRIPTOR.services_by_name["FacesService"]
    servicer = unbuilt_servicer(faces_pb2_grpc.FacesServiceServicer, service, "faces")
    triton = TritonClient(settings.triton_url)
    store = aioredis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    handle = await create_server(
        "faces",
        f"{settings.host}:{settings.port}",
        [Registration(faces_pb2_grpc.add_FacesServiceServicer_to_server, servicer, service.full_name)],
        max_message_bytes=settings.max_message_bytes,
    )
    serve_metrics(settings.host, settings.metrics_port)

    async def ready() -> bool:
        return bool(await store.ping()) and await triton.is_ready()

    async def close() -> None:
        await triton.close()
        await store.aclose()

    await serve_forever(handle, watch_readiness(handle, ready), on_stop=close)


def main() -> None:
    settings = FacesSettings()
    setup_logging(settings.log_level)
    asyncio.run(run(settings))
