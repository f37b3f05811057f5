"""The text files of an imported model's directory: ``config.pbtxt``, ``MODEL_CARD.md``, ``1/model.py``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fovea.contracts.detector import HeadFamily
from fovea.convert.onnx_import.signature import INTEGER_OUTPUTS, Dim, OnnxSignature, TensorInfo

if TYPE_CHECKING:
    from fovea.convert.onnx_import.plan import ImportPlan

INPUT_NAME = "INPUT"
WEIGHTS_FILE = "model.onnx"
MAX_BATCH_SIZE = 8

MODEL_PY = """from pathlib import Path

from fovea.serving.onnx_detector import python_model

TritonPythonModel = python_model(Path(__file__).parent)
"""


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
    """``config.pbtxt`` of an imported detector (see the package docstring for the batching choice)."""
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
