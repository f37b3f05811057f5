"""``fovea.serving.nanodet``: the code Triton runs for NanoDet, loaded in-process from the repository config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fovea.models.nanodet import (
    BOX_TOLERANCE_PX,
    PORT_TOLERANCE,
    SERVED_OUTPUTS,
    NanoDetCandidates,
    check_images,
    convert_nanodet_onnx,
    default_artifact_path,
    load_nanodet,
    preprocess,
)
from fovea.serving.base import RequestError, check_config, read_config
from fovea.serving.nanodet import CONTRACT
from fovea.serving.triton_adapter import Served, load_served
from fovea.stack.config import REPO_ROOT

MODEL_DIR = REPO_ROOT / "model_repository" / "nanodet"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    weights = tmp_path_factory.mktemp("nanodet") / "1"
    convert_nanodet_onnx(weights / "model.onnx")
    _, model = load_served("fovea.serving.nanodet", weights, read_config(MODEL_DIR / "config.pbtxt"))
    return model


def test_repository_config_matches_contract() -> None:
    params = check_config(CONTRACT, read_config(MODEL_DIR / "config.pbtxt"))
    assert params["WEIGHTS"] == "model.onnx" and params["THREADS"] == "0"
    assert CONTRACT.input_names == ("INPUT",) and CONTRACT.output_names == SERVED_OUTPUTS
    assert (MODEL_DIR / "1" / "model.py").read_text().count("python_model(") == 1


def test_batch_matches_port_and_bad_requests_get_their_own_error(served: Served) -> None:
    images = check_images()
    results = served.execute(
        [
            {"INPUT": images[:1]},
            {"INPUT": np.zeros((1, 320, 320, 3), np.uint8)},  # wrong size
            {"INPUT": images[1:].astype(np.float32)},  # wrong dtype
            {"INPUT": images[1:]},
        ]
    )
    assert isinstance(results[1], RequestError) and "shape" in str(results[1])
    assert isinstance(results[2], RequestError) and "uint8" in str(results[2])
    first, last = results[0], results[3]
    assert isinstance(first, dict) and isinstance(last, dict)
    head = NanoDetCandidates(load_nanodet(default_artifact_path()))
    with torch.inference_mode():
        want = [t.numpy() for t in head(preprocess(images))]
    got = [np.concatenate([first[name], last[name]]) for name in SERVED_OUTPUTS]
    for k, name in enumerate(SERVED_OUTPUTS):
        assert got[k].shape == (2, *CONTRACT.outputs[k].dims) and got[k].dtype == CONTRACT.outputs[k].dtype, (
            name
        )
    # top-k orders equal scores either way: compare sorted scores, then (class, box) where a score is unique
    assert float(np.abs(np.sort(got[1], 1) - np.sort(want[1], 1)).max()) <= PORT_TOLERANCE
    compared = 0
    for i in range(2):
        gaps = np.diff(np.sort(want[1][i]))
        for j, score in enumerate(want[1][i]):
            nearest = np.sort(np.abs(want[1][i] - score))[1]
            if nearest < 1e-5 or gaps.size == 0:
                continue
            match = int(np.abs(got[1][i] - score).argmin())
            assert got[2][i][match] == want[2][i][j]
            assert float(np.abs(got[0][i][match] - want[0][i][j]).max()) <= BOX_TOLERANCE_PX
            compared += 1
    assert compared > 100  # most scores are unique


def test_describe_names_the_provider(served: Served) -> None:
    assert "CPUExecutionProvider" in served.describe()


def test_missing_weights_say_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="fovea models build"):
        load_served("fovea.serving.nanodet", tmp_path, read_config(MODEL_DIR / "config.pbtxt"))
