"""``ModelsService`` answered by the gateway itself from Triton's repository index."""

from __future__ import annotations

import grpc

from fovea.common.triton import TritonClient
from fovea.gateway.auth import Authenticator, AuthError
from fovea.models.v1 import models_pb2, models_pb2_grpc


class ModelsServicer(models_pb2_grpc.ModelsServiceServicer):
    def __init__(self, triton: TritonClient, auth: Authenticator) -> None:
        self.triton = triton
        self.auth = auth

    async def ListModels(
        self, request: models_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> models_pb2.ListModelsResponse:
        try:
            self.auth.authorize("/fovea.models.v1.ModelsService/ListModels", context.invocation_metadata())
        except AuthError as exc:
            await context.abort(exc.code, str(exc))
        states = await self.triton.repository_index()
        return models_pb2.ListModelsResponse(
            models=[
                models_pb2.ModelInfo(name=m.name, version=m.version, state=m.state, reason=m.reason)
                for m in states
            ]
        )
