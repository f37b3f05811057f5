"""The classify tests that need Redis (the job store, the trainer) use ``redis_url`` from tests/unit/conftest.py:
a database of one ``redis-server`` started for the session, empty for each test module. The servicer tests
share ``stub``: the classify servicer on a real gRPC server over the built ``classifier_imagenet`` run
in process (``triton``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import grpc
import pytest
from in_process_triton import InProcessTriton

from fovea.classify.config import ClassifySettings
from fovea.classify.pipeline import load_classifiers
from fovea.classify.servicer import ClassifyServicer
from fovea.classify.v1 import classify_pb2, classify_pb2_grpc
from fovea.common.paths import project_root
from fovea.common.server import Registration, create_server

REPOSITORY = project_root() / "model_repository"
MODEL = "classifier_imagenet"


@pytest.fixture(scope="module")
def triton() -> InProcessTriton:
    if not (REPOSITORY / MODEL / "1" / "model.onnx").exists():
        pytest.skip("classifier_imagenet is not built (`fovea models build --only classifier_imagenet`)")
    return InProcessTriton(REPOSITORY, {MODEL: "fovea.serving.classifier"})


@pytest.fixture()
async def stub(triton: InProcessTriton) -> AsyncIterator[classify_pb2_grpc.ClassifyServiceStub]:
    settings = ClassifySettings(model_repository=REPOSITORY)
    classifiers = load_classifiers(settings.model_repository, settings.models, settings.default_model)
    servicer = ClassifyServicer(settings, classifiers, cast(Any, triton))
    name = classify_pb2.DESCRIPTOR.services_by_name["ClassifyService"].full_name
    reg = Registration(classify_pb2_grpc.add_ClassifyServiceServicer_to_server, servicer, name)
    handle = await create_server("classify", "127.0.0.1:0", [reg], max_message_bytes=4 * 1024 * 1024)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{handle.port}") as channel:
        yield classify_pb2_grpc.ClassifyServiceStub(channel)
    await handle.server.stop(0)
