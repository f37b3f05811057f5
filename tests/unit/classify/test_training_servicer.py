"""The classify service's training RPCs in process, on port 0: a bad training set is refused with
INVALID_ARGUMENT before anything is stored (no Redis, broker or Triton is reached: their addresses lead
nowhere), trained classifiers are listed from their repository, a version that is not kept is NOT_FOUND."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
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
from fovea.common.errors import DeadlineExceeded, FailedPrecondition, ResourceExhausted
from fovea.common.paths import project_root
from fovea.common.server import Registration, create_server
from fovea.common.v1 import common_pb2

REPOSITORY = project_root() / "model_repository"
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
    repository.set_active("bins", 2)
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


async def test_a_model_fovea_did_not_train_is_refused_before_a_job_is_queued(
    served: tuple[classify_pb2_grpc.ClassifyServiceStub, Any], photos: list[bytes], tmp_path: Path
) -> None:
    stub, _ = served
    imported = tmp_path / "classifier_bins"  # `fovea models import-onnx` made it: no fovea-classifier.json
    (imported / "1").mkdir(parents=True)
    (imported / "config.pbtxt").write_text("theirs")
    good = [("a", p) for p in photos[:10]] + [("b", p) for p in photos[10:20]]
    with pytest.raises(grpc.aio.AioRpcError) as info:  # Redis leads nowhere: it was not asked
        await stub.TrainClassifier(request("bins", good))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "Fovea did not train" in (info.value.details() or "")
    assert (imported / "config.pbtxt").read_text() == "theirs"


async def test_a_job_id_that_is_not_one_is_not_found_before_redis_is_asked(
    served: tuple[classify_pb2_grpc.ClassifyServiceStub, Any],
) -> None:
    stub, _ = served
    for job_id in ("0123456789abcdef0123456789abcdef:images", "x", ""):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetTrainingJob(classify_pb2.GetTrainingJobRequest(job_id=job_id))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND, job_id
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stub.WatchTrainingJob(classify_pb2.GetTrainingJobRequest(job_id=job_id)):
                pass
        assert info.value.code() == grpc.StatusCode.NOT_FOUND, job_id
    with pytest.raises(grpc.aio.AioRpcError) as info:  # a well-formed id: Redis is asked, and is down
        await stub.GetTrainingJob(classify_pb2.GetTrainingJobRequest(job_id="0" * 32))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def direct(redis_url: str, tmp_path: Path, triton: Any = None, **settings: Any) -> ClassifyServicer:
    """A servicer called directly (its RPC methods as coroutines) on a real Redis."""
    config = ClassifySettings(
        model_repository=REPOSITORY, redis_url=redis_url, trained_repository=tmp_path, **settings
    )
    training = Training(TrainingStore(redis_url, 60, 60), create_app(config), TrainedRepository(tmp_path))
    return ClassifyServicer(config, {}, cast(Any, triton), training)


async def test_watch_streams_are_capped_and_end(redis_url: str, tmp_path: Path) -> None:
    servicer = direct(redis_url, tmp_path, max_watch_streams=2, watch_max_s=0.5, watch_poll_s=0.05)
    assert servicer.training is not None
    store = servicer.training.store
    job_id = await asyncio.to_thread(store.create, "bins", [b"x"], ["a"], {"epochs": 1})
    ask = classify_pb2.GetTrainingJobRequest(job_id=job_id)
    first = servicer.WatchTrainingJob(ask, cast(Any, None))
    second = servicer.WatchTrainingJob(ask, cast(Any, None))
    assert (await anext(first)).state == classify_pb2.TRAINING_QUEUED
    assert (await anext(second)).state == classify_pb2.TRAINING_QUEUED
    with pytest.raises(ResourceExhausted, match="2 training jobs are watched"):
        await anext(servicer.WatchTrainingJob(ask, cast(Any, None)))
    # the job's record expires while watched: the stream ends
    await asyncio.to_thread(store.redis.delete, store.key(job_id))
    assert [m async for m in first] == []
    # an unchanging job is watched watch_max_s at most
    job_id = await asyncio.to_thread(store.create, "bins", [b"x"], ["a"], {"epochs": 1})
    third = servicer.WatchTrainingJob(classify_pb2.GetTrainingJobRequest(job_id=job_id), cast(Any, None))
    assert (await anext(third)).job_id == job_id
    with pytest.raises(DeadlineExceeded, match="watch again"):
        await anext(third)
    await second.aclose()
    assert servicer._watches == 0  # every stream gave its place back


class MovingTriton:
    """Readiness answers yes; while it is asked, another rollback makes ``moved_to`` the active version."""

    def __init__(self, repository: TrainedRepository, moved_to: int) -> None:
        self.repository, self.moved_to, self.asked = repository, moved_to, []

    async def is_model_ready(self, model: str, version: str = "") -> bool:
        self.asked.append(version)
        await asyncio.to_thread(self.repository.set_active, "bins", self.moved_to)
        return True


async def test_rollback_activates_the_version_it_checked(redis_url: str, tmp_path: Path) -> None:
    repository = TrainedRepository(tmp_path)
    for _ in range(3):
        _, version, _ = repository.add_version("bins", b"x", ["a", "b"])
        repository.set_active("bins", version)
    triton = MovingTriton(repository, moved_to=2)
    servicer = direct(redis_url, tmp_path, triton)
    ask = classify_pb2.RollbackClassifierRequest(name="bins")  # 0: the one before the active 3 = 2
    info = await servicer.RollbackClassifier(ask, cast(Any, None))
    # 2 was checked; recomputing "the one before the active" after the move would have picked 1, unchecked
    assert triton.asked == ["2"] and info.active_version == 2


async def test_rollback_without_a_previous_version_is_refused(redis_url: str, tmp_path: Path) -> None:
    repository = TrainedRepository(tmp_path)
    repository.add_version("bins", b"x", ["a", "b"])
    repository.set_active("bins", 1)
    triton = MovingTriton(repository, moved_to=1)
    servicer = direct(redis_url, tmp_path, triton)
    with pytest.raises(FailedPrecondition, match="no version before 1"):
        await servicer.RollbackClassifier(
            classify_pb2.RollbackClassifierRequest(name="bins"), cast(Any, None)
        )
    assert triton.asked == []


class RefusingExecutor(ThreadPoolExecutor):
    def submit(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the default executor was used")


async def test_training_sets_are_checked_off_the_default_executor(
    served: tuple[classify_pb2_grpc.ClassifyServiceStub, Any], photos: list[bytes]
) -> None:
    """Up to max_training_images decodes run on the servicer's own small pool: Classify's requests, on the
    default executor, do not wait behind them."""
    stub, _ = served
    loop = asyncio.get_running_loop()
    loop.set_default_executor(RefusingExecutor(max_workers=1))
    try:
        bad = [("a", p) for p in photos[:10]] + [("b", p) for p in photos[10:19]] + [("b", b"GIF89a x")]
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.TrainClassifier(request("checked", bad))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    finally:
        loop.set_default_executor(ThreadPoolExecutor(max_workers=4))
