"""``fovea.serving.style_fast`` and ``style_gatys``: the code Triton runs, loaded in-process from the repository."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fovea.common.paths import project_root
from fovea.serving.base import RequestError
from fovea.serving.triton_adapter import load_from_repository

REPOSITORY = project_root() / "model_repository"


def test_style_fast_stylizes_and_isolates_bad_requests() -> None:
    model = load_from_repository("fovea.serving.style_fast", REPOSITORY / "style_fast")
    image = np.random.default_rng(0).integers(0, 256, (1, 48, 64, 3), dtype=np.uint8)
    good, bad_index, too_small = model.execute(
        [
            {"IMAGE": image, "STYLE_INDEX": np.array([[3]], np.int32)},
            {"IMAGE": image, "STYLE_INDEX": np.array([[26]], np.int32)},
            {"IMAGE": image[:, :8, :8], "STYLE_INDEX": np.array([[3]], np.int32)},
        ]
    )
    assert isinstance(good, dict) and good["IMAGE"].shape == image.shape and good["IMAGE"].dtype == np.uint8
    assert not np.array_equal(good["IMAGE"], image)  # it did something
    assert isinstance(bad_index, RequestError) and "STYLE_INDEX" in str(bad_index)
    assert isinstance(too_small, RequestError) and "32" in str(too_small)


def test_style_gatys_streams_then_finishes_and_stops_when_cancelled() -> None:
    model = load_from_repository("fovea.serving.style_gatys", REPOSITORY / "style_gatys")
    rng = np.random.default_rng(1)
    inputs = {
        "CONTENT": rng.integers(0, 256, (40, 48, 3), dtype=np.uint8),
        "STYLE": rng.integers(0, 256, (40, 48, 3), dtype=np.uint8),
        "PARAMS": np.array(
            [json.dumps({"iterations": 3, "max_side": 48, "optimizer": "adam"}).encode()], object
        ),
    }
    sent: list[dict[str, np.ndarray]] = []
    final = model.stream(inputs, sent.append, lambda: False)
    assert [int(s["ITERATION"][0]) for s in sent] == [1, 2, 3]
    assert final is not None and final["IMAGE"].shape == (40, 48, 3)
    assert all(s["IMAGE"].shape == (0, 0, 3) for s in sent)  # sent is not empty (checked above)

    stopped: list[dict[str, np.ndarray]] = []
    assert model.stream(inputs, stopped.append, lambda: len(stopped) >= 1) is None
    assert len(stopped) == 1

    with pytest.raises(RequestError, match="bad request"):
        model.stream({**inputs, "PARAMS": np.array([b"{not json"], object)}, sent.append, lambda: False)
