"""``fovea.serving.classifier``: the code Triton runs for ``classifier_imagenet``, loaded in-process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fovea.classify.pipeline import read_head
from fovea.common.paths import project_root
from fovea.contracts.classifier import CONTRACT, read_labels
from fovea.contracts.tensors import check_config
from fovea.convert.mobilenet_v2 import check_images, convert_mobilenet_v2_onnx, mobilenet_v2_from_checkpoint
from fovea.ports.mobilenet_v2 import port_outputs
from fovea.serving.base import RequestError, read_config
from fovea.serving.classifier import Classifier
from fovea.serving.triton_adapter import Served, load_served

MODEL_DIR = project_root() / "model_repository" / "classifier_imagenet"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    weights = tmp_path_factory.mktemp("classifier") / "1"
    convert_mobilenet_v2_onnx(weights / "model.onnx")
    _, model = load_served("fovea.serving.classifier", weights, read_config(MODEL_DIR / "config.pbtxt"))
    return model


def test_repository_config_matches_contract() -> None:
    params = check_config(CONTRACT, read_config(MODEL_DIR / "config.pbtxt"))
    assert params["WEIGHTS"] == "model.onnx"
    assert CONTRACT.input_names == ("IMAGE",)
    # FEATURES is what the transfer-learning job trains on, TEXTURE the pad recipe: name, dtype and shape are an
    # interface
    assert [(t.name, t.dtype, t.dims) for t in CONTRACT.outputs] == [
        ("PROBABILITIES", "float32", (1000,)),
        ("FEATURES", "float32", (1280,)),
        ("FEATURE_MAP", "float32", (7, 7, 1280)),
        ("TEXTURE", "float32", (176,)),
    ]
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
    want = port_outputs(mobilenet_v2_from_checkpoint(), images)
    shapes = {
        "PROBABILITIES": (2, 1000),
        "FEATURES": (2, 1280),
        "FEATURE_MAP": (2, 7, 7, 1280),
        "TEXTURE": (2, 176),
    }
    assert set(first) == set(shapes)
    for name, shape in shapes.items():
        got = np.concatenate([first[name], last[name]])
        assert got.shape == shape and got.dtype == np.float32, name
        assert float(np.abs(got - want[name]).max()) <= 1e-4, name
    # FEATURES is FEATURE_MAP averaged over its 7x7 cells
    np.testing.assert_allclose(first["FEATURE_MAP"].mean((1, 2)), first["FEATURES"], atol=1e-5)
    assert served.describe().startswith("onnxruntime")


def test_classify_runs_only_the_asked_outputs(served: Served) -> None:
    assert isinstance(served, Classifier)
    only = served.run(check_images()[:1], ["FEATURES"])
    assert list(only) == ["FEATURES"] and only["FEATURES"].shape == (1, 1280)
    with pytest.raises(ValueError, match="unknown outputs"):
        served.run(check_images()[:1], ["LOGITS"])


def test_read_head_fails_clearly(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    with pytest.raises(ValueError, match="does not exist"):
        read_head(tmp_path / "model.onnx")
    graph = helper.make_graph(
        [helper.make_node("Identity", ["X"], ["Y"])],
        "no_head",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(graph), str(tmp_path / "model.onnx"))
    with pytest.raises(ValueError, match="no HEAD_WEIGHT/HEAD_BIAS: rebuild"):
        read_head(tmp_path / "model.onnx")


def test_head_is_in_the_built_graph() -> None:
    weights = MODEL_DIR / "1" / "model.onnx"
    if not weights.exists():
        pytest.skip("fovea models build has not been run")
    weight, bias = read_head(weights)
    linear = mobilenet_v2_from_checkpoint().classifier[1]
    np.testing.assert_array_equal(weight, linear.weight.detach().numpy())
    np.testing.assert_array_equal(bias, linear.bias.detach().numpy())
