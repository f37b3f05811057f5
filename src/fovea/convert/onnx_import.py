"""``fovea models import-onnx``: add a user's exported ONNX detector to a Triton model repository.

:func:`import_onnx` writes ``<repository>/<name>/``::

    config.pbtxt    Triton config: INPUT [H, W, 3] UINT8, one output per ONNX output (FP32; INT32 / INT64
                    for integer counts and class ids), batching
    fovea.json      the detector spec (head family, input size, preprocessing, labels) the service reads
    MODEL_CARD.md   where it came from (file name, sha256, producer), tensors, preprocessing
    1/model.onnx    the user's graph behind a uint8 input (:func:`with_uint8_input`), outputs renamed
    1/model.py      the two-line python-backend adapter over :mod:`fovea.serving.onnx_detector`

The detection service sends every detector the letterboxed uint8 image (4x smaller than float32): the
cast, channel order and ``(x * scale - mean) / std`` of ``--scale/--mean/--std/--bgr`` run inside the
wrapped graph, whose tensor names equal the Triton names. The bundled Triton has no onnxruntime backend, so
the python backend runs the file with onnxruntime; Triton's native backend could serve the same file.

What is checked before anything is written (each a ``ValueError`` with a message a person can act on):

- the name is a usable Triton model directory name and is not taken (``force`` replaces a model in the
  target repository; a name used by another repository is always refused: Triton would not load both);
- the graph has exactly one input, float or float16, laid out ``[N, 3, H, W]``; a static ``H, W`` must
  agree with ``input_size``, a dynamic one needs ``input_size``;
- a trial run on a zero image (batch 1, or the fixed batch) succeeds, every output keeps the batch first,
  and the per-image output shapes fit the family's layout with ``len(labels)`` classes (see
  ``fovea.common.detectors.heads``), e.g. YOLOv8 ``(4 + C, N)``: a mismatch names the class count the
  model seems to have;
- without ``family``, :func:`find_layout` tells the family from the outputs: 3-4 outputs of boxes ``(K, 4)``
  and ``(K,)`` vectors (plus a count) = ``nms-in-graph``; boxes ``(Q, 4)`` + scores ``(Q, C[+1])`` = ``detr``;
  one ``(K, 6)`` = ``end2end`` (C > 2); ``(4 + C, N)`` = ``yolov8``; ``(N, 4 + C)`` = ``detr`` when the trial
  run's boxes all lie in ``[0, 1]``, ``yolov8`` when they are pixels. A layout several families fit (e.g.
  ``(N, 5 + C)``: yolov5 or yolox; rows of 6 with 2 classes) is refused, naming the flags that settle it.
  What it cannot see from shapes (boxes in pixels or fractions, scores as logits or probabilities, which
  output is which) it reads from the trial run's values and names, else refuses and names the flag
  (``--boxes``, ``--scores``, ``--outputs``). The answer says which layout it read and why;
- the resulting ``DetectorSpec`` validates (anchors for yolo-grid, strides for nanodet, ...).

End-to-end families (``end2end``, ``detr``, ``nms-in-graph``) give final detections: the detection service
skips NMS for them (``HeadFamily.end_to_end``) and applies only the minimum score, the class filter and
the maximum number of detections.

Batching (``config.pbtxt``): always ``max_batch_size`` :data:`MAX_BATCH_SIZE` with dynamic batching, so the
detection service can always send ``[1, 3, H, W]``. A dynamic ONNX batch dimension runs a gathered batch in
one call; a fixed one (``1`` in most exports) runs it in chunks of that size (see ``onnx_detector``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx
from pydantic import ValidationError

from fovea.contracts.detector import SPEC_FILENAME, DetectorSpec, HeadFamily, parse_yaml_names
from fovea.convert.candidates_head import (
    GRID_FAMILIES,
    OUTPUT_NAMES,
    append_candidates,
    candidate_errors,
    candidates_spec,
)

__all__ = [
    "ImportOptions",
    "ImportPlan",
    "ImportResult",
    "Layout",
    "OnnxSignature",
    "TensorInfo",
    "find_layout",
    "import_onnx",
    "is_imported",
    "labels_from_metadata",
    "model_config_json",
    "parse_anchors",
    "parse_floats",
    "parse_input_size",
    "parse_strides",
    "plan_import",
    "preflight",
    "probe",
    "read_labels",
    "read_signature",
    "size_constant",
    "split_inputs",
    "validate_model_name",
]

INPUT_NAME = "INPUT"
WEIGHTS_FILE = "model.onnx"
MAX_BATCH_SIZE = 8
DEFAULT_STRIDES = (8, 16, 32)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FLOAT_INPUTS = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
FLOAT_OUTPUTS = {"tensor(float)", "tensor(float16)", "tensor(double)"}
SIZE_INPUT = re.compile(r"size", re.IGNORECASE)
SIZE_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32}
"""A second input the import binds to the input's (width, height): its name pattern and types."""
INTEGER_OUTPUTS = {"tensor(int32)": "TYPE_INT32", "tensor(int64)": "TYPE_INT64"}
"""Integer outputs kept as they are (nms-in-graph counts and class ids), with their Triton type."""
END_TO_END_FAMILIES = (HeadFamily.END2END, HeadFamily.DETR, HeadFamily.NMS_IN_GRAPH)

Dim = int | None  # None: dynamic (symbolic or unknown) in the graph

MODEL_PY = """from pathlib import Path

from fovea.serving.onnx_detector import python_model

TritonPythonModel = python_model(Path(__file__).parent)
"""


# --- parsing the command line's values -----------------------------------------------------------


def validate_model_name(name: str) -> str:
    """A Triton model directory name: letters, digits, ``_ . -``, starting with a letter or digit, <= 64."""
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"model name {name!r} is not usable as a Triton model directory: use letters, digits, '_', "
            "'.' or '-', starting with a letter or digit, at most 64 characters"
        )
    return name


def parse_input_size(text: str) -> tuple[int, int]:
    """``"640"`` -> ``(640, 640)``; ``"640x480"`` (width x height) -> ``(640, 480)``."""
    parts = re.split(r"[x,]", text.strip().lower())
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"input size must be S or WxH (pixels), got {text!r}") from None
    if len(values) not in (1, 2) or min(values) <= 0:
        raise ValueError(f"input size must be S or WxH with positive pixels, got {text!r}")
    return (values[0], values[-1])


def parse_floats(text: str, count: int, what: str) -> tuple[float, ...]:
    """``count`` comma-separated numbers (``--mean 0.485,0.456,0.406``)."""
    try:
        values = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise ValueError(f"{what} must be {count} comma-separated numbers, got {text!r}") from None
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{what} must be {count} comma-separated numbers, got {text!r}")
    return values


def parse_strides(text: str) -> list[int]:
    """``"8,16,32"`` -> ``[8, 16, 32]``."""
    try:
        strides = [int(p) for p in text.split(",")]
    except ValueError:
        raise ValueError(f"strides must be comma-separated integers, got {text!r}") from None
    if not strides or min(strides) <= 0:
        raise ValueError(f"strides must be positive integers, got {text!r}")
    return strides


def parse_anchors(text: str) -> list[list[tuple[float, float]]]:
    """JSON, per level a list of ``[width, height]`` pairs in input pixels: ``[[[10, 13], [16, 30]]]``."""
    try:
        data = json.loads(text)
        anchors = [[(float(w), float(h)) for w, h in level] for level in data]
    except (ValueError, TypeError):
        raise ValueError(
            f"anchors must be JSON, per level a list of [width, height] pairs, got {text!r}"
        ) from None
    return anchors


