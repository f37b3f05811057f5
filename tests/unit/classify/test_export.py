"""append_head: the served graph of a trained classifier is the backbone cut at FEATURES + softmax(x W + b)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from fovea.classify.core.export import append_head
from fovea.classify.core.training import softmax


def tiny_backbone() -> onnx.ModelProto:
    """IMAGE uint8 [N, 4, 4, 3] -> FEATURES [N, 3] (mean over pixels, then x2 + 1: a stand-in for the pooled
    features), FEATURE_MAP [N, 4, 4, 3] and a 3-class PROBABILITIES the head replaces, like classifier_imagenet."""
    nodes = [
        helper.make_node("Cast", ["IMAGE"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("Identity", ["pixels"], ["FEATURE_MAP"]),
        helper.make_node("ReduceMean", ["pixels"], ["mean"], axes=[1, 2], keepdims=0),
        helper.make_node("Mul", ["mean", "two"], ["scaled"]),
        helper.make_node("Add", ["scaled", "one"], ["FEATURES"]),
        helper.make_node("MatMul", ["FEATURES", "HEAD_WEIGHT"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["PROBABILITIES"], axis=-1),
    ]
    init = [
        helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
        helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor("HEAD_WEIGHT", TensorProto.FLOAT, [3, 3], np.eye(3, dtype=np.float32).ravel()),
    ]
    graph = helper.make_graph(
        nodes,
        "backbone",
        [helper.make_tensor_value_info("IMAGE", TensorProto.UINT8, ["N", 4, 4, 3])],
        [
            helper.make_tensor_value_info("PROBABILITIES", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("FEATURES", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("FEATURE_MAP", TensorProto.FLOAT, ["N", 4, 4, 3]),
        ],
        init,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_appended_graph_is_softmax_of_the_head_over_the_features() -> None:
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 0.05, (3, 5)).astype(np.float32)
    bias = rng.normal(0, 0.5, 5).astype(np.float32)
    model = append_head(tiny_backbone(), weight, bias)
    assert [o.name for o in model.graph.output] == ["PROBABILITIES"]
    assert "HEAD_WEIGHT" not in {i.name for i in model.graph.initializer}  # the ImageNet layer is cut away
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    images = rng.integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
    (got,) = session.run(["PROBABILITIES"], {"IMAGE": images})
    features = images.astype(np.float32).mean(axis=(1, 2)) * 2 + 1  # the tiny backbone's FEATURES
    expected = softmax(features.astype(np.float64) @ weight + bias)
    assert got.shape == (6, 5)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_refuses_a_backbone_without_features_or_a_head_of_the_wrong_width() -> None:
    backbone = tiny_backbone()
    with pytest.raises(ValueError, match="have 3 values, the head takes 4"):
        append_head(backbone, np.zeros((4, 2), np.float32), np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="weight must be"):
        append_head(backbone, np.zeros((3, 2), np.float32), np.zeros(3, np.float32))
    del backbone.graph.output[1]  # FEATURES
    with pytest.raises(ValueError, match="it needs IMAGE and FEATURES"):
        append_head(backbone, np.zeros((3, 2), np.float32), np.zeros(2, np.float32))
