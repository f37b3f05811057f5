"""Our MobileNetV2 port and its ONNX export against torchvision's own definition (the issue's "port matches its
reference to 1e-4").

The reference outputs in ``tests/fixtures/mobilenet-v2-reference`` were made by torchvision's ``MobileNetV2``
class (read out of the torchvision wheel, see that folder's README) with the same checkpoint, on the four
photo crops stored there as PNG; this test needs neither torchvision nor the wheel.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from fovea.common.paths import project_root
from fovea.convert import mobilenet_v2 as mnv2_build
from fovea.ports import mobilenet_v2 as mnv2

FIXTURE = project_root() / "tests" / "fixtures" / "mobilenet-v2-reference"
RECORD = json.loads((FIXTURE / "reference.json").read_text())
TOLERANCE = 1e-4  # max abs difference of the logits (and of probabilities and features)


@pytest.fixture(scope="module")
def model() -> mnv2.MobileNetV2:
    return mnv2_build.mobilenet_v2_from_checkpoint()


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    assert RECORD["inputs"]
    return np.stack([np.asarray(Image.open(FIXTURE / path)) for path in RECORD["inputs"]])


def reference(name: str) -> np.ndarray:
    return np.load(FIXTURE / f"{name}.npy")


def test_fixture_is_what_its_record_says(images: np.ndarray) -> None:
    assert images.shape == (4, 224, 224, 3) and images.dtype == np.uint8
    assert RECORD["checkpoint_sha256"] == mnv2.CHECKPOINT_SHA256
    logits = reference("logits")
    assert logits.shape == (4, 1000) and reference("features").shape == (4, 1280)
    assert logits.argmax(-1).tolist() == [k for k, _ in RECORD["top1"].values()]


def test_port_matches_torchvision(model: mnv2.MobileNetV2, images: np.ndarray) -> None:
    ours = mnv2.port_outputs(model, images)
    errors = {
        "logits": float(np.abs(ours["LOGITS"] - reference("logits")).max()),
        "probabilities": float(np.abs(ours["PROBABILITIES"] - reference("probabilities")).max()),
        "features": float(np.abs(ours["FEATURES"] - reference("features")).max()),
    }
    assert max(errors.values()) <= TOLERANCE, errors  # measured: 0.0 (bit for bit, same torch)


def test_onnx_export_matches_torchvision(model: mnv2.MobileNetV2, images: np.ndarray) -> None:
    import onnxruntime as ort
    from onnx import helper

    served = mnv2_build.served_onnx(model)
    # the classifier Gemm's output (the logits) made a graph output as well, to compare logits directly
    (gemm,) = [node for node in served.graph.node if node.op_type == "Gemm"]
    served.graph.output.append(helper.make_empty_tensor_value_info(gemm.output[0]))
    session = ort.InferenceSession(served.SerializeToString(), providers=["CPUExecutionProvider"])
    logits, probabilities, features = session.run(
        [gemm.output[0], "PROBABILITIES", "FEATURES"], {"IMAGE": images}
    )
    errors = {
        "logits": float(np.abs(logits - reference("logits")).max()),
        "probabilities": float(np.abs(probabilities - reference("probabilities")).max()),
        "features": float(np.abs(features - reference("features")).max()),
    }
    assert max(errors.values()) <= TOLERANCE, (
        errors
    )  # measured: logits 1.3e-5, features 5.2e-6, probabilities 4.3e-7
