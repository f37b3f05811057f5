"""``style_gatys``: the Gatys optimisation's inputs, parameters and streamed outputs."""

from __future__ import annotations

from fovea.contracts.tensors import Contract, TensorSpec

CONTRACT = Contract(
    name="style_gatys",
    inputs=(
        TensorSpec("CONTENT", "uint8", (-1, -1, 3)),
        TensorSpec("STYLE", "uint8", (-1, -1, 3)),
        TensorSpec("PARAMS", "object", (1,)),
    ),
    outputs=(
        TensorSpec("ITERATION", "int32", (1,)),
        TensorSpec("COSTS", "float32", (3,)),
        TensorSpec("PREVIEW", "uint8", (-1, -1, 3)),
        TensorSpec("IMAGE", "uint8", (-1, -1, 3)),
    ),
    parameters={
        "WEIGHTS": "the VGG16 artefact in 1/ (vgg16_hed.pt, written by fovea models build)",
        "DEVICE": "auto | cpu | cuda: torch device (a KIND_GPU instance always uses its GPU)",
    },
)
