"""``fovea faces pad-eval``, ``pad-synth`` and ``pad-train``: presentation-attack detection measured (in process
or through a door), synthetic material, and the passive check a site trains on its own captures. The ``faces``
group (``cli/faces.py``) registers them; the work is in :mod:`fovea.faces.tools`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from fovea.cli.output import Command, connect, emit, fail, gateway_call
from fovea.client import FoveaClientError, TrainingResult


def _summary(result: TrainingResult) -> str:
    pad = result.pad
    if pad is None:
        return f"version {result.version}"
    return (
        f"version {result.version}: trained on {pad.train_bona_fide_bursts} bona fide and "
        f"{pad.train_attack_bursts} attack bursts; each burst scored by a head trained without it "
        f"({pad.validation_bona_fide_bursts} and {pad.validation_attack_bursts}): BPCER {pad.bpcer:.1%}, "
        f"APCER {pad.apcer:.1%} per burst (per crop {pad.crop_bpcer:.1%}, "
        f"{pad.crop_apcer:.1%}); threshold moved by {pad.logit_shift:+.3f} log-odds"
        + (
            "; APCER by species "
            + ", ".join(f"{name} {rate:.0%}" for name, rate in pad.apcer_by_species.items())
            if pad.apcer_by_species
            else ""
        )
    )


@click.command("pad-train", cls=Command)
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
    FOLDER/attack/[<species>/]<seq>/*.jpg (the pad-eval layout; at least 8 bursts of each, 16 or more
    advised, from every camera and many people): face and context crops of each frame's face; the threshold
    placed on every burst's score by a head trained without it (cross-fitting over five folds of bursts). A
    door uses it with passive_check trained:NAME."""
    from fovea.common.paths import model_repository as default_repository
    from fovea.faces.config import FacesSettings
    from fovea.faces.tools.inprocess import InProcessFaces
    from fovea.faces.tools.pad_train import collect, train

    try:
        faces = InProcessFaces(model_repository or default_repository(), FacesSettings().for_doors())
        material = collect(folder, faces, frames_per_burst)
    except (ValueError, OSError) as exc:
        fail(exc)
    click.echo(
        f"{len(material.images)} crops of {material.bursts['bona_fide']} bona fide and "
        f"{material.bursts['attack']} attack bursts"
        + (f"; {len(material.no_face)} without a face left out" if material.no_face else ""),
        err=True,
    )

    def progress(job: Any) -> None:
        line = f"epoch {job.epoch}/{job.epochs} loss {job.loss:.4f}" if job.epoch else job.stage
        click.echo("\r" + line.ljust(80), nl=False, err=True)

    job = gateway_call(
        lambda client: train(client, name, material, seed=seed, epochs=epochs, wait=wait, on_update=progress)
    )
    if wait:
        click.echo("", err=True)
    if job.state == "FAILED":
        fail(RuntimeError(f"training failed: {job.error}"))
    data = {**asdict(job), "no_face": material.no_face}
    emit(data, as_json, _summary(job.result) if job.result else f"{job.job_id} {job.state}")


@click.command("pad-eval", cls=Command)
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
@click.option(
    "--passive",
    default="",
    help="In process: also the passive check NAME a site trained (`fovea faces pad-train NAME`) and the door "
    "row: the decision of a door with pad require, passive require and that check",
)
@click.option(
    "--trained-repository",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="With --passive: where trained checks are (default: FOVEA_FACES_TRAINED_REPOSITORY, else the local "
    "stack's user model repository, where `fovea faces pad-train` put them: FOVEA_DATA_DIR/user-models)",
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
    passive: str,
    trained_repository: Path | None,
    as_json: bool,
) -> None:
    """Presentation-attack detection rates (ISO/IEC 30107-3) over labelled frame sequences
    FOLDER/bona_fide/<seq>/*.jpg and FOLDER/attack/[<species>/]<seq>/*.jpg: APCER per species and worst,
    BPCER, ACER, BPCER at APCER 1% and 5% and the threshold for each. Runs the face detector in this process
    (the served ONNX model and the service's own code; no stack needed), or with --door sends each sequence
    to that door through the gateway (each burst is a real VerifyAccess: audited, with its events) and
    reports its PAD scores and its decisions; sequences the door refused before judging them (a replay of
    frames it saw before, closed hours, a challenge it requires) are listed and left out."""
    from fovea.faces.tools.pad_eval import evaluate_in_process
    from fovea.faces.tools.pad_eval_door import evaluate_through_door

    if door is None:
        if gateway_address is not None:
            fail(ValueError("--gateway evaluates through a door: give --door too"))
        if passive and trained_repository is None:
            trained_repository = trained_checks_repository()
        try:
            report = evaluate_in_process(
                folder,
                min_parallax=min_parallax,
                model_repository=model_repository,
                dense=dense,
                passive=passive,
                trained_repository=trained_repository,
            )
        except (ValueError, OSError) as exc:
            fail(exc)
    else:
        if model_repository is not None or dense or passive:
            fail(
                ValueError(
                    "--model-repository, --dense and --passive are for the in-process evaluation; through "
                    "--door the door's own policy decides (passive_check trained:NAME)"
                )
            )
        with connect(gateway_address) as client:
            try:
                report = evaluate_through_door(
                    folder,
                    client,
                    door=door,
                    gallery=gallery,
                    identity=identity,
                    max_frames=max_frames,
                    threshold=min_parallax,
                )
            except (ValueError, OSError, FoveaClientError) as exc:
                fail(exc)
    emit(report.as_dict(), as_json, report.as_text())


