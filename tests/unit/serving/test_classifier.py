"""``fovea.serving.classifier``: the code Triton runs for ``classifier_imagenet``, loaded in-process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fovea.models.mobilenet_v2 import (
    check_images,
    convert_mobilenet_v2_onnx,
    mobilenet_v2_from_checkpoint,
    probabilities,
)
from fovea.serving.base import RequestError, check_config, read_config
from fovea.serving.classifier import CONTRACT, read_labels
from fovea.serving.triton_adapter import Served, load_served
from fovea.stack.config import REPO_ROOT

MODEL_DIR = REPO_ROOT / "model_repository" / "classifier_imagenet"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    weights = tmp_path_factory.mktemp("classifier") / "1"
    convert_mobilenet_v2_onnx(weights / "model.onnx")
    _, model = load_served("fovea.serving.classifier", weights, read_config(MODEL_DIR / "config.pbtxt"))
    return model


def test_repository_config_matches_contract() -> None:
    params = check_config(CONTRACT, read_config(MODEL_DIR / "config.pbtxt"))
    assert params["WEIGHTS"] == "model.onnx"
    assert CONTRACT.input_names == ("IMAGE",) and CONTRACT.output_names == ("PROBABILITIES",)
    assert (MODEL_DIR / "1" / "model.py").read_text().count("python_model(") == 1
    labels = read_labels(MODEL_DIR)
    assert len(labels) == CONTRACT.outputs[0].dims[0] == 1000


def test_read_labels_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        read_labels(tmp_path)
    (tmp_path / "labels.txt").write_text("cat\n\ndog\n")
    with pytest.raises(ValueError, match="blank"):
        read_labels(tmp_path)


def test_batch_matches_port_and_bad_requests_get_their_own_error(served: Served) -> None:
    images = check_images()
    results = served.execute(
        [
            {"IMAGE": images[:1]},
            {"IMAGE": np.zeros((1, 256, 256, 3), np.uint8)},  # wrong size
            {"IMAGE": images[1:].astype(np.float32)},  # wrong dtype
            {"IMAGE": images[1:]},
        ]
    )
    assert isinstance(results[1], RequestError) and "shape" in str(results[1])
    assert isinstance(results[2], RequestError) and "uint8" in str(results[2])
    first, last = results[0], results[3]
    assert isinstance(first, dict) and isinstance(last, dict)
    got = np.concatenate([first["PROBABILITIES"], last["PROBABILITIES"]])
    want = probabilities(mobilenet_v2_from_checkpoint(), images)
    assert got.shape == (2, 1000) and got.dtype == np.float32
    assert float(np.abs(got - want).max()) <= 1e-4
    assert served.describe().startswith("onnxruntime")
