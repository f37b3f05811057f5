"""``Explain`` of the classify service in process, on port 0, through its real interceptor: the map of the
darknet dog photo lands on the dog, the PNG comes back, and a caller's mistakes get their status.

Triton, the system's edge, is replaced by the model module it serves (``fovea.serving.classifier``), run in
this process on the built ``model_repository/classifier_imagenet``.
"""

from __future__ import annotations

import io
from typing import Any

import grpc
import numpy as np
import pytest
from PIL import Image

from fovea.classify.core.explain import cell_centre, peak_cell
from fovea.classify.v1 import classify_pb2, classify_pb2_grpc
from fovea.common.paths import project_root
from fovea.common.v1 import common_pb2
from fovea.convert.samples import LABELLED_BOXES, sample

REPOSITORY = project_root() / "model_repository"
MODEL = "classifier_imagenet"


def dog_request(**fields: Any) -> classify_pb2.ExplainRequest:
    image = common_pb2.Image(data=sample("dog").read_bytes())
    return classify_pb2.ExplainRequest(image=image, **fields)


async def test_dog_map_lands_on_the_dog(stub: classify_pb2_grpc.ClassifyServiceStub) -> None:
    reply = await stub.Explain(dog_request(render=True))
    assert reply.model == MODEL and (reply.image_size.width, reply.image_size.height) == (768, 576)
    assert reply.explained.label == reply.top.label == "malamute" and reply.top.probability > 0.7
    assert (reply.map_height, reply.map_width) == (7, 7) and len(reply.heatmap) == 49
    heatmap = np.asarray(reply.heatmap, np.float32).reshape(7, 7)
    assert heatmap.max() == 1.0 and heatmap.min() >= 0 and reply.peak > 0
    crop = (reply.crop.x1, reply.crop.y1, reply.crop.x2, reply.crop.y2)
    assert crop == pytest.approx((131.0, 36.0, 635.0, 540.0), abs=1.0)  # shorter side 576 -> 256: scale 2.25
    x, y = cell_centre(peak_cell(heatmap), (7, 7), crop)
    [dog] = [box for name, box in LABELLED_BOXES["dog"] if name == "dog"]
    assert dog[0] <= x <= dog[2] and dog[1] <= y <= dog[3], (x, y)
    png = Image.open(io.BytesIO(reply.png))
    assert png.format == "PNG" and png.size == (768, 576)
    assert reply.inference_seconds > 0


async def test_another_class_and_no_png(stub: classify_pb2_grpc.ClassifyServiceStub) -> None:
    reply = await stub.Explain(dog_request(label="Mountain Bike"))
    assert reply.explained.label == "mountain bike" and reply.explained.class_id == 671
    assert reply.top.label == "malamute" and reply.png == b""


@pytest.mark.parametrize(
    ("request_", "code", "words"),
    [
        (dog_request(label="malamut"), grpc.StatusCode.INVALID_ARGUMENT, "did you mean 'malamute'"),
        (dog_request(model="nope"), grpc.StatusCode.NOT_FOUND, "classifier_imagenet"),
        (
            classify_pb2.ExplainRequest(image=common_pb2.Image(data=b"not an image")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "could not be decoded",
        ),
    ],
)
async def test_mistakes(
    stub: classify_pb2_grpc.ClassifyServiceStub,
    request_: classify_pb2.ExplainRequest,
    code: grpc.StatusCode,
    words: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Explain(request_)
    assert caught.value.code() == code and words in (caught.value.details() or ""), caught.value.details()
