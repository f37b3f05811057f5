"""``fovea faces pad-train``: the passive presentation-attack check a site trains on its own captures.

Click commands not attached to a group: the ``faces`` group registers them (``faces.add_command``). The
work is in :mod:`fovea.faces.tools.pad_train`; this module parses options, calls it, prints.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

import click

from fovea.client import FoveaClient, FoveaClientError


def _emit(data: Any, as_json: bool, human: str) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else human)


def _fail(exc: Exception) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


def _client() -> FoveaClient:
    """A client of the gateway as the global options (--gateway, --tls, ...) say."""
    try:
        return FoveaClient(**(click.get_current_context().find_root().obj or {}))
    except ValueError as exc:
        _fail(exc)


def _summary(result: dict[str, Any]) -> str:
    pad = result.get("pad") or {}
    return (
        f"version {result['version']}: trained on {pad.get('train_bona_fide_bursts', 0)} bona fide and "
        f"{pad.get('train_attack_bursts', 0)} attack bursts; held out {pad.get('validation_bona_fide_bursts', 0)} "
        f"and {pad.get('validation_attack_bursts', 0)}: BPCER {pad.get('bpcer', 0):.1%}, APCER "
        f"{pad.get('apcer', 0):.1%} per burst (per crop {pad.get('crop_bpcer', 0):.1%}, "
        f"{pad.get('crop_apcer', 0):.1%}); threshold moved by {pad.get('logit_shift', 0):+.3f} log-odds"
    )


@click.command("pad-train")
@click.argument("name")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--frames-per-burst",
    type=click.IntRange(1, 15),
    default=8,
    show_default=True,
    help="Frames taken from each sequence, sampled evenly (fewer when the set would exceed 1000 crops)",
)
@click.option("--epochs", type=int, default=0, help="Passes over the features (default: the service's, 30)")
@click.option("--seed", type=int, default=0, help="Seed of the burst split, augmentation and head")
@click.option(
    "--model-repository",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Where the face detector is (default: the repository's model_repository/)",
)
@click.option("--wait", is_flag=True, help="Follow the job until it ends")
@click.option("--json", "as_json", is_flag=True)
def pad_train(
    name: str,
    folder: Path,
    frames_per_burst: int,
    epochs: int,
    seed: int,
    model_repository: Path | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Train the passive presentation-attack check NAME on FOLDER/bona_fide/<seq>/*.jpg and
    FOLDER/attack/[<species>/]<seq>/*.jpg (the pad-eval layout; at least 8 bursts of each): face and
    context crops of each frame's face, split by burst, calibrated on the bursts held out. A door uses it
    with passive_check trained:NAME."""
    from fovea.common.paths import model_repository as default_repository
    from fovea.faces.tools.inprocess import InProcessFaces
    from fovea.faces.tools.pad_train import collect, train

    try:
        faces = InProcessFaces(model_repository or default_repository())
        material = collect(folder, faces, frames_per_burst)
    except (ValueError, OSError) as exc:
        _fail(exc)
    click.echo(
        f"{len(material.images)} crops of {material.bursts['bona_fide']} bona fide and "
        f"{material.bursts['attack']} attack bursts"
        + (f"; {len(material.no_face)} without a face left out" if material.no_face else ""),
        err=True,
    )

    def progress(job: Any) -> None:
        line = f"epoch {job.epoch}/{job.epochs} loss {job.loss:.4f}" if job.epoch else job.stage
        click.echo("\r" + line.ljust(80), nl=False, err=True)

    with _client() as client:
        try:
            job = train(client, name, material, seed=seed, epochs=epochs, wait=wait, on_update=progress)
        except FoveaClientError as exc:
            _fail(exc)
    if wait:
        click.echo("", err=True)
    if job.state == "FAILED":
        _fail(RuntimeError(f"training failed: {job.error}"))
    data = {**asdict(job), "no_face": material.no_face}
    _emit(data, as_json, _summary(job.result) if job.result else f"{job.job_id} {job.state}")


__all__ = ["pad_train"]
