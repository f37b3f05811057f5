"""A trained head appended to the backbone's ONNX graph: one served model, image in, new classes out.

The backbone (``classifier_imagenet``'s graph) outputs ``FEATURES`` ``[N, 1280]``, the pooled features the
head was trained on. The served graph keeps the part of the backbone that computes ``FEATURES`` (the ImageNet
layer and the other outputs are dropped) and appends ``MatMul(W) -> Add(b) -> Softmax`` as ``PROBABILITIES``
``[N, C]``, so Triton serves backbone + head in one call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

HEAD_WEIGHT = "TRAINED_HEAD_WEIGHT"
HEAD_BIAS = "TRAINED_HEAD_BIAS"


def append_head(
    backbone: Any,
    weight: np.ndarray,
    bias: np.ndarray,
    *,
    image: str = "IMAGE",
    features: str = "FEATURES",
    output: str = "PROBABILITIES",
) -> Any:
    """``backbone`` (an ``onnx.ModelProto`` with input ``image`` and output ``features``) cut at ``features``,
    with ``softmax(features @ weight + bias)`` appended as the only output ``output`` ``[N, C]``.

    Args:
        weight: ``(F, C)`` float32, F = the features' width.
        bias: ``(C,)`` float32.

    Raises:
        ValueError: the backbone lacks ``image`` or ``features``, or the shapes do not fit.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inputs = [i.name for i in backbone.graph.input]
    outputs = [o.name for o in backbone.graph.output]
    if image not in inputs or features not in outputs:
        raise ValueError(
            f"the backbone has inputs {inputs} and outputs {outputs}; it needs {image} and {features} "
            "(rebuild classifier_imagenet with `fovea models build --only classifier_imagenet --force`)"
        )
    weight = np.asarray(weight, np.float32)
    bias = np.asarray(bias, np.float32)
    if weight.ndim != 2 or bias.shape != (weight.shape[1],):
        raise ValueError(f"weight must be (F, C) and bias (C,), got {weight.shape} and {bias.shape}")
    width = _feature_width(backbone, features)
    if width is not None and width != weight.shape[0]:
        raise ValueError(f"the backbone's {features} have {width} values, the head takes {weight.shape[0]}")
    graph = onnx.utils.Extractor(backbone).extract_model([image], [features]).graph
    graph.initializer.extend(
        [numpy_helper.from_array(weight, HEAD_WEIGHT), numpy_helper.from_array(bias, HEAD_BIAS)]
    )
    graph.node.extend(
        [
            helper.make_node(
                "MatMul", [features, HEAD_WEIGHT], ["trained_head_matmul"], name="trained_head_matmul"
            ),
            helper.make_node(
                "Add", ["trained_head_matmul", HEAD_BIAS], ["trained_head_logits"], name="trained_head_add"
            ),
            helper.make_node(
                "Softmax", ["trained_head_logits"], [output], name="trained_head_softmax", axis=-1
            ),
        ]
    )
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", weight.shape[1]]))
    model = helper.make_model(graph, opset_imports=list(backbone.opset_import), producer_name="fovea")
    model.ir_version = backbone.ir_version
    onnx.checker.check_model(model)
    return model


def _feature_width(model: Any, name: str) -> int | None:
    for value in model.graph.output:
        if value.name == name:
            dims = value.type.tensor_type.shape.dim
            if len(dims) == 2 and dims[1].HasField("dim_value"):
                return int(dims[1].dim_value)
    return None


__all__ = ["HEAD_BIAS", "HEAD_WEIGHT", "append_head"]
