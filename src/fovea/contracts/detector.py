"""A detector's metadata: what its input expects and how to read its outputs.

Each detection model directory in the Triton model repository carries a ``fovea.json`` beside its
``config.pbtxt``; :func:`load_spec` reads it into a :class:`DetectorSpec`. Unknown keys are rejected
(``extra="forbid"``) so that a typo fails when the service starts, not at the first request.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["SPEC_FILENAME", "DetectorSpec", "HeadFamily", "load_spec"]

SPEC_FILENAME = "fovea.json"
MAX_CANDIDATES = 100_000  # upper bound of max_candidates, in fovea.json and per request


class HeadFamily(StrEnum):
    """Output layouts the decoders in ``heads.py`` understand."""

    NANODET = "nanodet"
    YOLO_GRID = "yolo-grid"
    YOLOV5 = "yolov5"
    YOLOX = "yolox"
    YOLOV8 = "yolov8"
    CANDIDATES = "candidates"
    END2END = "end2end"
    DETR = "detr"
    NMS_IN_GRAPH = "nms-in-graph"

    @property
    def end_to_end(self) -> bool:
        """Whether the outputs are final detections: no NMS after decoding (min score, class filter and
        max detections still apply)."""
        return self in (HeadFamily.END2END, HeadFamily.DETR, HeadFamily.NMS_IN_GRAPH)


class DetectorSpec(BaseModel):
    """Metadata of one detection model (``fovea.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Model name, the Triton model directory's name.")
    family: HeadFamily = Field(description="Output layout, picks the decoder in heads.DECODERS.")
    input_size: tuple[int, int] = Field(description="Network input (width, height) in pixels.")
    channel_order: Literal["RGB", "BGR"] = Field(
        default="RGB", description="Channel order the network expects."
    )
    scale: float = Field(
        default=1.0 / 255.0, gt=0, description="Pixel values (0-255) are multiplied by this."
    )
    mean: tuple[float, float, float] = Field(
        default=(0.0, 0.0, 0.0), description="Subtracted after scaling, per channel in channel_order."
    )
    std: tuple[float, float, float] = Field(
        default=(1.0, 1.0, 1.0), description="Divides after subtracting mean, per channel in channel_order."
    )
    pad_value: float = Field(
        default=114.0, ge=0, le=255, description="Letterbox fill, a 0-255 pixel value (before scaling)."
    )
    letterbox: bool = Field(
        default=True, description="Keep aspect ratio and pad (True) or stretch to input_size (False)."
    )
    input_format: Literal["uint8_nhwc", "float_nchw"] = Field(
        default="float_nchw",
        description="What the service sends: uint8_nhwc = the letterboxed RGB image [N, H, W, 3] as is "
        "(the graph casts, reorders and normalises); float_nchw = normalised float32 [N, 3, H, W].",
    )
    strides: list[int] = Field(default_factory=list, description="Feature-map strides, one per level.")
    anchors: list[list[tuple[float, float]]] | None = Field(
        default=None, description="Per level, (width, height) anchor sizes in input pixels."
    )
    reg_max: int | None = Field(
        default=None, ge=1, description="NanoDet: distance bins per side minus one (bins = reg_max + 1)."
    )
    center_offset: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="NanoDet: cell centre = (index + center_offset) * stride; NanoDet-Plus uses 0.",
    )
    decoded: bool = Field(
        default=False, description="YOLOX: output already holds boxes in pixels (decode_in_inference)."
    )
    box_format: Literal["xyxy", "cxcywh"] = Field(
        default="xyxy",
        description="end2end: the first 4 values of a row are x1 y1 x2 y2 (xyxy) or cx cy w h (cxcywh).",
    )
    boxes_normalised: bool = Field(
        default=False,
        description="end2end / nms-in-graph: boxes are fractions of the input size, not input pixels "
        "(detr boxes always are).",
    )
    score_activation: Literal["none", "sigmoid", "softmax"] = Field(
        default="none",
        description="detr: scores are probabilities (none) or logits (sigmoid per class, or softmax over "
        "the classes and a trailing no-object column).",
    )
    decoded_from: HeadFamily | None = Field(
        default=None,
        description="candidates: the family of the network's raw outputs when the served graph decodes "
        "them and keeps the best max_candidates (import-onnx appends that to grid detectors).",
    )
    max_candidates: int = Field(
        default=1000,
        ge=1,
        le=MAX_CANDIDATES,
        description="Candidates per image kept for NMS, the best by score; a request may ask for another cap.",
    )
    max_detections: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Detections per image kept after NMS when a request names none; None = the service's.",
    )
    labels: list[str] = Field(description="Class names, index = class id.")
    input_name: str = Field(min_length=1, description="Triton input tensor name.")
    output_names: list[str] = Field(min_length=1, description="Triton output tensor names, in order.")

    @field_validator("input_size")
    @classmethod
    def _positive_size(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] <= 0 or value[1] <= 0:
            raise ValueError(f"input_size must be positive (width, height), got {value}")
        return value

    @field_validator("mean", "std", mode="before")
    @classmethod
    def _three_values(cls, value: object) -> object:
        if isinstance(value, list | tuple) and len(value) != 3:
            raise ValueError(f"must have exactly 3 values (one per channel), got {len(value)}")
        return value

    @field_validator("std")
    @classmethod
    def _std_positive(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(value) <= 0:
            raise ValueError(f"std values must all be > 0, got {value}")
        return value

    @field_validator("strides")
    @classmethod
    def _strides_positive(cls, value: list[int]) -> list[int]:
        if any(s <= 0 for s in value):
            raise ValueError(f"strides must be positive, got {value}")
        return value

    @field_validator("anchors")
    @classmethod
    def _anchors_positive(
        cls, value: list[list[tuple[float, float]]] | None
    ) -> list[list[tuple[float, float]]] | None:
        if value is None:
            return value
        if not value or any(not level for level in value):
            raise ValueError("anchors, when given, must list at least one (width, height) per level")
        if any(w <= 0 or h <= 0 for level in value for w, h in level):
            raise ValueError(f"anchor sizes must be positive, got {value}")
        return value

    @field_validator("labels")
    @classmethod
    def _labels_named(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("labels must not be empty (one name per class)")
        if any(not label.strip() for label in value):
            raise ValueError("labels must not contain empty names")
        return value

    @model_validator(mode="after")
    def _family_requirements(self) -> DetectorSpec:
        problems: list[str] = []
        if self.anchors is not None and self.strides and len(self.anchors) != len(self.strides):
            problems.append(f"anchors has {len(self.anchors)} levels but strides has {len(self.strides)}")
        match self.family:
            case HeadFamily.NANODET:
                if not self.strides:
                    problems.append("nanodet needs strides")
                if self.reg_max is None:
                    problems.append("nanodet needs reg_max")
                if len(self.output_names) not in (1, 2 * len(self.strides)):
                    problems.append(
                        "nanodet needs 1 output (all levels, [class probs | box logits]) or 2 per stride "
                        f"(class probs, box logits), got {len(self.output_names)}"
                    )
            case HeadFamily.YOLO_GRID:
                if self.anchors is None or len(self.anchors) != 1:
                    problems.append("yolo-grid needs anchors for exactly one level")
            case HeadFamily.YOLOX:
                if not self.decoded and not self.strides:
                    problems.append("yolox with decoded=false needs strides")
            case HeadFamily.CANDIDATES:
                if len(self.output_names) != 3:
                    problems.append(
                        f"candidates needs 3 outputs (boxes, scores, class ids), got {len(self.output_names)}"
                    )
            case HeadFamily.DETR:
                if len(self.output_names) not in (1, 2):
                    problems.append(
                        "detr needs 1 output (boxes | scores) or 2 (boxes, scores), "
                        f"got {len(self.output_names)}"
                    )
            case HeadFamily.NMS_IN_GRAPH:
                if len(self.output_names) not in (3, 4):
                    problems.append(
                        "nms-in-graph needs 4 outputs (count, boxes, scores, classes) or 3 (boxes, scores, "
                        f"classes), got {len(self.output_names)}"
                    )
        several = (HeadFamily.NANODET, HeadFamily.CANDIDATES, HeadFamily.DETR, HeadFamily.NMS_IN_GRAPH)
        if self.family not in several and len(self.output_names) != 1:
            problems.append(f"{self.family.value} needs exactly 1 output name, got {len(self.output_names)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def num_classes(self) -> int:
        """Number of classes, ``len(labels)``."""
        return len(self.labels)


def load_spec(path: Path | str) -> DetectorSpec:
    """Read a :class:`DetectorSpec` from ``fovea.json``.

    Args:
        path: the JSON file, or a model directory containing ``fovea.json``.

    Raises:
        FileNotFoundError: no such file.
        pydantic.ValidationError: (a ``ValueError``) invalid JSON or spec; the message names the fields.
    """
    path = Path(path)
    if path.is_dir():
        path = path / SPEC_FILENAME
    return DetectorSpec.model_validate_json(path.read_text(encoding="utf-8"))


def parse_yaml_names(text: str) -> list[str]:
    """Class names from a YOLO ``data.yaml``'s top-level ``names:`` key, without a YAML library.

    Understands the forms YOLO tools write: ``names: [a, 'b c']``, ``names: {0: a, 1: b}``, and a block
    of ``- a`` lines or ``0: a`` lines indented under ``names:``.

    Raises:
        ValueError: no ``names:`` key, or a form not listed above.
    """
    lines = text.splitlines()
    for number, line in enumerate(lines):
        match = re.match(r"^names\s*:(.*)$", line)
        if not match:
            continue
        inline = re.sub(r"\s+#.*$", "", match.group(1)).strip()
        if inline.startswith("[") and inline.endswith("]"):
            return _names_from_pairs([_pair(i, False) for i in _split_flow(inline[1:-1])])
        if inline.startswith("{") and inline.endswith("}"):
            return _names_from_pairs([_pair(i, True) for i in _split_flow(inline[1:-1])])
        if inline:
            raise ValueError(f"data.yaml line {number + 1}: unsupported names value {inline!r}")
        pairs: list[tuple[str | None, str]] = []
        for block_line in lines[number + 1 :]:
            stripped = block_line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if not block_line[:1].isspace() and not stripped.startswith("-"):
                break  # next top-level key
            if stripped.startswith("-"):
                pairs.append((None, strip_yaml_scalar(stripped[1:])))
            else:
                pairs.append(_pair(stripped, True))
        if not pairs:
            raise ValueError("data.yaml: names: is empty")
        return _names_from_pairs(pairs)
    raise ValueError("data.yaml has no top-level 'names:' key")


def strip_yaml_scalar(text: str) -> str:
    """A YAML plain or quoted scalar, without a trailing ``# comment``."""
    text = text.strip()
    if text[:1] in {"'", '"'}:
        end = text.find(text[0], 1)
        if end == -1:
            raise ValueError(f"unterminated quoted name: {text}")
        return text[1:end]
    return re.sub(r"\s+#.*$", "", text).strip()


def _split_flow(body: str) -> list[str]:
    """Split the inside of ``[...]`` or ``{...}`` on commas outside quotes."""
    items, current, quote = [], "", ""
    for char in body:
        if quote:
            quote = "" if char == quote else quote
        elif char in {"'", '"'}:
            quote = char
        elif char == ",":
            items.append(current)
            current = ""
            continue
        current += char
    items.append(current)
    return [item for item in items if item.strip()]


def _names_from_pairs(pairs: list[tuple[str | None, str]]) -> list[str]:
    """``[(index or None, name)]`` -> names; explicit indices must be 0..n-1."""
    if all(key is None for key, _ in pairs):
        return [name for _, name in pairs]
    indexed = {}
    for key, name in pairs:
        if key is None or not key.strip().isdigit():
            raise ValueError(f"names: mixed or non-integer keys in {pairs}")
        indexed[int(key)] = name
    if sorted(indexed) != list(range(len(indexed))):
        raise ValueError(f"names: class indices must be 0..{len(indexed) - 1}, got {sorted(indexed)}")
    return [indexed[i] for i in range(len(indexed))]


def _pair(item: str, mapping: bool) -> tuple[str | None, str]:
    if not mapping:
        return None, strip_yaml_scalar(item)
    key, sep, value = item.partition(":")
    if not sep:
        raise ValueError(f"names: expected 'index: name', got {item!r}")
    return key.strip(), strip_yaml_scalar(value)
