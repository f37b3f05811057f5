"""``fovea serve style`` (wiring only)."""

from __future__ import annotations

import asyncio

from fovea.common.logs import setup_logging
from fovea.common.metrics import serve_metrics
from fovea.common.server import Registration, create_server, internal_token, serve_forever, watch_readiness
from fovea.common.triton import TritonClient
from fovea.contracts.styles import STYLES
from fovea.style.config import StyleSettings
from fovea.style.reaper import reap_forever
from fovea.style.servicer import StyleServicer
from fovea.style.store import open_store
from fovea.style.tasks import create_app
from fovea.style.v1 import style_pb2, style_pb2_grpc

MODELS = ("style_fast", "style_gatys")


async def run(settings: StyleSettings) -> None:
    store = open_store(settings)
    celery = create_app(settings)
    servicer = StyleServicer(settings, store, celery, STYLES)
    triton = TritonClient(settings.triton_url, token=internal_token(settings.internal_token_file))
    service = style_pb2.DESCRIPTOR.services_by_name["StyleService"]
    handle = await create_server(
        "style",
        f"{settings.host}:{settings.port}",
        [Registration(style_pb2_grpc.add_StyleServiceServicer_to_server, servicer, service.full_name)],
        max_message_bytes=settings.max_message_bytes,
        internal_token_file=settings.internal_token_file,
    )
    serve_metrics(settings.host, settings.metrics_port)

    async def ready() -> bool:
        if not await asyncio.to_thread(store.ping):
            return False
        await asyncio.to_thread(servicer.queue_depth)
        return all([await triton.is_model_ready(m) for m in MODELS])

    async def background() -> None:
        await asyncio.gather(watch_readiness(handle, ready), reap_forever(store, celery, settings))

    await serve_forever(handle, background(), on_stop=triton.close)


def main() -> None:
    settings = StyleSettings()
    setup_logging(settings.log_level)
    asyncio.run(run(settings))
