"""Servicers for capabilities not built yet: every RPC answers UNIMPLEMENTED with a clear message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from fovea.common.errors import Unimplemented


def unbuilt_servicer(base: type, service: ServiceDescriptor, capability: str) -> Any:
    """An instance of ``base`` whose every method raises ``Unimplemented`` naming ``capability``."""

    def make(method: str, streaming: bool) -> Any:
        message = f"{service.full_name}/{method}: the {capability} capability is not built yet"

        async def unary(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            raise Unimplemented(message)

        async def stream(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            raise Unimplemented(message)
            yield  # pragma: no cover - makes this an async generator

        return stream if streaming else unary

    methods = {m.name: make(m.name, m.server_streaming) for m in service.methods}
    return type(f"Unbuilt{base.__name__}", (base,), methods)()
