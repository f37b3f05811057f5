"""The uint8 image input put in front of a float graph (fovea.convert.onnx_import.surgery): the same
tensor as the detection service's float preprocessing, and what it refuses to wrap.

The in-graph candidates head is tested in tests/unit/convert/test_candidates_head.py and through
``import_onnx`` in test_write.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from fovea.contracts.detector import DetectorSpec
from fovea.convert.onnx_import.surgery import with_uint8_input


def _identity_graph(path: Path, elem: int = onnx.TensorProto.FLOAT) -> Path:
    """[N, 3, 6, 8] -> the same tensor as ``output0`` (and its type), so the prefix's work is visible."""
    from onnx import helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["output0"])],
        "identity",
        [helper.make_tensor_value_info("images", elem, ["batch", 3, 6, 8])],
        [helper.make_tensor_value_info("output0", elem, ["batch", 3, 6, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("elem", [onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16])
@pytest.mark.parametrize("order", ["RGB", "BGR"])
def test_uint8_prefix_equals_the_services_float_preprocessing(tmp_path: Path, order: str, elem: int) -> None:
    from fovea.detection.core.preprocess import normalise

    source = onnx.load(str(_identity_graph(tmp_path / "id.onnx", elem)))
    mean, std = (0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255)
    wrapped = with_uint8_input(
        source, channel_order=order, scale=0.5, mean=mean, std=std, output_names={"output0": "OUTPUT0"}
    )
    onnx.checker.check_model(wrapped)
    session = ort.InferenceSession(wrapped.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type, i.shape) for i in session.get_inputs()] == [
        ("INPUT", "tensor(uint8)", ["batch", 6, 8, 3])
    ]
    assert [(o.name, o.type) for o in session.get_outputs()] == [("OUTPUT0", "tensor(float)")]
    canvases = np.random.default_rng(0).integers(0, 256, (2, 6, 8, 3), dtype=np.uint8)
    (got,) = session.run(None, {"INPUT": canvases})
    spec = load_spec_like(order=order, scale=0.5, mean=mean, std=std)
    want = np.stack([normalise(c, spec) for c in canvases])  # the float_nchw path of the service
    tolerance = 1e-5 if elem == onnx.TensorProto.FLOAT else 2e-3  # float16 keeps ~3 decimal digits
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance)


def load_spec_like(**pre: object) -> DetectorSpec:
    return DetectorSpec.model_validate(
        {
            "name": "id",
            "family": "yolov8",
            "input_size": (8, 6),
            "channel_order": pre["order"],
            "scale": pre["scale"],
            "mean": pre["mean"],
            "std": pre["std"],
            "labels": ["a"],
            "input_name": "INPUT",
            "output_names": ["OUTPUT0"],
        }
    )


def test_uint8_prefix_refuses_what_it_cannot_wrap(tmp_path: Path) -> None:
    source = onnx.load(str(_identity_graph(tmp_path / "id.onnx")))
    with pytest.raises(ValueError, match="channel_order"):
        with_uint8_input(source, channel_order="GBR", scale=1.0, mean=(0, 0, 0), std=(1, 1, 1))
    with pytest.raises(ValueError, match="std"):
        with_uint8_input(source, channel_order="RGB", scale=1.0, mean=(0, 0, 0), std=(1, 0, 1))
    with pytest.raises(ValueError, match="already has a tensor named"):
        with_uint8_input(
            source, channel_order="RGB", scale=1.0, mean=(0, 0, 0), std=(1, 1, 1), input_name="output0"
        )