def trained_checks_repository() -> Path:
    """Where a trained passive check is read from when ``--trained-repository`` is not given: the faces
    service's ``FOVEA_FACES_TRAINED_REPOSITORY`` when set, else the user model repository of the local stack
    (``fovea up``: ``FOVEA_DATA_DIR``/user-models), which its classify worker trains into."""
    from fovea.faces.config import FacesSettings
    from fovea.stack.config import StackSettings

    return FacesSettings().trained_repository or StackSettings().user_models


@click.command("pad-synth", cls=Command)
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--per-photo", type=click.IntRange(1, 50), default=2, show_default=True, help="Sequences per label"
)
@click.option("--frames", type=click.IntRange(3, 15), default=6, show_default=True)
@click.option(
    "--photos",
    default=None,
    help="Comma-separated portraits: samples (default: obama,obama2,obama3,biden; also astronaut, with "
    "scikit-image) or photo files (a path with a folder or a .jpg/.jpeg/.png/.webp suffix: your own "
    "people, e.g. a frame of your stage video, one face each); NAME@SCALE: that portrait resized by SCALE "
    "in (0, 1], a lower-resolution photo",
)
@click.option(
    "--species",
    default=None,
    help="Comma-separated attack species to write (default: print_still, print_slide, print_tilt, "
    "print_zoom, screen_tilt, print_bent, print_bent_h; also screen_replay: a head-turn video replayed on a "
    "phone)",
)
@click.option(
    "--talking",
    type=click.IntRange(0, 50),
    default=0,
    show_default=True,
    help="Also near-still talking heads per portrait among the bona fide sequences",
)
@click.option(
    "--scenes",
    default="",
    help="Comma-separated rooms (china, flower, coffee, chelsea, rocket, dog, horses, giraffe): every frame "
    "a 640x480 door camera's, the same face sizes for every label, prints and screens held in front of "
    "these rooms; the material for measuring a passive check (default: none, the geometry check's set)",
)
@click.option(
    "--screens",
    default="phone",
    show_default=True,
    help="With --scenes: comma-separated screen models the screens are drawn from (phone, monitor)",
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
    talking: int,
    scenes: str,
    screens: str,
    model_repository: Path | None,
) -> None:
    """Write a labelled set for `fovea faces pad-eval` into OUT from the sample portraits: bona fide heads
    turned by a 2.5D head model, and prints / screens held still, slid, tilted or zoomed. Synthetic test
    material, not a measure of real heads."""
    from fovea.faces.tools.pad_eval import SYNTH_ATTACKS, SYNTH_PHOTOS, write_synthetic_set

    def names(value: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
        return default if value is None else tuple(n.strip() for n in value.split(",") if n.strip())

    try:
        counts = write_synthetic_set(
            out,
            seed=seed,
            per_photo=per_photo,
            frames=frames,
            photos=names(photos, SYNTH_PHOTOS),
            attacks=names(species, SYNTH_ATTACKS),
            talking=talking,
            scenes=names(scenes, ()),
            screens=names(screens, ()),
            model_repository=model_repository,
        )
    except (ValueError, OSError) as exc:
        fail(exc)
    click.echo("\n".join(f"{label}: {n} sequences" for label, n in counts.items()))


COMMANDS = (faces_pad_eval, faces_pad_synth, pad_train)
