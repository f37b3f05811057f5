"""``centernet``: CenterNet's served input (a letterboxed uint8 image) and outputs (the best 100 candidates)."""

from __future__ import annotations

from fovea.contracts.tensors import ONNX_MODEL_PARAMETERS, Contract, TensorSpec

CONTRACT = Contract(
    name="centernet",
    inputs=(TensorSpec("INPUT", "uint8", (512, 512, 3)),),
    outputs=(
        TensorSpec("BOXES", "float32", (100, 4)),
        TensorSpec("SCORES", "float32", (100,)),
        TensorSpec("CLASSES", "int32", (100,)),
    ),
    parameters=ONNX_MODEL_PARAMETERS,
)
