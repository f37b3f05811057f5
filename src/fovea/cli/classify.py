"""``fovea classify`` (an image's classes, Grad-CAM, the classifiers served) and ``fovea classifiers``
(your own classes: train, follow the job, versions, rollback, delete; all client calls) with ``eval``
(accuracy on a labelled folder; needs the server packages for the arithmetic and the PNG)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from fovea.cli.output import DefaultGroup, Group, bar, connect, emit, fail, gateway_call
from fovea.client import ClassifierInfo, ClassifierVersions, FoveaClientError, TrainingResult
from fovea.client.classifiers import read_training_folder


@click.group(cls=DefaultGroup, default_cmd="image")
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
    result = gateway_call(
        lambda client: client.classify(image.read_bytes(), model=model, top_k=top_k, version=version)
    )
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
    result = gateway_call(
        lambda client: client.explain(image.read_bytes(), model=model, label=label, render=True)
    )
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
    rows = gateway_call(lambda client: client.list_classifiers())
    human = "\n".join(
        f"{r.name:<24} {r.classes:>5} classes  {r.input_size}px{'  (default)' if r.is_default else ''}"
        for r in rows
    )
    emit([asdict(r) for r in rows], as_json, human)


@click.group(cls=Group)
def classifiers() -> None:
    """Teach Fovea your own classes: train (transfer learning), list, versions, rollback, delete, eval."""


def _training_table(result: TrainingResult) -> str:
    lines = [
        f"version {result.version}: validation accuracy {result.validation_accuracy:.1%}, "
        f"train accuracy {result.train_accuracy:.1%} (features {result.feature_seconds:.1f} s, "
        f"{result.features_cached} cached; head {result.train_seconds:.1f} s)",
        "",
        f"{'class':<24} {'train':>6} {'val':>5} {'accuracy':>9} {'precision':>9}",
    ]
    for c in result.classes:
        lines.append(
            f"{c.label:<24} {c.train_images:>6} {c.validation_images:>5} "
            f"{c.accuracy:>9.1%} {c.precision:>9.1%}"
        )
    lines += ["", "confusion on the validation split (row = true class, column = predicted):"]
    lines.append(" " * 25 + " ".join(f"{label[:5]:>5}" for label in result.labels))
    for label, row in zip(result.labels, result.confusion, strict=True):
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
    try:
        training = read_training_folder(folder)
    except (OSError, ValueError) as exc:
        fail(exc)
    for path, why in training.skipped:
        click.echo(f"warning: skipped {path.relative_to(folder).as_posix()}: {why}", err=True)
    images = training.images
    with connect() as client:
        try:
            job = client.train_classifier(
                name,
                images,
                sources=training.sources,
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
                    line = bar(job.epoch, job.epochs)
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
    job = gateway_call(lambda client: client.training_job(job_id))
    human = _training_table(job.result) if job.result else f"{job.state} {job.stage} {job.error}".strip()
    emit(asdict(job), as_json, human)


@classifiers.command("list")
@click.option("--json", "as_json", is_flag=True)
def classifiers_list(as_json: bool) -> None:
    """Trained classifiers with their active version."""
    rows = [r for r in gateway_call(lambda client: client.list_classifiers()) if r.trained]
    human = "\n".join(
        f"{r.name:<24} version {r.active_version} of {len(r.versions)}, {r.classes} classes" for r in rows
    )
    emit(
        [asdict(r) for r in rows],
        as_json,
        human or "no trained classifiers: `fovea classifiers train NAME DIR`",
    )


def _versions_text(row: ClassifierInfo | ClassifierVersions) -> str:
    import datetime

    return "\n".join(
        f"{'*' if v.version == row.active_version else ' '} {v.version:>3}  "
        f"{datetime.datetime.fromtimestamp(v.created, datetime.UTC):%Y-%m-%d %H:%M}  "
        f"val {v.validation_accuracy:.1%}  {', '.join(v.labels)}"
        for v in row.versions
    )


@classifiers.command("versions")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def classifiers_versions(name: str, as_json: bool) -> None:
    """The versions of classifier NAME (* = active)."""
    row = gateway_call(lambda client: client.classifier_versions(name))
    emit(asdict(row), as_json, _versions_text(row))


@classifiers.command("rollback")
@click.argument("name")
@click.option("--to", "version", type=int, default=0, help="Version to serve (default: the one before)")
@click.option("--json", "as_json", is_flag=True)
def classifiers_rollback(name: str, version: int, as_json: bool) -> None:
    """Serve an older (or any kept) version of NAME by default; nothing is reloaded or restarted."""
    row = gateway_call(lambda client: client.rollback_classifier(name, version))
    emit(asdict(row), as_json, f"{name}: version {row.active_version} is active\n" + _versions_text(row))


@classifiers.command("delete")
@click.argument("name")
def classifiers_delete(name: str) -> None:
    """Unload NAME from Triton and delete all its versions."""
    deleted = gateway_call(lambda client: client.delete_classifier(name))
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
    from fovea.classify.tools.evaluation import confusion_png, evaluate_folder

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
