"""The text files of an imported model's directory: ``config.pbtxt``, ``MODEL_CARD.md``, ``1/model.py``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fovea.contracts.detector import HeadFamily
from fovea.convert.onnx_import.signature import INTEGER_OUTPUTS, Dim, TensorInfo

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
