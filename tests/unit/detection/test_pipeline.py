"""``fovea.detection.pipeline.prepare``: what the service sends to the model for each ``input_format``."""

from __future__ import annotations

from typing import Any

import numpy as np

from fovea.contracts.detector import DetectorSpec
from fovea.detection.pipeline import prepare


def _spec(**overrides: Any) -> DetectorSpec:
    fields: dict[str, Any] = {
        "name": "m",
        "family": "yolov8",
        "input_size": (64, 48),
        "labels": ["a"],
        "input_name": "INPUT",
        "output_names": ["OUTPUT0"],
    }
    return DetectorSpec.model_validate({**fields, **overrides})


def test_uint8_models_get_the_letterboxed_canvas() -> None:
    image = np.full((30, 40, 3), 200, np.uint8)
    batch, transform = prepare(image, _spec(input_format="uint8_nhwc"))
    # 40x30 into 64x48: r = 1.6 -> 64x48 exactly, no padding
    assert batch.shape == (1, 48, 64, 3) and batch.dtype == np.uint8
    assert (batch == 200).all() and transform.scale_x == 1.6


def test_float_models_get_normalised_nchw_by_default() -> None:
    image = np.full((30, 40, 3), 255, np.uint8)
    batch, _ = prepare(image, _spec())
    assert batch.shape == (1, 3, 48, 64) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, 1.0)  # 255 * (1 / 255)


def test_end_to_end_outputs_skip_nms_but_keep_the_filters() -> None:
    import torch

    from fovea.detection.pipeline import Options, finish

    spec = _spec(family="end2end", labels=["a", "b"])
    image = np.zeros((48, 64, 3), np.uint8)  # = the input size: the transform is the identity
    _, transform = prepare(image, spec)
    rows = np.zeros((1, 5, 6), np.float32)
    rows[0, 0] = [0, 0, 20, 20, 0.9, 0]
    rows[0, 1] = [0, 0, 20, 20, 0.8, 0]  # IoU 1 with row 0: NMS would drop it
    rows[0, 2] = [30, 10, 50, 30, 0.7, 1]
    rows[0, 3] = [30, 10, 50, 30, 0.2, 1]  # under min_score
    options = Options(min_score=0.3, iou_threshold=0.5, max_detections=10, class_filter=None, annotate=False)
    result = finish({"OUTPUT0": rows}, spec, transform, options, image)
    assert result.scores == [torch.tensor(v).item() for v in (0.9, 0.8, 0.7)]  # float32 values
    assert result.class_ids == [0, 0, 1] and result.boxes[0] == [0.0, 0.0, 20.0, 20.0]
    only_b = Options(
        min_score=0.3, iou_threshold=0.5, max_detections=10, class_filter=frozenset({1}), annotate=False
    )
    assert finish({"OUTPUT0": rows}, spec, transform, only_b, image).class_ids == [1]
    two = Options(min_score=0.3, iou_threshold=0.5, max_detections=2, class_filter=None, annotate=False)
    assert finish({"OUTPUT0": rows}, spec, transform, two, image).class_ids == [0, 0]


def test_a_photo_is_decoded_as_small_as_its_letterbox_allows() -> None:
    import io

    from PIL import Image

    from fovea.common.images import ImageLimits
    from fovea.detection.pipeline import decode

    def jpeg(width: int, height: int) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", (width, height), (90, 120, 150)).save(buf, "JPEG", quality=90)
        return buf.getvalue()

    spec = _spec(input_format="uint8_nhwc", input_size=(416, 416))
    limits = ImageLimits()
    # 4032x3024 letterboxes to 416x312: 1/8 (504x378) keeps that, though not 416 in height
    phone = decode(jpeg(4032, 3024), limits, spec)
    assert phone.reduction == 8 and phone.picture.size == (504, 378)
    assert phone.original_size == (4032, 3024)
    assert decode(jpeg(1024, 768), limits, spec).reduction == 2  # 512x384 for 416x312
    assert decode(jpeg(640, 480), limits, spec).reduction == 1  # 320x240 would be too small
    assert decode(jpeg(4032, 3024), limits, spec, annotate=True).reduction == 1  # drawn at full size
    stretched = _spec(input_format="uint8_nhwc", input_size=(416, 416), letterbox=False)
    assert decode(jpeg(4032, 3024), limits, stretched).reduction == 4  # needs 416 both ways: 1008x756
    batch, transform = prepare(phone.picture, spec, phone.original_size)
    assert batch.shape == (1, 416, 416, 3) and transform.original_size == (4032, 3024)
    assert transform.scale_x == 416 / 4032
