"""``MODEL_CARD.md`` of an imported model: what was imported, how it is read, how it was checked."""

from __future__ import annotations

from pathlib import Path

from fovea.convert.onnx_import.plan import ImportPlan
from fovea.convert.onnx_import.render import INPUT_NAME, MAX_BATCH_SIZE, WEIGHTS_FILE
from fovea.convert.onnx_import.signature import OnnxSignature


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
