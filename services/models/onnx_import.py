"""``fovea models import-onnx``: add a user's exported ONNX detector to a Triton model repository.

:func:`import_onnx` writes ``<repository>/<name>/``::

    config.pbtxt    Triton config: INPUT [H, W, 3] UINT8, one FP32 output per ONNX output, batching
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
  ``fovea.detection.core.heads``), e.g. YOLOv8 ``(4 + C, N)``: a mismatch names the class count the
  model seems to have;
- the resulting ``DetectorSpec`` validates (anchors for yolo-grid, strides for nanodet, ...).

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from pydantic import ValidationError

from fovea.detection.core.evaluate import parse_yaml_names
from fovea.detection.core.spec import SPEC_FILENAME, DetectorSpec, HeadFamily

__all__ = [
    "ImportOptions",
    "ImportPlan",
    "ImportResult",
    "OnnxSignature",
    "TensorInfo",
    "import_onnx",
    "is_imported",
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
    "validate_model_name",
]

INPUT_NAME = "INPUT"
WEIGHTS_FILE = "model.onnx"
MAX_BATCH_SIZE = 8
DEFAULT_STRIDES = (8, 16, 32)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FLOAT_INPUTS = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
FLOAT_OUTPUTS = {"tensor(float)", "tensor(float16)", "tensor(double)"}

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
    )


def probe(path: Path, signature: OnnxSignature, input_size: tuple[int, int]) -> list[np.ndarray]:
    """Run the model once on a zero image (batch 1, or the fixed batch); its outputs, float32, in order."""
    (image,) = signature.inputs
    batch = image.shape[0] or 1
    width, height = input_size
    dtype = FLOAT_INPUTS.get(image.dtype, np.float32)
    session = _session(path)
    try:
        outputs = session.run(None, {image.name: np.zeros((batch, 3, height, width), dtype)})  # type: ignore[attr-defined]
    except Exception as exc:
        raise ValueError(
            f"a trial run on a {width}x{height} zero image failed ({exc}): is the input size right?"
        ) from None
    return [np.asarray(o, dtype=np.float32) for o in outputs]


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
) -> onnx.ModelProto:
    """Put the detection service's input in front of a float ``[N, 3, H, W]`` graph (a new model).

    The new graph input ``input_name`` is uint8 ``[N, H, W, 3]`` RGB (what
    ``fovea.detection.core.preprocess.letterbox`` produces); in the graph it is cast to float32, reordered to
    ``channel_order``, normalised per channel as ``(x * scale - mean[c]) / std[c]`` (``mean``/``std`` in the
    model's channel order), transposed to NCHW and cast to the old input's float type. The batch dimension
    is the old input's (fixed or symbolic). Outputs named in ``output_names`` (ONNX name -> new name) are
    renamed; every output is float32 (float16/float64 outputs get a Cast; integer ones too unless
    ``keep_integer_outputs``). Node and tensor names of the prefix start with ``fovea_``.

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
    initialisers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initialisers]
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

    consts = [
        numpy_helper.from_array(np.asarray(mean, np.float32).reshape(1, 1, 1, 3), "fovea_mean"),
        numpy_helper.from_array(np.asarray(std, np.float32).reshape(1, 1, 1, 3), "fovea_std"),
    ]
    nodes = [helper.make_node("Cast", [input_name], ["fovea_float"], to=TensorProto.FLOAT, name="fovea_cast")]
    x = "fovea_float"
    if channel_order == "BGR":
        consts.append(numpy_helper.from_array(np.asarray([2, 1, 0], np.int64), "fovea_channel_order"))
        nodes.append(
            helper.make_node("Gather", [x, "fovea_channel_order"], ["fovea_bgr"], axis=3, name="fovea_bgr")
        )
        x = "fovea_bgr"
    if scale != 1.0:
        consts.append(numpy_helper.from_array(np.asarray([scale], np.float32), "fovea_scale"))
        nodes.append(helper.make_node("Mul", [x, "fovea_scale"], ["fovea_scaled"], name="fovea_scale"))
        x = "fovea_scaled"
    nodes += [
        helper.make_node("Sub", [x, "fovea_mean"], ["fovea_centred"], name="fovea_sub_mean"),
        helper.make_node("Div", ["fovea_centred", "fovea_std"], ["fovea_nhwc"], name="fovea_div_std"),
    ]
    nchw = old.name if old_type == TensorProto.FLOAT else "fovea_nchw"
    nodes.append(helper.make_node("Transpose", ["fovea_nhwc"], [nchw], perm=[0, 3, 1, 2], name="fovea_nchw"))
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
    keep = [i for i in graph.input if i.name != old.name]
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

    family: str
    labels: list[str]
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


