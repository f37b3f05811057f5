"""``face_mesh``: MediaPipe's face mesh input (a 192x192 crop) and outputs (468 3D points, a face score)."""

from __future__ import annotations

from fovea.contracts.tensors import Contract, TensorSpec

CROP_SIZE = 192

POINTS = 468

CONTRACT = Contract(
    name="face_mesh",
    inputs=(TensorSpec("CROP", "uint8", (CROP_SIZE, CROP_SIZE, 3)),),
    outputs=(TensorSpec("MESH", "float32", (POINTS, 3)), TensorSpec("FACE_SCORE", "float32", (1,))),
    parameters={
        "WEIGHTS": "the ONNX file (fovea models build)",
        "DEVICE": "auto, cuda, tensorrt or cpu (onnxruntime providers)",
    },
)

MESH_INPUT = CONTRACT.inputs[0].name

MESH_OUTPUTS = tuple(t.name for t in CONTRACT.outputs)
