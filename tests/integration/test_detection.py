"""Detection through the real gateway: labels and boxes on real photos, streaming, bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from fovea.client import FoveaClientError
from fovea.common.detectors.boxes import box_iou
from fovea.convert.samples import sample

from .conftest import Stack

pytestmark = pytest.mark.integration


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height)).save(buf, format="PNG")
    return buf.getvalue()


def best(result: object, label: str) -> list[float]:
    boxes = [d.box for d in result.detections if d.label == label]  # type: ignore[attr-defined]
    assert boxes, f"no {label} in {result}"
    return boxes[0]


def iou(a: list[float], b: list[float]) -> float:
    import torch

    return float(box_iou(torch.tensor([a]), torch.tensor([b]))[0, 0])


def test_dog_bicycle_and_people(stack: Stack) -> None:
    with stack.client() as client:
        dog = client.detect(sample("dog").read_bytes())
        # the horse scores 0.34-0.37 by build (float, INT8; cow 0.48-0.54 on the same animal), at the edge of
        # the default minimum of 0.35: asked for 0.3, so the test is about what is found, not the threshold
        person = client.detect(sample("person").read_bytes(), min_score=0.3)
    assert dog.image_size == [768, 576] and dog.model == "nanodet_int8"
    assert {"dog", "bicycle"} <= {d.label for d in dog.detections}
    # Boxes in original pixels, where a person drew them by eye on the photo (x1, y1, x2, y2).
    assert iou(best(dog, "dog"), [128, 220, 315, 540]) > 0.7
    assert iou(best(dog, "bicycle"), [120, 125, 570, 465]) > 0.7
    assert {"person", "dog", "horse"} <= {d.label for d in person.detections}
    assert iou(best(person, "person"), [190, 95, 275, 380]) > 0.7
    for result in (dog, person):
        scores = [d.score for d in result.detections]
        assert scores == sorted(scores, reverse=True)


def test_options_and_annotation(stack: Stack) -> None:
    photo = sample("dog").read_bytes()
    with stack.client() as client:
        only = client.detect(photo, classes=["dog"], annotate=True)
        strict = client.detect(photo, min_score=0.6)
        capped = client.detect(photo, max_detections=1, min_score=0.05)
        low = client.detect(photo, min_score=0.001)
        few = client.detect(photo, min_score=0.001, max_candidates=3)
    assert {d.label for d in only.detections} == {"dog"}
    assert only.annotated_png is not None
    assert Image.open(io.BytesIO(only.annotated_png)).size == (768, 576)
    assert strict.detections and all(d.score >= 0.6 for d in strict.detections)
    assert len(capped.detections) == 1
    assert len(low.detections) == 100  # the service's max_detections, from at most 1000 candidates
    assert 1 <= len(few.detections) <= 3


def test_stream_answers_in_order(stack: Stack) -> None:
    names = ["dog", "person", "giraffe", "dog"]
    with stack.client() as client:
        results = client.detect_many([sample(n).read_bytes() for n in names])
    assert [r.image_size for r in results] == [[768, 576], [640, 424], [500, 500], [768, 576]]
    assert "giraffe" in {d.label for d in results[2].detections}


def test_list_detectors(stack: Stack) -> None:
    from fovea.detection.v1 import detection_pb2

    with stack.client() as client:
        reply = client.call(client.detection.ListDetectors, detection_pb2.ListDetectorsRequest())
    detectors = {d.name: d for d in reply.detectors}
    nanodet = detectors["nanodet"]  # boxes decoded and capped in the graph, NMS in the service
    assert not nanodet.is_default and nanodet.family == "candidates" and len(nanodet.labels) == 80
    assert detectors["nanodet_int8"].is_default and detectors["nanodet_int8"].family == "candidates"
    centernet = detectors["centernet"]  # peaks decoded and capped in the graph, NMS in the service
    assert not centernet.is_default and centernet.family == "candidates" and len(centernet.labels) == 80


def test_centernet_by_name_finds_the_dog_and_the_person(stack: Stack) -> None:
    # CenterNet's scores are heatmap peaks, lower than NanoDet's: the dog peaks at 0.36, the horse at 0.31, so
    # below the service's default minimum (0.35) ask for 0.25.
    with stack.client() as client:
        dog = client.detect(sample("dog").read_bytes(), model="centernet", min_score=0.25)
        person = client.detect(sample("person").read_bytes(), model="centernet", min_score=0.25)
    assert dog.model == person.model == "centernet" and dog.image_size == [768, 576]
    # The same boxes drawn by eye as in test_dog_bicycle_and_people (IoU 0.92-0.95 measured in-process).
    assert iou(best(dog, "dog"), [128, 220, 315, 540]) > 0.7
    assert iou(best(dog, "bicycle"), [120, 125, 570, 465]) > 0.7
    assert iou(best(person, "person"), [190, 95, 275, 380]) > 0.7
    assert iou(best(person, "horse"), [406, 138, 604, 343]) > 0.7


@pytest.mark.parametrize(
    ("image", "options", "code", "message"),
    [
        (b"\xff\xd8\xff\xe0 this is not a jpeg", {}, "INVALID_ARGUMENT", "could not be decoded"),
        (b"", {}, "INVALID_ARGUMENT", "empty"),
        (png(1, 1), {}, "INVALID_ARGUMENT", "1x1"),
        (png(20000, 20000, "1"), {}, "INVALID_ARGUMENT", "decompression bomb"),
        (png(64, 64), {"model": "yolo9000"}, "NOT_FOUND", "unknown detector 'yolo9000'"),
        (png(64, 64), {"classes": ["unicorn"]}, "INVALID_ARGUMENT", "unicorn"),
        (png(64, 64), {"min_score": 1.5}, "INVALID_ARGUMENT", "min_score"),
        (png(64, 64), {"max_candidates": 100_001}, "INVALID_ARGUMENT", "max_candidates must be within"),
        (png(64, 64), {"max_candidates": -1}, "INVALID_ARGUMENT", "max_candidates must be within"),
    ],
)
def test_bad_input_is_refused_and_the_service_stays_up(
    stack: Stack, image: bytes, options: dict, code: str, message: str
) -> None:
    with stack.client() as client:
        with pytest.raises(FoveaClientError) as err:
            client.detect(image, **options)
        assert err.value.code == code
        assert message in err.value.message
        assert client.detect(sample("giraffe").read_bytes()).detections  # still serving


def test_cli_json_and_annotate(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "boxes.png"
    env = {**os.environ, "FOVEA_GATEWAY": stack.gateway, "FOVEA_API_KEY": stack.admin_key}
    proc = subprocess.run(
        [sys.executable, "-m", "fovea", "detect", str(sample("dog")), "--json", "--annotate", str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"image_size", "model", "detections"}
    assert set(data["detections"][0]) == {"label", "class_id", "score", "box"}
    assert Image.open(out).size == (768, 576)
    bad = subprocess.run(
        [sys.executable, "-m", "fovea", "detect", str(sample("dog")), "--model", "nope"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 1 and "NOT_FOUND" in bad.stderr
