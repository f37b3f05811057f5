"""``style_fast``: the 26-style feed-forward network's inputs and output."""

from __future__ import annotations

from fovea.contracts.tensors import Contract, TensorSpec

CONTRACT = Contract(
    name="style_fast",
    inputs=(TensorSpec("IMAGE", "uint8", (-1, -1, 3)), TensorSpec("STYLE_INDEX", "int32", (1,))),
    outputs=(TensorSpec("IMAGE", "uint8", (-1, -1, 3)),),
    parameters={
        "WEIGHTS": "the ONNX file in 1/ (multistyle26.onnx, copied by fovea models build)",
        "DEVICE": "auto | cpu | cuda (onnxruntime's CPU provider here)",
    },
)