@dataclass(frozen=True)
class ImportPlan:
    """Everything :func:`import_onnx` writes, computed without touching the repository."""

    spec: DetectorSpec
    config_pbtxt: str
    onnx_input: str
    onnx_outputs: list[str]
    fixed_batch: int | None
    warnings: list[str] = field(default_factory=list)


def _family(value: str) -> HeadFamily:
    try:
        return HeadFamily(value)
    except ValueError:
        known = ", ".join(f.value for f in HeadFamily)
        raise ValueError(f"unknown head family {value!r}; known: {known}") from None


def _check_input(signature: OnnxSignature, wanted: tuple[int, int] | None) -> tuple[int, int]:
    """The image input's ``(width, height)``; refuses anything but one ``[N, 3, H, W]`` float input."""
    if len(signature.inputs) != 1:
        names = [i.name for i in signature.inputs]
        raise ValueError(f"the model must have exactly one input (the image), it has {len(names)}: {names}")
    (image,) = signature.inputs
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
        if info.dtype not in FLOAT_OUTPUTS:
            raise ValueError(f"output {info.name!r} is {info.dtype}; detector outputs must be floating point")
        if array.ndim < 2 or array.shape[0] != batch:
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
        (f"  {{ name: {_pbtxt_string(t)} data_type: TYPE_FP32 dims: {_dims_text(o.shape[1:])} }}", o.name)
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

instance_group [
  {{ kind: KIND_CPU, count: 1 }}
]

parameters [
  {{ key: "WEIGHTS", value: {{ string_value: "{WEIGHTS_FILE}" }} }},
  # auto: onnxruntime's CUDA provider when installed (onnxruntime-gpu) and a GPU is there, else CPU
  {{ key: "DEVICE", value: {{ string_value: "auto" }} }},
  # onnxruntime intra-op threads; 0 = FOVEA_TORCH_THREADS, else one per core
  {{ key: "THREADS", value: {{ string_value: "0" }} }}
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
    family = _family(options.family)
    input_size = _check_input(signature, options.input_size)
    image = signature.inputs[0]
    if not signature.outputs:
        raise ValueError("the model has no outputs")
    shapes = _per_image(signature.outputs, probed, image.shape[0] or 1)
    implied = _check_layout(family, shapes, len(options.labels), input_size, options)
    warnings = _score_warnings(family, probed, len(options.labels))
    if options.decoded and family is not HeadFamily.YOLOX:
        warnings.append(f"--decoded is for yolox only; ignored for {family.value}")
    if options.anchors is not None and family is not HeadFamily.YOLO_GRID:
        warnings.append(f"--anchors is for yolo-grid only; ignored for {family.value}")
    if options.strides is not None and family not in (HeadFamily.NANODET, HeadFamily.YOLOX):
        warnings.append(f"--strides is for nanodet and yolox only; ignored for {family.value}")
    triton_names = _triton_output_names(signature.outputs)
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
                **implied,
            }
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"invalid detector spec: {problems}") from None
    config = render_config(name, family, source_name, image, input_size, signature.outputs, triton_names)
    return ImportPlan(
        spec=spec,
        config_pbtxt=config,
        onnx_input=image.name,
        onnx_outputs=[o.name for o in signature.outputs],
        fixed_batch=image.shape[0],
        warnings=warnings,
    )


def render_model_card(plan: ImportPlan, source: Path, sha256: str, signature: OnnxSignature) -> str:
    spec = plan.spec
    width, height = spec.input_size
    outputs = "\n".join(
        f"- `{t}` (ONNX `{o.name}`): `{[d if d is not None else 'N' for d in o.shape]}`"
        for t, o in zip(spec.output_names, signature.outputs, strict=True)
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

Decoded as `{spec.family.value}` (see `fovea.detection.core.heads`); labels in `fovea.json`.
"""


# --- writing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    directory: Path
    spec: DetectorSpec
    warnings: list[str]


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
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
        input_size = _check_input(signature, options.input_size)
        plan = plan_import(name, source.name, signature, probe(source, signature, input_size), options)
        onnx.save(wrap_for_service(onnx.load(str(source)), plan), str(weights))
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
    return ImportResult(target, plan.spec, plan.warnings)


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
