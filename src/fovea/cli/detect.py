"""``fovea detect IMAGE`` (a client call) and ``fovea detect eval`` (a detector's mAP on a labelled
dataset, measured through the gateway; needs the server packages for the arithmetic)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from fovea.cli.output import DefaultGroup, connect, emit, fail, gateway_call
from fovea.client import FoveaClientError


@click.group(cls=DefaultGroup, default_cmd="image")
def detect() -> None:
    """Detect objects: `fovea detect IMAGE` or `fovea detect eval DIR`."""


@detect.command("image")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", default="", help="Detector name (default: the service's default)")
@click.option("--min-score", type=float, default=0.0)
@click.option("--iou", "iou_threshold", type=float, default=0.0, help="NMS IoU threshold")
@click.option("--max-detections", type=int, default=0)
@click.option(
    "--max-candidates",
    type=int,
    default=0,
    help="Best-scored candidates kept for NMS (default: the detector's, usually 1000)",
)
@click.option("--classes", default="", help="Comma-separated labels to keep")
@click.option(
    "--annotate", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write a PNG with boxes"
)
@click.option("--json", "as_json", is_flag=True)
def detect_image(
    image: Path,
    model: str,
    min_score: float,
    iou_threshold: float,
    max_detections: int,
    max_candidates: int,
    classes: str,
    annotate: Path | None,
    as_json: bool,
) -> None:
    """Detect objects in IMAGE."""
    result = gateway_call(
        lambda client: client.detect(
            image.read_bytes(),
            model=model,
            min_score=min_score,
            iou_threshold=iou_threshold,
            max_detections=max_detections,
            max_candidates=max_candidates,
            classes=[c.strip() for c in classes.split(",") if c.strip()],
            annotate=annotate is not None,
        )
    )
    if annotate is not None and result.annotated_png:
        annotate.write_bytes(result.annotated_png)
    data = asdict(result)
    data.pop("annotated_png")
    human = "\n".join(
        [f"{image.name}: {result.image_size[0]}x{result.image_size[1]}, model {result.model}"]
        + [f"  {d.label:<15} {d.score:.2f}  {d.box}" for d in result.detections]
    )
    emit(data, as_json, human)


@detect.command("eval")
@click.argument("folder", type=click.Path(exists=True, path_type=Path), required=False)
@click.option("--model", default="")
@click.option("--min-score", type=float, default=0.001)
@click.option(
    "--split",
    type=click.Choice(["train", "val", "test"]),
    default=None,
    help="Only this split of the dataset YAML (default: every image under images/)",
)
@click.option(
    "--coco",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="COCO-JSON annotations (instances_*.json) instead of a YOLO folder; needs --images",
)
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="With --coco: the folder the JSON's file_name entries are relative to",
)
@click.option("--json", "as_json", is_flag=True)
def detect_eval(
    folder: Path | None,
    model: str,
    min_score: float,
    split: str | None,
    coco: Path | None,
    images: Path | None,
    as_json: bool,
) -> None:
    """mAP@0.5, mAP@[.5:.95] and per-class AP of a detector on a YOLO-format dataset (a folder or its
    dataset YAML) or a COCO-JSON one (--coco annotations.json --images DIR)."""
    from fovea.detection.tools.evaluation import evaluate_coco, evaluate_folder

    if coco is not None:
        if folder is not None or split is not None or images is None:
            fail(ValueError("--coco takes --images DIR, and neither a dataset folder nor --split"))
    elif folder is None:
        fail(ValueError("give a YOLO dataset folder (or its YAML), or --coco annotations.json --images DIR"))
    elif images is not None:
        fail(ValueError("--images goes with --coco"))
    with connect() as client:
        try:
            if coco is not None and images is not None:
                report = evaluate_coco(client, coco, images, model=model, min_score=min_score)
            elif folder is not None:
                report = evaluate_folder(client, folder, model=model, min_score=min_score, split=split)
            else:  # refused above
                return
        except (FoveaClientError, ValueError) as exc:
            fail(exc)
    emit(report.as_dict(), as_json, report.as_text())
