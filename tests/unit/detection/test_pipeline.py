"""``fovea.detection.pipeline.prepare``: what the service sends to the model for each ``input_format``."""

from __future__ import annotations

from typing import Any

import numpy as np

from fovea.detection.core.spec import DetectorSpec
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
