"""What the user says about the model: the ``import-onnx`` options and the parsing of their values."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from fovea.contracts.detector import parse_yaml_names

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


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
    boxes_from: str = "--boxes"
    """Who said ``boxes`` (the import's summary names it): the user, or the import (a PaddleDetection
    export's ``scale_factor`` fed 1)."""
    box_format: str | None = None
    """end2end: ``xyxy`` (the default) or ``cxcywh``."""
    score_activation: str | None = None
    """detr: ``none``, ``sigmoid`` or ``softmax``; ``None``: judged from the trial run."""
    outputs: list[str] | None = None
    """ONNX output names in the family's order (detr: boxes, scores; nms-in-graph: [count,] boxes,
    scores, classes); ``None``: told apart by shape, type and name."""