def read_labels(path: Path) -> list[str]:
    """Class names: one per line (blank lines skipped), or a YOLO ``data.yaml``'s ``names:``."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        names = parse_yaml_names(text)
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ValueError(f"{path}: no class names (one per line, or a data.yaml with names:)")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate class names {duplicates}")
    return names


# --- reading the graph ---------------------------------------------------------------------------


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


# --- the uint8 image input ----------------------------------------------------------------------


def with_uint8_input(
    model: onnx.ModelProto,
    *,
    channel_order: str,
    scale: float,
    mean: Sequence[float],
    std: Sequence[float],
    input_size: tuple[int, int] | None = None,
    input_name: str = INPUT_NAME,
    output_names: Mapping[str, str] | None = None,
    keep_integer_outputs: bool = False,
    constant_inputs: Mapping[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    """Put the detection service's input in front of a float ``[N, 3, H, W]`` graph (a new model).

    The new graph input ``input_name`` is uint8 ``[N, H, W, 3]`` RGB (what
    ``fovea.detection.core.preprocess.letterbox`` produces); in the graph it is transposed to NCHW, cast to
    float32, reordered to ``channel_order`` and normalised per channel as ``(x * scale - mean[c]) / std[c]``
    (``mean``/``std`` in the model's channel order; computed as ``x * gain[c] + offset[c]``), and cast to the
    old input's float type. The batch dimension
    is the old input's (fixed or symbolic). Outputs named in ``output_names`` (ONNX name -> new name) are
    renamed; every output is float32 (float16/float64 outputs get a Cast; integer ones too unless
    ``keep_integer_outputs``). Inputs named in ``constant_inputs`` become constants of those values (an
    image-size input). Node and tensor names of the prefix start with ``fovea_``.

    Args:
        model: the float model, one input ``[N, 3, H, W]`` (not modified).
        input_size: ``(width, height)`` for a graph whose H or W is dynamic; else the graph's.

    Raises:
        ValueError: not exactly one 4-D input with 3 channels, or ``H, W`` unknown.
    """
    from onnx import TensorProto, helper, numpy_helper

    if channel_order not in ("RGB", "BGR"):
        raise ValueError(f"channel_order must be RGB or BGR, got {channel_order!r}")
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"mean and std need 3 values each, std > 0; got {list(mean)}, {list(std)}")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    constants = dict(constant_inputs or {})
    unknown = set(constants) - {i.name for i in graph.input}
    if unknown:
        raise ValueError(f"constant_inputs {sorted(unknown)} are not inputs of the graph")
    initialisers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initialisers and i.name not in constants]
    if len(inputs) != 1:
        raise ValueError(f"the graph must have exactly one input, it has {[i.name for i in inputs]}")
    (old,) = inputs
    dims = old.type.tensor_type.shape.dim
    if len(dims) != 4 or (dims[1].HasField("dim_value") and dims[1].dim_value != 3):
        raise ValueError(f"input {old.name!r} must be [N, 3, H, W]")
    static = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]
    height, width = (input_size[1], input_size[0]) if input_size else (static[2], static[3])
    if not height or not width:
        raise ValueError(f"input {old.name!r} has a dynamic size: give input_size")
    batch: int | str = static[0] or (dims[0].dim_param or "N")
    old_type = old.type.tensor_type.elem_type
    if input_name in {o.name for o in graph.output} | {n for node in graph.node for n in node.output}:
        raise ValueError(f"the graph already has a tensor named {input_name!r}")

    # On the uint8 image: transpose to NCHW, the channel order as whole planes, then cast, and normalise as
    # x * (scale / std[c]) + (-mean[c] / std[c]) with per-plane constants. Before, a Gather (BGR), Sub and Div
    # over the float NHWC image with 3-wide broadcasts took 4.9 ms alone and 5.6 ms of NanoDet's 33 ms in
    # onnxruntime (its profiler; 416x416, 2 threads); this order takes 0.28 ms, same tensor to 2.4e-7.
    consts = [
        numpy_helper.from_array(
            np.asarray(scale / np.asarray(std), np.float32).reshape(1, 3, 1, 1), "fovea_gain"
        ),
        numpy_helper.from_array(
            np.asarray(-np.asarray(mean) / np.asarray(std), np.float32).reshape(1, 3, 1, 1), "fovea_offset"
        ),
    ]
    nodes = [
        helper.make_node("Transpose", [input_name], ["fovea_nchw_u8"], perm=[0, 3, 1, 2], name="fovea_nchw")
    ]
    x = "fovea_nchw_u8"
    if channel_order == "BGR":
        consts.append(numpy_helper.from_array(np.asarray([2, 1, 0], np.int64), "fovea_channel_order"))
        nodes.append(
            helper.make_node("Gather", [x, "fovea_channel_order"], ["fovea_bgr"], axis=1, name="fovea_bgr")
        )
        x = "fovea_bgr"
    nchw = old.name if old_type == TensorProto.FLOAT else "fovea_normalised"
    nodes += [
        helper.make_node("Cast", [x], ["fovea_float"], to=TensorProto.FLOAT, name="fovea_cast"),
        helper.make_node("Mul", ["fovea_float", "fovea_gain"], ["fovea_scaled"], name="fovea_gain"),
        helper.make_node("Add", ["fovea_scaled", "fovea_offset"], [nchw], name="fovea_offset"),
    ]
    if old_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [nchw], [old.name], to=old_type, name="fovea_cast_input"))

    renames = dict(output_names or {})
    tail = []
    new_outputs = []
    for output in graph.output:
        name = renames.get(output.name, output.name)
        elem = output.type.tensor_type.elem_type
        shape = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in output.type.tensor_type.shape.dim
        ]
        integer = elem in (TensorProto.INT32, TensorProto.INT64, TensorProto.UINT8)
        out_type = elem if keep_integer_outputs and integer else TensorProto.FLOAT
        if name != output.name or elem != out_type:
            if elem == out_type:
                tail.append(helper.make_node("Identity", [output.name], [name], name=f"fovea_out_{name}"))
            else:
                tail.append(
                    helper.make_node(
                        "Cast", [output.name], [name], to=TensorProto.FLOAT, name=f"fovea_out_{name}"
                    )
                )
        new_outputs.append(helper.make_tensor_value_info(name, out_type, shape or None))

    new_input = helper.make_tensor_value_info(input_name, TensorProto.UINT8, [batch, height, width, 3])
    body = list(graph.node)
    graph.ClearField("node")
    graph.node.extend([*nodes, *body, *tail])
    graph.initializer.extend(consts)
    graph.initializer.extend(numpy_helper.from_array(np.asarray(v), n) for n, v in constants.items())
    keep = [i for i in graph.input if i.name != old.name and i.name not in constants]
    graph.ClearField("input")
    graph.input.extend([new_input, *keep])
    graph.ClearField("output")
    graph.output.extend(new_outputs)
    onnx.checker.check_model(out)
    return out


# --- the plan ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportOptions:
    """What the user says about the model (``fovea models import-onnx`` options)."""

    family: str | None
    """Head family; ``None``: found from the outputs (see :func:`find_layout`)."""
    labels: list[str]
    """Class names; empty: the names the file keeps in its metadata (:func:`labels_from_metadata`)."""
    input_size: tuple[int, int] | None = None
    """``(width, height)``; ``None`` = the graph's static input size."""
    channel_order: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    pad_value: float = 114.0
    letterbox: bool = True
    strides: list[int] | None = None
    anchors: list[list[tuple[float, float]]] | None = None
    decoded: bool = False
    raw_outputs: bool = False
    """Serve the network's raw outputs (the service decodes them) instead of appending the decoding and a
    top-k to a grid detector's graph (:mod:`fovea.convert.candidates_head`)."""
    boxes: str | None = None
    """end2end / nms-in-graph: ``pixels`` or ``normalised``; ``None``: judged from the trial run."""
    box_format: str | None = None
    """end2end: ``xyxy`` (the default) or ``cxcywh``."""
    score_activation: str | None = None
    """detr: ``none``, ``sigmoid`` or ``softmax``; ``None``: judged from the trial run."""
    outputs: list[str] | None = None
    """ONNX output names in the family's order (detr: boxes, scores; nms-in-graph: [count,] boxes,
    scores, classes); ``None``: told apart by shape, type and name."""


@dataclass(frozen=True)
class ImportPlan:
    """Everything :func:`import_onnx` writes, computed without touching the repository."""

    spec: DetectorSpec
    config_pbtxt: str
    onnx_input: str
    onnx_outputs: list[str]
    fixed_batch: int | None
    warnings: list[str] = field(default_factory=list)
    layout: str = ""
    """Which layout the outputs were read as, and why."""
    constant_inputs: dict[str, np.ndarray] = field(default_factory=dict)
    """Graph inputs bound to constants in the served graph (an image-size input: ``[[width, height]]``)."""


def _family(value: str) -> HeadFamily:
    try:
        return HeadFamily(value)
    except ValueError:
        known = ", ".join(f.value for f in HeadFamily)
        raise ValueError(f"unknown head family {value!r}; known: {known}") from None


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
        "is accepted only when it is the image size [N, 2] named like orig_target_sizes)"
    )


