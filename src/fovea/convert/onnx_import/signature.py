"""Reading the graph: its inputs and outputs, its metadata, and a trial run on a zero image."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FLOAT_INPUTS = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
FLOAT_OUTPUTS = {"tensor(float)", "tensor(float16)", "tensor(double)"}
SIZE_INPUT = re.compile(r"size", re.IGNORECASE)
SIZE_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32}
"""A second input the import binds to the input's (width, height): its name pattern and types."""
INTEGER_OUTPUTS = {"tensor(int32)": "TYPE_INT32", "tensor(int64)": "TYPE_INT64"}
"""Integer outputs kept as they are (nms-in-graph counts and class ids), with their Triton type."""

Dim = int | None  # None: dynamic (symbolic or unknown) in the graph


def labels_from_metadata(metadata: Mapping[str, str]) -> list[str] | None:
    """Class names from an ONNX file's ``names`` metadata as Ultralytics writes it (``{0: 'person', ...}``,
    a Python literal), or ``None`` when there is none or it does not parse as an index -> name mapping or
    a list."""
    import ast

    text = metadata.get("names")
    if not text:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, dict) and sorted(value) == list(range(len(value))):
        names = [value[i] for i in range(len(value))]
    elif isinstance(value, list):
        names = value
    else:
        return None
    if not names or not all(isinstance(n, str) and n.strip() for n in names) or len(set(names)) != len(names):
        return None
    return [n.strip() for n in names]


@dataclass(frozen=True)
class TensorInfo:
    """One graph input or output as onnxruntime reports it."""

    name: str
    dtype: str
    """onnxruntime's type string, e.g. ``tensor(float)``."""
    shape: tuple[Dim, ...]
    """Declared shape; ``None`` where the dimension is symbolic or unknown."""


@dataclass(frozen=True)
class OnnxSignature:
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    producer: str = ""
    """``producer_name`` from the model's metadata, when set."""
    metadata: dict[str, str] = field(default_factory=dict)
    """The model's ``metadata_props`` (Ultralytics writes ``names``, ``imgsz``, ``task``, ...)."""


def _dims(shape: Sequence[object]) -> tuple[Dim, ...]:
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape)


def _session(path: Path) -> object:
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for every kind of bad file
        raise ValueError(f"onnxruntime cannot load {path.name}: {exc}") from None


def read_signature(path: Path) -> OnnxSignature:
    """Inputs and outputs of an ONNX file (onnxruntime session metadata)."""
    session = _session(path)
    meta = session.get_modelmeta()  # type: ignore[attr-defined]
    return OnnxSignature(
        inputs=tuple(
            TensorInfo(i.name, i.type, _dims(i.shape))
            for i in session.get_inputs()  # type: ignore[attr-defined]
        ),
        outputs=tuple(
            TensorInfo(o.name, o.type, _dims(o.shape))
            for o in session.get_outputs()  # type: ignore[attr-defined]
        ),
        producer=meta.producer_name or "",
        metadata=dict(meta.custom_metadata_map or {}),
    )


def probe(path: Path, signature: OnnxSignature, input_size: tuple[int, int]) -> list[np.ndarray]:
    """Run the model once on a zero image (batch 1, or the fixed batch); its outputs, float32, in order.
    A size input (:func:`split_inputs`) gets the input's ``(width, height)``."""
    image, size = split_inputs(signature)
    batch = image.shape[0] or 1
    width, height = input_size
    dtype = FLOAT_INPUTS.get(image.dtype, np.float32)
    feed = {image.name: np.zeros((batch, 3, height, width), dtype)}
    if size is not None:
        feed[size.name] = np.tile(size_constant(size, input_size), (batch, 1))
    session = _session(path)
    try:
        outputs = session.run(None, feed)  # type: ignore[attr-defined]
    except Exception as exc:
        raise ValueError(
            f"a trial run on a {width}x{height} zero image failed ({exc}): is the input size right?"
        ) from None
    return [np.asarray(o, dtype=np.float32) for o in outputs]


