"""``face_embedder``: dlib's ResNet descriptor's input (a 150x150 aligned chip) and output (128 floats), and what a gallery records of the embedder that made its templates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fovea.contracts.tensors import WITH_TORCH_PORT, Contract, TensorSpec

CHIP_SHAPE = (150, 150, 3)

CONTRACT = Contract(
    name="face_embedder",
    inputs=(TensorSpec("CHIP", "uint8", CHIP_SHAPE),),
    outputs=(TensorSpec("EMBEDDING", "float32", (128,)),),
    parameters={
        "WEIGHTS": "the ONNX file (fovea models build)",
        "DEVICE": WITH_TORCH_PORT,
        "EMBEDDING_VERSION": "stored with every template; templates of other versions are never compared",
        "DISTANCE_THRESHOLD": "default match threshold (L2 distance) of new galleries",
    },
)

EMBEDDER_INPUT = CONTRACT.inputs[0].name

EMBEDDER_OUTPUT = CONTRACT.outputs[0].name


@dataclass(frozen=True)
class EmbedderInfo:
    """What the faces service needs to know of the embedding model (its config parameters)."""

    version: str  # stored with every template; templates of other versions are never compared
    default_threshold: float  # same person when the L2 distance is below this

    @classmethod
    def from_parameters(cls, params: Mapping[str, str]) -> EmbedderInfo:
        version = params.get("EMBEDDING_VERSION", "")
        if not version:
            raise ValueError("the embedding model's config has no EMBEDDING_VERSION parameter")
        try:
            threshold = float(params.get("DISTANCE_THRESHOLD", ""))
        except ValueError as exc:
            raise ValueError("the embedding model's DISTANCE_THRESHOLD parameter is not a number") from exc
        if not threshold > 0:
            raise ValueError(f"DISTANCE_THRESHOLD must be > 0, got {threshold}")
        return cls(version, threshold)
