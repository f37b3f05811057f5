"""``nanodet``: NanoDet's served input (a letterboxed uint8 image) and outputs (the best 1,000 candidates)."""

from __future__ import annotations

from fovea.contracts.tensors import ONNX_MODEL_PARAMETERS, WITH_TORCH_PORT, Contract, TensorSpec

CONTRACT = Contract(
    name="nanodet",
    inputs=(TensorSpec("INPUT", "uint8", (416, 416, 3)),),
    outputs=(
        TensorSpec("BOXES", "float32", (1000, 4)),
        TensorSpec("SCORES", "float32", (1000,)),
        TensorSpec("CLASSES", "int32", (1000,)),
    ),
    parameters={
        **ONNX_MODEL_PARAMETERS,
        "DEVICE": WITH_TORCH_PORT,
    },
)
