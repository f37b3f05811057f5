"""The classify service in process, on port 0, through its real interceptor: answers on a real photo, and
what a caller's mistake (corrupt image, unknown model, top_k out of range) gets back.

Triton, the system's edge, is replaced by the model module it serves (``fovea.serving.classifier``), run in
this process on the built ``model_repository/classifier_imagenet``.
"""

from __future__ import annotations

import io
from pathlib import Path

import grpc
import numpy as np
import pytest
import skimage.data
from in_process_triton import InProcessTriton
from PIL import Image

from fovea.classify.config import ClassifySettings
from fovea.classify.pipeline import load_classifiers
from fovea.classify.v1 import classify_pb2, classify_pb2_grpc
from fovea.common.paths import project_root
from fovea.common.v1 import common_pb2

REPOSITORY = project_root() / "model_repository"
MODEL = "classifier_imagenet"


def jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


async def test_coffee_is_espresso(stub: classify_pb2_grpc.ClassifyServiceStub) -> None:
    reply = await stub.Classify(
        classify_pb2.ClassifyRequest(image=common_pb2.Image(data=jpeg(skimage.data.coffee())), top_k=3)
    )
    assert reply.model == MODEL and (reply.image_size.width, reply.image_size.height) == (600, 400)
    labels = [c.label for c in reply.classifications]
    assert len(labels) == 3 and labels[0] == "espresso"  # 0.99 in process
    assert reply.classifications[0].class_id == 967 and reply.classifications[0].probability > 0.9
    assert reply.inference_seconds > 0


async def test_list_classifiers(stub: classify_pb2_grpc.ClassifyServiceStub) -> None:
    reply = await stub.ListClassifiers(classify_pb2.ListClassifiersRequest())
    [info] = reply.classifiers
    assert (info.name, info.input_size, info.resize_side, info.is_default) == (MODEL, 224, 256, True)
    assert len(info.labels) == 1000 and info.labels[285] == "Egyptian cat"


@pytest.mark.parametrize(
    ("request_", "code", "words"),
    [
        (
            classify_pb2.ClassifyRequest(image=common_pb2.Image(data=b"\xff\xd8garbage")),
            "INVALID_ARGUMENT",
            "decoded",
        ),
        (classify_pb2.ClassifyRequest(), "INVALID_ARGUMENT", "empty"),
        (classify_pb2.ClassifyRequest(model="x" * 300), "NOT_FOUND", "available: classifier_imagenet"),
        (classify_pb2.ClassifyRequest(top_k=1001), "INVALID_ARGUMENT", "[1, 1000]"),
        (classify_pb2.ClassifyRequest(top_k=-3), "INVALID_ARGUMENT", "top_k"),
    ],
)
async def test_caller_mistakes(
    stub: classify_pb2_grpc.ClassifyServiceStub,
    triton: InProcessTriton,
    request_: classify_pb2.ClassifyRequest,
    code: str,
    words: str,
) -> None:
    calls = triton.calls
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Classify(request_)
    assert info.value.code().name == code and words in (info.value.details() or ""), info.value
    assert len(info.value.details() or "") < 300  # a long name is clipped, not echoed
    assert triton.calls == calls  # refused before the model runs


def test_load_classifiers_fails_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="default classifier 'b'"):
        load_classifiers(REPOSITORY, ["classifier_imagenet"], "b")
    with pytest.raises(ValueError, match="no model directory"):
        load_classifiers(tmp_path, ["missing"], "missing")
    (tmp_path / "nolabels").mkdir()
    (tmp_path / "nolabels" / "config.pbtxt").write_text('name: "nolabels"\n')
    with pytest.raises(ValueError, match="labels.txt"):
        load_classifiers(tmp_path, ["nolabels"], "nolabels")


def test_settings_refuse_unknown_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOVEA_CLASSIFY_TOPK", "3")
    with pytest.raises(ValueError, match="did you mean FOVEA_CLASSIFY_TOP_K"):
        ClassifySettings()
    monkeypatch.delenv("FOVEA_CLASSIFY_TOPK")
    monkeypatch.setenv("FOVEA_CLASSIFY_TOP_K", "0")
    with pytest.raises(ValueError, match="top_k"):
        ClassifySettings()
