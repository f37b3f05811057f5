"""``ModelsService`` answered by the gateway itself from Triton's repository index.

Registered as a bytes-in handler (``generic_handler``) so its requests are parsed and checked at the edge
like the forwarded ones: an undecodable message is INVALID_ARGUMENT, not grpc's INTERNAL "Exception
deserializing request!".
"""

from __future__ import annotations

import grpc

from fovea.common.errors import InvalidArgument, public_message
from fovea.common.triton import TritonClient
from fovea.gateway.auth import Authenticator, AuthError
from fovea.gateway.validation import parse_request
from fovea.models.v1 import models_pb2, models_pb2_grpc

SERVICE = models_pb2.DESCRIPTOR.services_by_name["ModelsService"].full_name
LIST_MODELS = f"/{SERVICE}/ListModels"


class ModelsServicer(models_pb2_grpc.ModelsServiceServicer):
    def __init__(self, triton: TritonClient, auth: Authenticator) -> None:
        self.triton = triton
        self.auth = auth

    async def ListModels(
        self, request: models_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> models_pb2.ListModelsResponse:
        try:
            self.auth.authorize(LIST_MODELS, context.invocation_metadata())
        except AuthError as exc:
            await context.abort(exc.code, str(exc))
        states = await self.triton.repository_index()
        return models_pb2.ListModelsResponse(
            models=[
                models_pb2.ModelInfo(name=m.name, version=m.version, state=m.state, reason=m.reason)
                for m in states
            ]
        )

    def generic_handler(self) -> grpc.GenericRpcHandler:
        async def list_models(
            data: bytes, context: grpc.aio.ServicerContext
        ) -> models_pb2.ListModelsResponse:
            try:
                self.auth.authorize(LIST_MODELS, context.invocation_metadata())  # who asks, before what
                request = parse_request(data, models_pb2.ListModelsRequest)
            except AuthError as exc:
                await context.abort(exc.code, str(exc))
            except InvalidArgument as exc:
                await context.abort(exc.code, public_message(str(exc)))
            return await self.ListModels(request, context)  # type: ignore[arg-type]

        handler = grpc.unary_unary_rpc_method_handler(
            list_models, response_serializer=models_pb2.ListModelsResponse.SerializeToString
        )
        return grpc.method_handlers_generic_handler(SERVICE, {"ListModels": handler})