def size_constant(size: TensorInfo, input_size: tuple[int, int]) -> np.ndarray:
    """``[[width, height]]`` in the size input's type (RT-DETR's and D-FINE's deploy scripts pass
    ``(w, h)``)."""
    return np.asarray([input_size], dtype=SIZE_TYPES[size.dtype])


def split_inputs(signature: OnnxSignature) -> tuple[TensorInfo, TensorInfo | None]:
    """The image input and, where the graph has one, its image-size input: a second input named like
    ``*size*`` (``orig_target_sizes`` in RT-DETR's and D-FINE's deploy exports) shaped ``[N, 2]``, which the
    import binds to the constant ``(width, height)`` of the network input, so that boxes come out in input
    pixels.

    Raises:
        ValueError: no input, more than two, or a second one that is not such a size input.
    """
    inputs = signature.inputs
    names = [i.name for i in inputs]
    if len(inputs) == 1:
        return inputs[0], None
    if len(inputs) == 2:
        images = [i for i in inputs if len(i.shape) == 4]
        sizes = [
            i
            for i in inputs
            if len(i.shape) == 2 and i.shape[1] == 2 and SIZE_INPUT.search(i.name) and i.dtype in SIZE_TYPES
        ]
        if len(images) == 1 and len(sizes) == 1 and images[0] is not sizes[0]:
            return images[0], sizes[0]
    raise ValueError(
        f"the model must have exactly one input (the image), it has {len(names)}: {names} (a second input "
        "is accepted only when it is the image size [N, 2] named like orig_target_sizes; a PaddleDetection "
        "export's scale_factor [N, 2] and im_shape [N, 2] are accepted with its NMS in the graph)"
    )


def check_input(signature: OnnxSignature, wanted: tuple[int, int] | None) -> tuple[int, int]:
    """The image input's ``(width, height)``; refuses anything but one ``[N, 3, H, W]`` float input (and
    an optional size input, see :func:`split_inputs`)."""
    image, _ = split_inputs(signature)
    if image.dtype not in FLOAT_INPUTS:
        raise ValueError(f"input {image.name!r} is {image.dtype}; an image input must be float or float16")
    if len(image.shape) != 4:
        raise ValueError(f"input {image.name!r} has shape {image.shape}; expected [N, 3, H, W] (NCHW)")
    _, channels, height, width = image.shape
    if channels != 3:
        layout = " (it looks NHWC: export channels first)" if image.shape[3] == 3 else ""
        raise ValueError(f"input {image.name!r} has shape {image.shape}; expected [N, 3, H, W]{layout}")
    static = (width, height) if width and height else None
    if wanted is None:
        if static is None:
            raise ValueError(f"input {image.name!r} has a dynamic size {image.shape}: give the input size")
        return static
    if static is not None and static != wanted:
        raise ValueError(
            f"input size {wanted[0]}x{wanted[1]} differs from the model's fixed input {static[0]}x{static[1]}"
        )
    for declared, given, what in ((width, wanted[0], "width"), (height, wanted[1], "height")):
        if declared is not None and declared != given:
            raise ValueError(f"input {what} {given} differs from the model's fixed {what} {declared}")
    return wanted


def per_image(
    outputs: Sequence[TensorInfo], probed: Sequence[np.ndarray], batch: int
) -> list[tuple[int, ...]]:
    """Per-image output shapes from the trial run, checking the batch dimension comes first."""
    if len(probed) != len(outputs):
        raise ValueError(f"the trial run gave {len(probed)} outputs, the graph declares {len(outputs)}")
    shapes = []
    for info, array in zip(outputs, probed, strict=True):
        if array.ndim < 1 or array.shape[0] != batch:
            raise ValueError(
                f"output {info.name!r} has shape {array.shape} for a batch of {batch}: the batch dimension "
                "must come first (export with the batch axis kept)"
            )
        shapes.append(tuple(array.shape[1:]))
    return shapes
