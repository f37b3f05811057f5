"""The classify service's training RPCs in process, on port 0: a bad training set is refused with
INVALID_ARGUMENT before anything is stored (no Redis, broker or Triton is reached: their addresses lead
nowhere), trained classifiers are listed from their repository, a version that is not kept is NOT_FOUND."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import grpc
import numpy as np
import pytest
import skimage.data
from in_process_triton import InProcessTriton
from PIL import Image

from fovea.classify.config import ClassifySettings
from fovea.classify.pipeline import load_classifiers
from fovea.classify.servicer import ClassifyServicer, Training
from fovea.classify.store import TrainingStore
from fovea.classify.tasks import create_app
from fovea.classify.trained import TrainedRepository
from fovea.classify.v1 import classify_pb2, classify_pb2_grpc
from fovea.common.server import Registration, create_server
from fovea.common.v1 import common_pb2
from fovea.stack.config import REPO_ROOT

REPOSITORY = REPO_ROOT / "model_repository"
NOWHERE = "redis://127.0.0.1:9/0"  # discard port: nothing answers


def png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((pixels * 255).round().astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    return [png(a) for a in skimage.data.lfw_subset()[:30]]


@pytest.fixture()
async def served(tmp_path: Path) -> AsyncIterator[tuple[classify_pb2_grpc.ClassifyServiceStub, Any]]:
    if not (REPOSITORY / "classifier_imagenet" / "1" / "model.onnx").exists():
        pytest.skip("classifier_imagenet is not built (`fovea models build --only classifier_imagenet`)")
    triton = InProcessTriton(REPOSITORY, {"classifier_imagenet": "fovea.serving.classifier"})
    settings = ClassifySettings(model_repository=REPOSITORY, redis_url=NOWHERE, trained_repository=tmp_path)
    classifiers = load_classifiers(settings.model_repository, settings.models, settings.default_model)
    training = Training(TrainingStore(NOWHERE, 60, 60), create_app(settings), TrainedRepository(tmp_path))
    servicer = ClassifyServicer(settings, classifiers, cast(Any, triton), training)
    name = classify_pb2.DESCRIPTOR.services_by_name["ClassifyService"].full_name
    reg = Registration(classify_pb2_grpc.add_ClassifyServiceServicer_to_server, servicer, name)
    handle = await create_server("classify", "127.0.0.1:0", [reg], max_message_bytes=8 * 1024 * 1024)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{handle.port}") as channel:
        yield classify_pb2_grpc.ClassifyServiceStub(channel), triton
    await handle.server.stop(0)


def request(name: str, pairs: list[tuple[str, bytes]], **options: Any) -> classify_pb2.TrainClassifierRequest:
    return classify_pb2.TrainClassifierRequest(
        name=name,
        images=[
            classify_pb2.LabelledImage(label=label, image=common_pb2.Image(data=data))
            for label, data in pairs
        ],
        options=classify_pb2.TrainingOptions(**options),
    )


async def test_bad_training_sets_are_refused_before_anything_is_stored(
    served: tuple[classify_pb2_grpc.ClassifyServiceStub, Any], photos: list[bytes], tmp_path: Path
) -> None:
    stub, triton = served
    good = [("a", p) for p in photos[:10]] + [("b", p) for p in photos[10:20]]
    cases = [
        (request("one", [("a", p) for p in photos[:20]]), "at least 2 classes"),
        (request("three", good[:3] + good[10:13]), "at least 10 images"),
        (request("corrupt", good[:19] + [("b", b"GIF89a nonsense")]), "image 19 (class 'b')"),
        (request("dupe", good[:10] + [("A", p) for p in photos[10:20]]), "duplicate class name"),
        (request("UPPER", good), "classifier name 'UPPER' is invalid"),
        (request("imagenet", good), "built-in"),
        (request("epochs", good, epochs=100_000), "epochs must be within"),
        (request("rate", good, learning_rate=float("nan")), "learning_rate"),
        (request("split", good, validation_fraction=0.9), "validation_fraction"),
        (request("copies", good, augment_copies=9), "augment_copies"),
    ]
    for message, words in cases:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.TrainClassifier(message)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (message.name, info.value.details())
        assert words in (info.value.details() or ""), (message.name, info.value.details())
    assert await asyncio.to_thread(os.listdir, tmp_path) == [] and triton.calls == 0


async def test_trained_classifiers_are_listed_and_versions_checked(
    served: tuple[classify_pb2_grpc.ClassifyServiceStub, Any], photos: list[bytes], tmp_path: Path
) -> None:
    stub, triton = served
    repository = TrainedRepository(tmp_path)
    repository.add_version("bins", b"not served here", ["glass", "paper"], validation_accuracy=0.75)
    repository.add_version("bins", b"not served here", ["glass", "metal", "paper"])
    reply = await stub.ListClassifiers(classify_pb2.ListClassifiersRequest())
    by_name = {c.name: c for c in reply.classifiers}
    assert set(by_name) == {"classifier_imagenet", "bins"}
    bins = by_name["bins"]
    assert bins.trained and bins.active_version == 2 and list(bins.labels) == ["glass", "metal", "paper"]
    assert [v.version for v in bins.versions] == [1, 2] and bins.versions[0].validation_accuracy == 0.75
    assert not by_name["classifier_imagenet"].trained

    image = common_pb2.Image(data=photos[0])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Classify(classify_pb2.ClassifyRequest(image=image, model="bins", version=7))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and "versions: 1, 2" in (info.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Classify(classify_pb2.ClassifyRequest(image=image, version=1))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "built in" in (
        info.value.details() or ""
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.RollbackClassifier(classify_pb2.RollbackClassifierRequest(name="bins", version=5))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.DeleteClassifier(classify_pb2.DeleteClassifierRequest(name="nothing-here"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert triton.calls == 0