def _check_input(signature: OnnxSignature, wanted: tuple[int, int] | None) -> tuple[int, int]:
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


def _triton_output_names(outputs: Sequence[TensorInfo]) -> list[str]:
    """UPPER_SNAKE names from the ONNX names (``output0`` -> ``OUTPUT0``); ``OUTPUT_<i>`` when those
    would be empty, start with a digit or collide."""
    names = [re.sub(r"[^0-9A-Za-z]+", "_", o.name).strip("_").upper() for o in outputs]
    if len(set(names)) == len(names) and all(n and n[0].isalpha() and n != INPUT_NAME for n in names):
        return names
    return [f"OUTPUT_{i}" for i in range(len(outputs))]


def _per_image(
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


def _hint_classes(width: int, extra: int) -> str:
    return f" (the model seems to predict {width - extra} classes)" if width > extra else ""


def _check_layout(
    family: HeadFamily,
    shapes: list[tuple[int, ...]],
    num_classes: int,
    input_size: tuple[int, int],
    options: ImportOptions,
) -> dict[str, object]:
    """Check the per-image output shapes against the family's layout; return the spec fields it implies."""
    c = num_classes
    labels = f"{c} labels"
    strides = list(options.strides or DEFAULT_STRIDES)
    in_w, in_h = input_size
    if family is not HeadFamily.NANODET and len(shapes) != 1:
        raise ValueError(f"{family.value} models have one output, this one has {len(shapes)}: {shapes}")
    match family:
        case HeadFamily.YOLOV8:
            shape = shapes[0]
            if len(shape) != 2 or 4 + c not in shape:
                hint = ""
                if len(shape) == 2:
                    channels = min(shape)
                    hint = _hint_classes(channels, 4)
                    if 5 + c in shape:
                        hint = " (it fits 5 + C: a yolov5 or yolox export?)"
                raise ValueError(
                    f"yolov8 output per image must be (4 + C, N) or (N, 4 + C) with C = {labels}, "
                    f"got {shape}{hint}"
                )
            return {}
        case HeadFamily.YOLOV5 | HeadFamily.YOLOX:
            shape = shapes[0]
            if len(shape) != 2 or shape[1] != 5 + c:
                hint = ""
                if len(shape) == 2:
                    hint = _hint_classes(shape[1], 5)
                    if shape[0] == 5 + c:
                        hint = " (channels first: transpose the export to (N, 5 + C))"
                    elif 4 + c in shape:
                        hint = " (it fits 4 + C: a yolov8 export?)"
                raise ValueError(
                    f"{family.value} output per image must be (N, 5 + C) with C = {labels}, got {shape}{hint}"
                )
            if family is HeadFamily.YOLOX and not options.decoded:
                cells = sum((in_w // s) * (in_h // s) for s in strides)
                if cells != shape[0]:
                    raise ValueError(
                        f"yolox output has {shape[0]} anchors but strides {strides} give {cells} for "
                        f"{in_w}x{in_h}: pass --decoded if the export decodes boxes, or the right --strides"
                    )
                return {"strides": strides}
            return {"decoded": True} if family is HeadFamily.YOLOX else {}
        case HeadFamily.NANODET:
            level_cells = [math.ceil(in_w / s) * math.ceil(in_h / s) for s in strides]
            if any(len(s) != 2 for s in shapes):
                raise ValueError(f"nanodet outputs per image must be 2-D, got {shapes}")
            if len(shapes) == 1:
                (anchors, width) = shapes[0]
                bins, rest = divmod(width - c, 4)
                if rest or bins < 2:
                    raise ValueError(
                        f"nanodet output width {width} is not C + 4 * (reg_max + 1) with C = {labels}"
                    )
                if anchors != sum(level_cells):
                    raise ValueError(
                        f"nanodet output has {anchors} anchors but strides {strides} give {sum(level_cells)} "
                        f"for {in_w}x{in_h}: pass the right --strides"
                    )
                return {"strides": strides, "reg_max": bins - 1}
            if len(shapes) != 2 * len(strides):
                raise ValueError(
                    f"nanodet models have 1 output or 2 per stride ({strides}), this one has {len(shapes)}"
                )
            reg_widths = {s[1] for s in shapes[1::2]}
            for level, (cls, reg) in enumerate(zip(shapes[0::2], shapes[1::2], strict=True)):
                if cls[1] != c or cls[0] != level_cells[level] or reg[0] != level_cells[level]:
                    raise ValueError(
                        f"nanodet level {level} (stride {strides[level]}): expected class output "
                        f"({level_cells[level]}, {c}) and box output ({level_cells[level]}, 4 * bins), got {cls} and {reg}"
                    )
            if len(reg_widths) != 1 or next(iter(reg_widths)) % 4 or next(iter(reg_widths)) < 8:
                raise ValueError(f"nanodet box outputs must all be 4 * (reg_max + 1) wide, got {reg_widths}")
            return {"strides": strides, "reg_max": next(iter(reg_widths)) // 4 - 1}
        case HeadFamily.YOLO_GRID:
            if options.anchors is None or len(options.anchors) != 1:
                raise ValueError(
                    "yolo-grid needs --anchors with exactly one level, e.g. [[[10, 13], [16, 30]]]"
                )
            shape, boxes = shapes[0], len(options.anchors[0])
            fits = (len(shape) == 4 and shape[2:] == (boxes, 5 + c)) or (
                len(shape) == 3 and shape[2] == boxes * (5 + c)
            )
            if not fits:
                raise ValueError(
                    f"yolo-grid output per image must be (S, S, B, 5 + C) or (S, S, B * (5 + C)) with "
                    f"B = {boxes} anchors and C = {labels}, got {shape}"
                )
            return {"anchors": options.anchors}
    raise ValueError(f"no layout check for family {family.value}")  # pragma: no cover


# --- which layout: families told apart by the outputs ----------------------------------------------


@dataclass(frozen=True)
class Layout:
    """How the graph's outputs are read."""

    family: HeadFamily
    order: tuple[int, ...]
    """Output indices in the order the family's decoder takes them (``spec.output_names``)."""
    fields: dict[str, object]
    """Spec fields the layout implies (strides, reg_max, boxes_normalised, ...)."""
    reason: str
    """Which layout and why, for the person importing."""
    warnings: tuple[str, ...] = ()


_ROLE_NAMES = {
    "count": re.compile(r"num|count|valid", re.IGNORECASE),
    "boxes": re.compile(r"box|bbox|coord", re.IGNORECASE),
    "scores": re.compile(r"score|conf|prob|logit", re.IGNORECASE),
    "classes": re.compile(r"class|label|cls|idx|index", re.IGNORECASE),
}


def _describe(outputs: Sequence[TensorInfo], shapes: Sequence[tuple[int, ...]]) -> str:
    return ", ".join(f"{o.name} {s}" for o, s in zip(outputs, shapes, strict=True))


def _guess_family(
    outputs: Sequence[TensorInfo], shapes: Sequence[tuple[int, ...]], probed: Sequence[np.ndarray], c: int
) -> tuple[HeadFamily, str]:
    """The family the outputs' shapes (and, where shapes allow two, the trial run's values) point to."""
    seen = _describe(outputs, shapes)
    flags = "pass --family (nanodet, yolo-grid, yolov5, yolox, yolov8, end2end, detr or nms-in-graph)"
    box_like = [i for i, s in enumerate(shapes) if len(s) == 2 and s[1] == 4]
    flat = [i for i, s in enumerate(shapes) if len(s) == 1 or (len(s) == 2 and s[1] == 1)]
    if len(shapes) in (3, 4) and len(box_like) == 1 and len(flat) == len(shapes) - 1:
        count = "a count, " if len(shapes) == 4 else ""
        return HeadFamily.NMS_IN_GRAPH, (
            f"nms-in-graph: {len(shapes)} outputs ({seen}) are {count}boxes (K, 4) and two (K,) vectors: "
            "final detections from the graph (an EfficientNMS-style NMS, or a DETR's top-k as D-FINE exports it)"
        )
    if len(shapes) == 2 and all(len(s) == 2 for s in shapes) and len(box_like) >= 1:
        other = shapes[1 - box_like[0]]
        if other[0] == shapes[box_like[0]][0] and other[1] in (c, c + 1):
            extra = " plus a no-object column" if other[1] == c + 1 else ""
            largest = float(np.abs(probed[box_like[0]]).max()) if probed[box_like[0]].size else 0.0
            if largest > 1.0:
                raise ValueError(
                    f"2 outputs ({seen}) look like boxes and per-class scores, but the boxes reach {largest:.4g} "
                    "on the trial image: pixels, not the fractions a DETR gives. A YOLO graph split into boxes "
                    "and scores before NMS is not a supported layout: export it with its single output (or "
                    "with NMS in the graph); pass --family detr if it is a DETR all the same"
                )
            return HeadFamily.DETR, (
                f"detr: 2 outputs ({seen}) are boxes (Q, 4) and scores (Q, C = {c}{extra}) per query"
            )
    if len(shapes) != 1 or len(shapes[0]) != 2:
        raise ValueError(f"cannot tell the head layout from the outputs ({seen}): {flags}")
    rows, width = shapes[0]
    if width == 6 and c > 2:
        return HeadFamily.END2END, (
            f"end2end: one output ({seen}) of rows of 6 (box, score, class) with C = {c} classes: final "
            "detections"
        )
    if rows == 4 + c and width != 4 + c:
        return HeadFamily.YOLOV8, f"yolov8: one output ({seen}), channels first (4 + C = {4 + c}, anchors)"
    if width == 4 + c and c > 2:
        boxes = probed[0][0][:, :4]
        if boxes.size and float(np.abs(boxes).max()) <= 1.0 and float(np.abs(boxes).max()) > 0:
            return HeadFamily.DETR, (
                f"detr: one output ({seen}) of (queries, 4 + C = {4 + c}) whose boxes on the trial image "
                "all lie within [0, 1] (fractions of the input, as DETR models give them)"
            )
        if boxes.size and float(np.abs(boxes).max()) > 1.0:
            return HeadFamily.YOLOV8, (
                f"yolov8: one output ({seen}) of (anchors, 4 + C = {4 + c}) whose boxes on the trial image "
                f"reach {float(np.abs(boxes).max()):.4g} (input pixels)"
            )
        raise ValueError(
            f"one output ({seen}) of (N, 4 + C) fits yolov8 (boxes in pixels) and detr (boxes as fractions) "
            "and the trial image gave no boxes to tell: pass --family yolov8 or --family detr"
        )
    if width == 5 + c and c > 1:
        raise ValueError(
            f"one output ({seen}) of (N, 5 + C) fits yolov5 and yolox: pass --family yolov5 or "
            "--family yolox (with --decoded when the export decodes boxes to pixels)"
        )
    fits = [
        name
        for name, ok in (
            ("end2end (rows of 6)", width == 6),
            ("yolov8 (4 + C)", 4 + c in (rows, width)),
            ("yolov5 / yolox (5 + C)", width == 5 + c),
            ("detr (4 + C)", width == 4 + c),
        )
        if ok
    ]
    if len(fits) > 1:
        raise ValueError(f"one output ({seen}) with C = {c} fits {', '.join(fits)}: pass --family")
    raise ValueError(f"cannot tell the head layout from the outputs ({seen}) with C = {c} classes: {flags}")


def _by_names(outputs: Sequence[TensorInfo], names: Sequence[str], roles: Sequence[str]) -> tuple[int, ...]:
    """``--outputs``: the ONNX names, in the family's order."""
    known = [o.name for o in outputs]
    if len(names) != len(roles) or sorted(names) != sorted(known):
        raise ValueError(
            f"--outputs must name each of the outputs {known} once, in the order {', '.join(roles)}; "
            f"got {list(names)}"
        )
    return tuple(known.index(n) for n in names)


def _boxes_scale(
    boxes: np.ndarray, options: ImportOptions, what: str
) -> tuple[dict[str, object], str, tuple[str, ...]]:
    """``boxes_normalised`` from ``--boxes`` or the trial run's box values (warning when it cannot tell)."""
    if options.boxes is not None:
        if options.boxes not in ("pixels", "normalised"):
            raise ValueError(f"--boxes must be pixels or normalised, got {options.boxes!r}")
        normalised = options.boxes == "normalised"
        why = "boxes as fractions of the input (--boxes)" if normalised else "boxes in input pixels (--boxes)"
        return {"boxes_normalised": normalised}, why, ()
    largest = float(np.abs(boxes).max()) if boxes.size else 0.0
    if largest > 1.0:
        return {"boxes_normalised": False}, f"boxes in input pixels (they reach {largest:.4g})", ()
    if largest > 0.0:
        raise ValueError(
            f"{what}: every box value on the trial image lies within [0, 1]: pass --boxes normalised if "
            "the boxes are fractions of the input size (with --box-format cxcywh if they are cx cy w h, as "
            "in RT-DETR's rows of 6), --boxes pixels if they are pixels"
        )
    return (
        {"boxes_normalised": False},
        "boxes in input pixels (assumed)",
        (
            f"{what}: the trial image gave no boxes; boxes are taken as input pixels (--boxes normalised if not)",
        ),
    )


def _end2end_layout(
    outputs: Sequence[TensorInfo],
    shapes: Sequence[tuple[int, ...]],
    probed: Sequence[np.ndarray],
    c: int,
    options: ImportOptions,
) -> Layout:
    seen = _describe(outputs, shapes)
    if len(shapes) != 1 or len(shapes[0]) != 2 or shapes[0][1] != 6:
        raise ValueError(f"end2end models have one output (K, 6) per image (box, score, class), got {seen}")
    box_format = options.box_format or "xyxy"
    if box_format not in ("xyxy", "cxcywh"):
        raise ValueError(f"--box-format must be xyxy or cxcywh, got {box_format!r}")
    rows = probed[0][0]
    classes = rows[:, 5]
    if classes.size and (np.any(np.abs(classes - np.round(classes)) > 1e-3) or classes.max() >= c):
        raise ValueError(
            f"end2end output {seen}: column 6 should hold class ids 0..{c - 1}, the trial image gave "
            f"{classes.min():.4g}..{classes.max():.4g}: not an end2end layout, or the labels are wrong"
        )
    fields, boxes, warnings = _boxes_scale(rows[:, :4], options, "end2end")
    fields["box_format"] = box_format
    reason = f"rows (K, 6) = {box_format} box, score, class; {boxes}; no NMS"
    return Layout(HeadFamily.END2END, (0,), fields, reason, warnings)


def _detr_layout(
    outputs: Sequence[TensorInfo],
    shapes: Sequence[tuple[int, ...]],
    probed: Sequence[np.ndarray],
    c: int,
    options: ImportOptions,
) -> Layout:
    seen = _describe(outputs, shapes)
    if any(len(s) != 2 for s in shapes) or len(shapes) not in (1, 2):
        raise ValueError(f"detr models have 1 output (Q, 4 + C) or 2 (Q, 4) and (Q, C), got {seen}")
    if len(shapes) == 1:
        order: tuple[int, ...] = (0,)
        if shapes[0][1] not in (4 + c, 5 + c):
            raise ValueError(
                f"detr output per image must be (Q, 4 + C) or (Q, 5 + C) with C = {c} labels, got {seen}"
                + _hint_classes(shapes[0][1], 4)
            )
        scores = probed[0][0][:, 4:]
        width = shapes[0][1] - 4
    else:
        if options.outputs:
            order = _by_names(outputs, options.outputs, ("boxes", "scores"))
        else:
            boxes_first = [i for i in (0, 1) if shapes[i][1] == 4]
            if len(boxes_first) == 2:  # C = 4: names tell
                boxes_first = [i for i in (0, 1) if _ROLE_NAMES["boxes"].search(outputs[i].name)]
            if len(boxes_first) != 1:
                raise ValueError(
                    f"cannot tell the boxes output from the scores output ({seen}): pass --outputs BOXES,SCORES "
                    "(their ONNX names)"
                )
            order = (boxes_first[0], 1 - boxes_first[0])
        boxes_shape, scores_shape = shapes[order[0]], shapes[order[1]]
        if boxes_shape[1] != 4 or scores_shape[1] not in (c, c + 1) or boxes_shape[0] != scores_shape[0]:
            raise ValueError(
                f"detr outputs must be boxes (Q, 4) and scores (Q, C) or (Q, C + 1) with C = {c} labels, got "
                f"{seen}" + _hint_classes(scores_shape[1], 0)
            )
        scores = probed[order[1]][0]
        width = scores_shape[1]
    no_object = " (the last column, no-object, is dropped)" if width == c + 1 else ""
    boxes = probed[order[0]][0][:, :4]
    largest = float(np.abs(boxes).max()) if boxes.size else 0.0
    warnings: tuple[str, ...] = ()
    if largest > 1.0:
        warnings = (
            f"detr boxes are read as cx cy w h fractions of the input, but the trial image's reach "
            f"{largest:.4g}: check the export (pixels would need another family)",
        )
    if options.score_activation is not None:
        if options.score_activation not in ("none", "sigmoid", "softmax"):
            raise ValueError(f"--scores must be none, sigmoid or softmax, got {options.score_activation!r}")
        activation, why = options.score_activation, "(--scores)"
    elif scores.size and (scores.min() < -1e-3 or scores.max() > 1 + 1e-3):
        activation = "softmax" if width == c + 1 else "sigmoid"
        why = (
            f"(the trial image's scores range {scores.min():.3g}..{scores.max():.3g}: logits; "
            f"{'C + 1 columns: softmax' if width == c + 1 else 'C columns: sigmoid per class'})"
        )
    else:
        activation, why = "none", "(the trial image's scores lie within [0, 1]: probabilities)"
    reason = (
        f"boxes cx cy w h as fractions of the input, scores with activation {activation} {why}{no_object}; "
        "the best (query, class) pairs, no NMS"
    )
    return Layout(HeadFamily.DETR, order, {"score_activation": activation}, reason, warnings)


def _nms_in_graph_layout(
    outputs: Sequence[TensorInfo],
    shapes: Sequence[tuple[int, ...]],
    probed: Sequence[np.ndarray],
    options: ImportOptions,
) -> Layout:
    seen = _describe(outputs, shapes)
    roles = ("count", "boxes", "scores", "classes")[4 - len(shapes) :] if len(shapes) in (3, 4) else ()
    if not roles:
        raise ValueError(
            f"nms-in-graph models have 4 outputs (count, boxes, scores, classes) or 3, got {seen}"
        )
    if options.outputs:
        order = _by_names(outputs, options.outputs, roles)
    else:
        found: dict[str, int] = {}
        left = set(range(len(shapes)))
        for i in sorted(left):
            if len(shapes[i]) == 2 and shapes[i][1] == 4:
                found.setdefault("boxes", i)
        left -= set(found.values())
        if "count" in roles:
            small = [i for i in left if int(np.prod(shapes[i])) == 1]
            if len(small) > 1:
                small = [i for i in small if outputs[i].dtype in INTEGER_OUTPUTS] or small
            if len(small) == 1:
                found["count"] = small[0]
                left -= {small[0]}
        integer = [i for i in left if outputs[i].dtype in INTEGER_OUTPUTS]
        if len(integer) == 1 and len(left) == 2:
            found["classes"] = integer[0]
            found["scores"] = next(iter(left - {integer[0]}))
        elif len(left) == 2:
            for role in ("scores", "classes"):
                named = [i for i in left if _ROLE_NAMES[role].search(outputs[i].name)]
                if len(named) == 1:
                    found.setdefault(role, named[0])
        if sorted(found) != sorted(roles) or len(set(found.values())) != len(roles):
            raise ValueError(
                f"cannot tell the outputs' roles ({seen}; found {found or 'none'}): pass --outputs "
                f"{','.join(r.upper() for r in roles)} (their ONNX names, in that order)"
            )
        order = tuple(found[r] for r in roles)
    shaped = dict(zip(roles, (shapes[i] for i in order), strict=True))
    k = shaped["boxes"][0] if len(shaped["boxes"]) == 2 else -1
    if (
        shaped["boxes"] != (k, 4)
        or any(shaped[r] not in ((k,), (k, 1)) for r in ("scores", "classes"))
        or ("count" in shaped and int(np.prod(shaped["count"])) != 1)
    ):
        raise ValueError(
            f"nms-in-graph outputs must be {'count (1,), ' if 'count' in roles else ''}boxes (K, 4), scores (K,) "
            f"and classes (K,); read as {shaped}"
        )
    for role, index in zip(roles, order, strict=True):
        info = outputs[index]
        allowed = FLOAT_OUTPUTS if role in ("boxes", "scores") else FLOAT_OUTPUTS | set(INTEGER_OUTPUTS)
        if info.dtype not in allowed:
            raise ValueError(
                f"nms-in-graph {role} output {info.name!r} is {info.dtype}; expected one of {sorted(allowed)}"
            )
    fields, boxes, warnings = _boxes_scale(probed[order[roles.index("boxes")]][0], options, "nms-in-graph")
    which = ", ".join(f"{r} = {outputs[i].name}" for r, i in zip(roles, order, strict=True))
    reason = f"{which}; boxes x1 y1 x2 y2, {boxes}; final detections, no NMS after"
    return Layout(HeadFamily.NMS_IN_GRAPH, order, fields, reason, warnings)


def find_layout(
    signature: OnnxSignature,
    shapes: list[tuple[int, ...]],
    probed: Sequence[np.ndarray],
    input_size: tuple[int, int],
    options: ImportOptions,
) -> Layout:
    """How to read the outputs: the family (``options.family``, or told from the shapes), the order of the
    outputs for its decoder, the spec fields it implies, and why.

    Raises:
        ValueError: the outputs do not fit the family, or (no family given) fit several or none; the
            message names the flags that settle it.
    """
    outputs = signature.outputs
    c = len(options.labels)
    if options.family is None:
        family, why = _guess_family(outputs, shapes, probed, c)
        why = f"found {why}"
    else:
        family = _family(options.family)
        why = f"{family.value} (--family)"
    if family is not HeadFamily.NMS_IN_GRAPH:
        for info in outputs:
            if info.dtype not in FLOAT_OUTPUTS:
                raise ValueError(
                    f"output {info.name!r} is {info.dtype}; {family.value} outputs must be floating point"
                )
    if options.outputs is not None and family not in (HeadFamily.DETR, HeadFamily.NMS_IN_GRAPH):
        raise ValueError(f"--outputs is for detr and nms-in-graph only, not {family.value}")
    match family:
        case HeadFamily.END2END:
            layout = _end2end_layout(outputs, shapes, probed, c, options)
        case HeadFamily.DETR:
            layout = _detr_layout(outputs, shapes, probed, c, options)
        case HeadFamily.NMS_IN_GRAPH:
            layout = _nms_in_graph_layout(outputs, shapes, probed, options)
        case HeadFamily.CANDIDATES:
            raise ValueError("candidates is Fovea's own NanoDet layout, not an import family")
        case _:
            fields = _check_layout(family, shapes, c, input_size, options)
            layout = Layout(
                family, tuple(range(len(outputs))), fields, f"outputs {_describe(outputs, shapes)}"
            )
    return Layout(layout.family, layout.order, layout.fields, f"{why}: {layout.reason}", layout.warnings)


def _score_warnings(family: HeadFamily, probed: Sequence[np.ndarray], num_classes: int) -> list[str]:
    """Scores outside [0, 1] on the trial run mean the export lacks its sigmoid (a warning: zeros are
    not a real image)."""
    if family not in (HeadFamily.YOLOV8, HeadFamily.YOLOV5, HeadFamily.YOLOX):
        return []
    pred = probed[0][0]
    if family is HeadFamily.YOLOV8:
        pred = pred.T if pred.shape[0] == 4 + num_classes else pred
        scores = pred[:, 4:]
    else:
        scores = pred[:, 4:]
    if scores.size and (scores.min() < -1e-3 or scores.max() > 1 + 1e-3):
        return [
            f"scores on a trial image range {scores.min():.3g}..{scores.max():.3g}, outside [0, 1]: "
            f"{family.value} expects probabilities (sigmoid applied in the export)"
        ]
    return []


def _pbtxt_string(value: str) -> str:
    if any(ord(ch) < 32 for ch in value):
        raise ValueError(f"tensor name {value!r} contains control characters")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dims_text(dims: Iterable[Dim]) -> str:
    return "[ " + ", ".join(str(d if d is not None else -1) for d in dims) + " ]"


def render_config(
    name: str,
    family: HeadFamily,
    source_name: str,
    image: TensorInfo,
    input_size: tuple[int, int],
    outputs: Sequence[TensorInfo],
    triton_names: Sequence[str],
) -> str:
    """``config.pbtxt`` of an imported detector (see the module docstring for the batching choice)."""
    width, height = input_size
    fixed = image.shape[0]
    entries = [
        (
            f"  {{ name: {_pbtxt_string(t)} data_type: {INTEGER_OUTPUTS.get(o.dtype, 'TYPE_FP32')} "
            f"dims: {_dims_text(o.shape[1:])} }}",
            o.name,
        )
        for t, o in zip(triton_names, outputs, strict=True)
    ]
    output_lines = "\n".join(  # the comma between entries must come before each comment
        f"{entry}{',' if k < len(entries) - 1 else ''}  # ONNX {onnx_name!r}"
        for k, (entry, onnx_name) in enumerate(entries)
    )
    batching = (
        "# The ONNX batch dimension is dynamic: a gathered batch runs as one onnxruntime call."
        if fixed is None
        else f"# The ONNX batch dimension is fixed at {fixed}: a gathered batch runs in chunks of {fixed}."
    )
    return f"""# {name}: {family.value} detector imported by `fovea models import-onnx` from {source_name}; see MODEL_CARD.md.
# The python backend runs 1/{WEIGHTS_FILE} with onnxruntime (fovea.serving.onnx_detector; CUDA provider when
# available, else CPU); its tensor names equal these.
name: "{name}"
backend: "python"
max_batch_size: {MAX_BATCH_SIZE}

input [
  {{ name: "{INPUT_NAME}" data_type: TYPE_UINT8 dims: [ {height}, {width}, 3 ] }}  # RGB, letterboxed; normalised in the graph (ONNX {image.name!r} after it)
]
output [
{output_lines}
]

{batching}
dynamic_batching {{
  max_queue_delay_microseconds: 0  # a lone request runs at once; queued ones are still gathered
}}

# Two instances: a lone request runs on one with every core (THREADS); under load each instance runs its
# batch on one thread (BATCH_SPLIT), two batches side by side (fovea.serving.base.SplitSession).
instance_group [
  {{ kind: KIND_CPU, count: 2 }}
]

parameters [
  {{ key: "WEIGHTS", value: {{ string_value: "{WEIGHTS_FILE}" }} }},
  # auto: onnxruntime's CUDA provider when installed (onnxruntime-gpu) and a GPU is there, else CPU
  {{ key: "DEVICE", value: {{ string_value: "auto" }} }},
  # onnxruntime intra-op threads; 0 = FOVEA_TORCH_THREADS, else one per core
  {{ key: "THREADS", value: {{ string_value: "0" }} }},
  # one-thread sessions a batch of 2+ runs on (off: on the THREADS session too)
  {{ key: "BATCH_SPLIT", value: {{ string_value: "1" }} }}
]
"""


def plan_import(
    name: str,
    source_name: str,
    signature: OnnxSignature,
    probed: Sequence[np.ndarray],
    options: ImportOptions,
) -> ImportPlan:
    """Validate the graph against the options and compute the spec and ``config.pbtxt`` (no I/O).

    Args:
        name: model name (the directory).
        source_name: the ONNX file's name, for comments.
        signature: from :func:`read_signature`.
        probed: outputs of a trial run (:func:`probe`), batch dimension first.
        options: what the user said about the model.

    Raises:
        ValueError: see the module docstring.
    """
    validate_model_name(name)
    input_size = _check_input(signature, options.input_size)
    image, size = split_inputs(signature)
    if not signature.outputs:
        raise ValueError("the model has no outputs")
    shapes = _per_image(signature.outputs, probed, image.shape[0] or 1)
    layout = find_layout(signature, shapes, probed, input_size, options)
    family = layout.family
    outputs = [signature.outputs[i] for i in layout.order]
    warnings = [*layout.warnings, *_score_warnings(family, probed, len(options.labels))]
    if options.decoded and family is not HeadFamily.YOLOX:
        warnings.append(f"--decoded is for yolox only; ignored for {family.value}")
    if options.anchors is not None and family is not HeadFamily.YOLO_GRID:
        warnings.append(f"--anchors is for yolo-grid only; ignored for {family.value}")
    if options.strides is not None and family not in (HeadFamily.NANODET, HeadFamily.YOLOX):
        warnings.append(f"--strides is for nanodet and yolox only; ignored for {family.value}")
    if family not in END_TO_END_FAMILIES:
        for flag, value in (("--boxes", options.boxes), ("--box-format", options.box_format)):
            if value is not None:
                warnings.append(f"{flag} is for end2end and nms-in-graph only; ignored for {family.value}")
        if options.score_activation is not None:
            warnings.append(f"--scores is for detr only; ignored for {family.value}")
    triton_names = _triton_output_names(outputs)
    try:
        spec = DetectorSpec.model_validate(
            {
                "name": name,
                "family": family,
                "input_size": input_size,
                "channel_order": options.channel_order,
                "scale": options.scale,
                "mean": options.mean,
                "std": options.std,
                "pad_value": options.pad_value,
                "letterbox": options.letterbox,
                "input_format": "uint8_nhwc",
                "labels": options.labels,
                "input_name": INPUT_NAME,
                "output_names": triton_names,
                **layout.fields,
            }
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"invalid detector spec: {problems}") from None
    config = render_config(name, family, source_name, image, input_size, outputs, triton_names)
    return ImportPlan(
        spec=spec,
        config_pbtxt=config,
        onnx_input=image.name,
        onnx_outputs=[o.name for o in outputs],
        fixed_batch=image.shape[0],
        warnings=warnings,
        layout=layout.reason
        + ("" if size is None else f"; input {size.name!r} is bound to the input size {list(input_size)}"),
        constant_inputs={} if size is None else {size.name: size_constant(size, input_size)},
    )


def render_model_card(plan: ImportPlan, source: Path, sha256: str, signature: OnnxSignature) -> str:
    spec = plan.spec
    width, height = spec.input_size
    infos = {o.name: o for o in signature.outputs}
    raw = (
        spec.output_names
        if spec.decoded_from is None
        else [f"raw {i}" for i in range(len(plan.onnx_outputs))]
    )
    outputs = "\n".join(
        f"- `{t}` (ONNX `{n}`, {infos[n].dtype}): `{[d if d is not None else 'N' for d in infos[n].shape]}`"
        for t, n in zip(raw, plan.onnx_outputs, strict=True)
    )
    if spec.decoded_from is not None:
        outputs += (
            f"\n\nThe raw outputs are decoded inside `1/{WEIGHTS_FILE}` as `{spec.decoded_from.value}` and only the "
            f"best {spec.max_candidates} (anchor, class) candidates leave it: `BOXES` `[N, K, 4]` xyxy in input "
            "pixels, `SCORES` `[N, K]`, `CLASSES` `[N, K]` int32 (`fovea.convert.candidates_head`; "
            "`--raw-outputs` keeps the raw outputs instead)."
        )
    batch = f"fixed at {plan.fixed_batch}" if plan.fixed_batch else "dynamic"
    return f"""# {spec.name}

{spec.family.value} detector with {spec.num_classes} classes, imported by `fovea models import-onnx`, served by
the python backend with onnxruntime (`fovea.serving.onnx_detector`).

| | |
|---|---|
| source file | `{source.name}` ({source.stat().st_size} bytes) |
| checksum | sha256 `{sha256}` (the source file; `1/{WEIGHTS_FILE}` wraps it) |
| producer | {signature.producer or "not recorded in the file"} |
| licence | not recorded: whoever trained and exported the weights decides; note it here |
| batch | ONNX batch dimension {batch}; Triton gathers up to {MAX_BATCH_SIZE} requests |

## Input
`{INPUT_NAME}`: `[N, {height}, {width}, 3]` uint8 RGB. Inside `1/{WEIGHTS_FILE}` (the source graph behind a
prefix): cast to float, channels to **{spec.channel_order}**, `pixel * {spec.scale:.6g}`, then `(x - mean) / std`
with mean `{list(spec.mean)}`, std `{list(spec.std)}`, NHWC -> NCHW into the source's input `{plan.onnx_input}`
(`[N, 3, {height}, {width}]`).
The detection service {"letterboxes (keeps the aspect ratio, pads with " + f"{spec.pad_value:g})" if spec.letterbox else "stretches the image to the input size"} - see `fovea.json`.

## Outputs
{outputs}

Decoded as `{(spec.decoded_from or spec.family).value}` (see `fovea.common.detectors.heads`); labels in `fovea.json`.
Layout: {plan.layout}.
"""


# --- writing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    directory: Path
    spec: DetectorSpec
    warnings: list[str]
    layout: str = ""
    """Which layout the outputs were read as, and why (:func:`find_layout`)."""


def wrap_for_service(model: onnx.ModelProto, plan: ImportPlan) -> onnx.ModelProto:
    """The user's graph as served: :func:`with_uint8_input` with the plan's preprocessing, outputs renamed
    to the Triton names."""
    spec = plan.spec
    return with_uint8_input(
        model,
        channel_order=spec.channel_order,
        scale=spec.scale,
        mean=spec.mean,
        std=spec.std,
        input_size=spec.input_size,
        input_name=spec.input_name,
        output_names=dict(zip(plan.onnx_outputs, spec.output_names, strict=True)),
        keep_integer_outputs=True,  # only nms-in-graph has integer outputs (count, class ids)
        constant_inputs=plan.constant_inputs,
    )


CHECK_MIN_SCORE = 0.001
"""The in-graph decoding is compared with the service's decoder over every candidate above this score."""


def _run(model: onnx.ModelProto, feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in session.run(None, dict(feed))]


def decode_in_graph(
    served: onnx.ModelProto,
    plan: ImportPlan,
    signature: OnnxSignature,
    probed: Sequence[np.ndarray],
    source_name: str,
) -> tuple[onnx.ModelProto, ImportPlan]:
    """``served`` with the decoding and top-k of :mod:`fovea.convert.candidates_head` appended, and the plan
    for it (family ``candidates``, outputs ``BOXES`` / ``SCORES`` / ``CLASSES``), once the appended graph
    agreed with the service's decoder on two trial images (zeros and seeded noise): the same candidates
    above :data:`CHECK_MIN_SCORE`, scores within 1e-4, boxes within 0.01 px. Otherwise ``served`` and
    ``plan`` as they were, with a warning saying why (the service decodes the raw outputs then)."""
    spec = plan.spec
    names = [o.name for o in signature.outputs]
    shapes = [tuple(int(d) for d in probed[names.index(n)].shape[1:]) for n in plan.onnx_outputs]
    width, height = spec.input_size
    rng = np.random.default_rng(0)
    images = [
        np.zeros((1, height, width, 3), np.uint8),
        rng.integers(0, 256, (1, height, width, 3), np.uint8),
    ]
    try:
        merged = append_candidates(served, spec, shapes, spec.max_candidates)
        worst = (0.0, 0.0)
        for image in images:
            feed = {spec.input_name: image}
            raw = _run(served, feed)
            outputs = {o.name: a for o, a in zip(served.graph.output, raw, strict=True)}
            candidates = _run(merged, feed)
            counts = candidate_errors(
                [outputs[n] for n in spec.output_names], candidates, spec, CHECK_MIN_SCORE
            )
            if counts[0] != counts[1] or counts[2] > 1e-4 or counts[3] > 0.01:
                raise ValueError(
                    f"it disagrees with the {spec.family.value} decoder ({counts[0]} vs {counts[1]} candidates, "
                    f"scores within {counts[2]:.3g}, boxes within {counts[3]:.3g} px)"
                )
            worst = (max(worst[0], counts[2]), max(worst[1], counts[3]))
    except (
        Exception
    ) as exc:  # the exporter and onnxruntime raise their own types: any failure keeps raw outputs
        reason = f"the box decoding stays in the detection service: appending it to the graph failed ({exc})"
        return served, replace(plan, warnings=[*plan.warnings, reason])
    k = int(candidates[1].shape[1])
    new_spec = candidates_spec(spec)
    image_info, _ = split_inputs(signature)
    infos = [
        TensorInfo("BOXES", "tensor(float)", (None, k, 4)),
        TensorInfo("SCORES", "tensor(float)", (None, k)),
        TensorInfo("CLASSES", "tensor(int32)", (None, k)),
    ]
    config = render_config(
        spec.name, spec.family, source_name, image_info, spec.input_size, infos, list(OUTPUT_NAMES)
    )
    layout = (
        f"{plan.layout}; decoded in the graph: the best {k} (anchor, class) candidates leave Triton instead "
        f"of the raw outputs (checked against the service's {spec.family.value} decoder on two trial images: "
        f"scores within {worst[0]:.1g}, boxes within {worst[1]:.1g} px)"
    )
    return merged, replace(plan, spec=new_spec, config_pbtxt=config, layout=layout)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _labels_for(
    options: ImportOptions, signature: OnnxSignature, source: Path
) -> tuple[ImportOptions, list[str]]:
    """``options`` with labels: the given ones (a warning when the file's own names differ), else the
    file's ``names`` metadata (:func:`labels_from_metadata`)."""
    embedded = labels_from_metadata(signature.metadata)
    if options.labels:
        if embedded is not None and embedded != options.labels:
            return options, [
                f"the labels given ({len(options.labels)}) differ from the {len(embedded)} names in "
                f"{source.name}'s metadata (first: {embedded[:3]}): check they are the model's classes, in order"
            ]
        return options, []
    if embedded is None:
        raise ValueError(f"{source.name} has no class names in its metadata: give --labels")
    return replace(options, labels=embedded), []


def import_onnx(
    source: Path,
    repository: Path,
    name: str,
    options: ImportOptions,
    *,
    force: bool = False,
    other_repositories: Sequence[Path] = (),
) -> ImportResult:
    """Validate ``source`` and write it as model ``name`` into ``repository`` (created if missing).

    The model directory is assembled beside its final place and moved in at the end, so a refused or
    failed import leaves the repository as it was.

    Args:
        source: the exported ``.onnx`` file.
        repository: the Triton model repository to add it to.
        name: model (directory) name.
        options: family, labels, preprocessing (see :class:`ImportOptions`).
        force: replace a model of that name in ``repository``.
        other_repositories: repositories Triton serves beside ``repository``; their names are taken.

    Raises:
        ValueError: see the module docstring.
    """
    validate_model_name(name)
    if not source.is_file():
        raise ValueError(f"{source} is not a file")
    repository = repository.expanduser().resolve()
    for other in other_repositories:
        other = other.expanduser().resolve()
        if other != repository and (other / name).exists():
            raise ValueError(f"model name {name!r} is taken by {other / name}: choose another --name")
    target = repository / name
    if target.exists() and not force:
        raise ValueError(f"{target} already exists: pass --force to replace it")
    repository.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.import-", dir=repository))
    try:
        weights = staging / "1" / WEIGHTS_FILE
        weights.parent.mkdir()
        signature = read_signature(source)
        options, label_warnings = _labels_for(options, signature, source)
        input_size = _check_input(signature, options.input_size)
        probed = probe(source, signature, input_size)
        plan = plan_import(name, source.name, signature, probed, options)
        served = wrap_for_service(onnx.load(str(source)), plan)
        if plan.spec.family in GRID_FAMILIES and not options.raw_outputs:
            served, plan = decode_in_graph(served, plan, signature, probed, source.name)
        onnx.save(served, str(weights))
        (staging / "config.pbtxt").write_text(plan.config_pbtxt, encoding="utf-8")
        (staging / SPEC_FILENAME).write_text(plan.spec.model_dump_json(indent=2) + "\n", encoding="utf-8")
        card = render_model_card(plan, source, _sha256(source), signature)
        (staging / "MODEL_CARD.md").write_text(card, encoding="utf-8")
        (weights.parent / "model.py").write_text(MODEL_PY, encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return ImportResult(target, plan.spec, [*label_warnings, *plan.warnings], plan.layout)


# --- before asking Triton to load it -------------------------------------------------------------


def model_config_json(config_text: str) -> str:
    """``config.pbtxt`` text -> the JSON Triton hands a python model (parsed with Triton's own proto)."""
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    try:
        config = text_format.Parse(config_text, model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise ValueError(f"config.pbtxt does not parse: {exc}") from None
    return json_format.MessageToJson(config, preserving_proto_field_name=True)


def is_imported(model_dir: Path) -> bool:
    """Whether ``model_dir`` was written by :func:`import_onnx` (its ``model.py`` serves
    :mod:`fovea.serving.onnx_detector`)."""
    model_py = model_dir / "1" / "model.py"
    return model_py.is_file() and "fovea.serving.onnx_detector" in model_py.read_text(encoding="utf-8")


def preflight(model_dir: Path) -> str:
    """Do here what Triton's ``initialize`` will do for an imported model, and one trial batch on CPU, so
    a broken model is refused before Triton tries it (a failed load keeps Triton not-ready until restart).

    Returns:
        a one-line description of the served model.

    Raises:
        ValueError: the config, the ONNX file or the trial run fails.
    """
    from fovea.serving.onnx_detector import load_served

    config = model_config_json((model_dir / "config.pbtxt").read_text("utf-8"))
    try:
        contract, served = load_served(model_dir / "1", config, "CPU", 0)
        (image,) = contract.inputs
        (result,) = served.execute([{image.name: np.zeros((1, *image.dims), np.uint8)}])
    except FileNotFoundError:
        raise ValueError(f"{model_dir / '1'} lacks its weights: import the model again") from None
    except Exception as exc:  # onnxruntime's own exception types
        raise ValueError(f"{model_dir.name} does not run: {exc}") from None
    if isinstance(result, Exception):
        raise ValueError(f"{model_dir.name} does not run: {result}")
    return served.describe()
