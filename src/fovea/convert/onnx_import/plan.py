"""The plan: the graph checked against the options, and the spec and ``config.pbtxt`` it gives (no I/O)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import ValidationError

from fovea.contracts.detector import DetectorSpec, HeadFamily
from fovea.convert.onnx_import.layout import find_layout, score_warnings
from fovea.convert.onnx_import.options import ImportOptions, validate_model_name
from fovea.convert.onnx_import.render import INPUT_NAME, render_config
from fovea.convert.onnx_import.signature import (
    OnnxSignature,
    TensorInfo,
    check_input,
    per_image,
    size_constant,
    split_inputs,
)

END_TO_END_FAMILIES = (HeadFamily.END2END, HeadFamily.DETR, HeadFamily.NMS_IN_GRAPH)


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


def _triton_output_names(outputs: Sequence[TensorInfo]) -> list[str]:
    """UPPER_SNAKE names from the ONNX names (``output0`` -> ``OUTPUT0``); ``OUTPUT_<i>`` when those
    would be empty, start with a digit or collide."""
    names = [re.sub(r"[^0-9A-Za-z]+", "_", o.name).strip("_").upper() for o in outputs]
    if len(set(names)) == len(names) and all(n and n[0].isalpha() and n != INPUT_NAME for n in names):
        return names
    return [f"OUTPUT_{i}" for i in range(len(outputs))]


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
        ValueError: see the package docstring (:mod:`fovea.convert.onnx_import`).
    """
    validate_model_name(name)
    input_size = check_input(signature, options.input_size)
    image, size = split_inputs(signature)
    if not signature.outputs:
        raise ValueError("the model has no outputs")
    shapes = per_image(signature.outputs, probed, image.shape[0] or 1)
    layout = find_layout(signature, shapes, probed, input_size, options)
    family = layout.family
    outputs = [signature.outputs[i] for i in layout.order]
    warnings = [*layout.warnings, *score_warnings(family, probed, len(options.labels))]
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
