"""``fovea faces pad-eval DIR`` and ``fovea faces pad-synth OUT``: presentation-attack detection measured in
the terms of ISO/IEC 30107-3 over labelled frame sequences, and a labelled set made from the repository's
own portraits to run it on.

Layout of DIR (frames of a sequence in file-name order; .jpg, .jpeg or .png)::

    DIR/bona_fide/<seq>/*.jpg
    DIR/attack/<seq>/*.jpg            attack species "attack"
    DIR/attack/<species>/<seq>/*.jpg  (e.g. print_tilt, screen)

Each frame goes through the faces service's own detection code in this process
(:class:`fovea.faces.tools.inprocess.InProcessFaces`: the served ONNX detector, the same pre- and
post-processing), the largest face's 5 landmarks are kept, and each sequence is scored by the checks that
need no challenge: today the multi-frame geometry check (``fovea.faces.access.core.pad``; a sequence longer than
its 15 frames is sampled evenly). A sequence the check cannot judge (fewer than 3 frames with a face) has
no score and counts as classified an attack (a bona fide one is then a BPCER error). The identity-change
part of the geometry check needs a gallery and is not run here.

Through a gateway (:func:`evaluate_door`, ``pad-eval DIR --gateway ADDR --door DOOR``) each sequence is
sent instead as one VerifyAccess burst to a door of a deployed stack (at most ``max_frames`` frames, sampled
evenly), so a site measures its own detector, thresholds and door policy. Two rows come back: one named
after the PAD check the door runs (``geometry``, or ``geometry+dense_geometry`` where its policy says
``pad_check: dense``), from the PAD score and verdict of the responses (rates at the threshold the service
reports, or at the one given), and ``door``, the door's own decision, which has no score: a burst is classified bona fide when no
presentation-attack defence denied it (``DOOR_ACCEPTED``: match, no_match, unknown_identity) and an attack
when one did (``DOOR_DETECTED``: pad, mixed_faces, no_face, liveness, passive, challenge_not_met). A burst
refused before its presentation was judged (replay, closed_hours, a challenge missing or invalid, bad_request,
unavailable, timeout, error, a reason kind this version does not know) is left out of both rows and listed.
Each burst is a real VerifyAccess: an audit record and its events at that door.

The synthetic set (:func:`write_synthetic_dir`): bona fide sequences are the portraits turned in 3D by a
2.5D head model (``pad_synth.head_view``: the photo lifted onto a head-shaped surface, yaw or pitch swept
over 20-35 degrees); attacks are the same portraits printed and held still, slid, tilted, zoomed
(``pad_synth.photo_view``) or shown on a screen (moire, gamma, glare) and tilted, and printed and bent like
paper (a cylinder of radius 0.5-2 print widths about the print's vertical or horizontal axis,
``pad_synth.bent_photo_view``) turned 25-40 degrees about that axis (``print_bent``, ``print_bent_h``). Each frame gets sensor
noise, so no two frames are the same bytes. It is test material for the command, not evidence about real
heads: real bona fide video must be measured with your own camera.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fovea.client import AccessResult, FoveaClient
from fovea.common.paths import model_repository as default_repository
from fovea.contracts.face_detector import DetectedFaces
from fovea.faces.access.core.pad import GeometrySettings, check_burst
from fovea.faces.access.core.pad_dense import COMBINED_CHECK, DenseSettings, check_dense, combine
from fovea.faces.config import FacesSettings
from fovea.faces.recognition.core.mesh import dense_points, mesh_to_image
from fovea.faces.recognition.pipeline import Photo, mesh_crops
from fovea.faces.tools.core.accuracy import PadReport, pad_report
from fovea.faces.tools.core.pad_synth import bent_photo_view, head_view, photo_view, rotation, screen_look
from fovea.faces.tools.inprocess import InProcessFaces, run_model
from fovea.serving.triton_adapter import Served, load_from_repository

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
BONA_FIDE = "bona_fide"
ATTACK = "attack"
CHECKS = ("geometry",)


@dataclass(frozen=True)
class LabelledSequence:
    species: str  # BONA_FIDE, or the attack species
    name: str  # path relative to DIR
    frames: tuple[Path, ...]


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _sequences(folder: Path, species: str, root: Path) -> list[LabelledSequence]:
    out = []
    for seq in sorted(p for p in folder.iterdir() if p.is_dir()):
        frames = _images(seq)
        if not frames:
            raise ValueError(f"{seq}: no frames (.jpg, .jpeg, .png)")
        out.append(LabelledSequence(species, str(seq.relative_to(root)), tuple(frames)))
    return out


def find_sequences(root: Path) -> tuple[list[LabelledSequence], dict[str, list[LabelledSequence]]]:
    """(bona fide sequences, attack sequences by species) under ``root``; ``ValueError`` saying what is
    missing or misplaced."""
    bona_dir, attack_dir = root / BONA_FIDE, root / ATTACK
    if not bona_dir.is_dir() or not attack_dir.is_dir():
        raise ValueError(f"{root} needs {BONA_FIDE}/<seq>/*.jpg and {ATTACK}/[<species>/]<seq>/*.jpg folders")
    bona = _sequences(bona_dir, BONA_FIDE, root)
    attacks: dict[str, list[LabelledSequence]] = {}
    for child in sorted(p for p in attack_dir.iterdir() if p.is_dir()):
        if _images(child):  # attack/<seq>/*.jpg
            attacks.setdefault(ATTACK, []).append(
                LabelledSequence(ATTACK, str(child.relative_to(root)), tuple(_images(child)))
            )
        else:  # attack/<species>/<seq>/*.jpg
            attacks[child.name] = _sequences(child, child.name, root)
    attacks = {k: v for k, v in attacks.items() if v}
    if not bona or not attacks:
        raise ValueError(f"{root}: need at least one bona fide and one attack sequence")
    return bona, attacks


def _even(frames: Sequence[Path], most: int) -> list[Path]:
    if len(frames) <= most:
        return list(frames)
    return [frames[round(i)] for i in np.linspace(0, len(frames) - 1, most)]


@dataclass
class SequenceScore:
    name: str
    species: str
    frames: int
    faces: int | None  # frames with a face (None: not known, through a gateway)
    scores: dict[str, float]  # per check; nan = not decided
    reason_kind: str = ""  # through a gateway: the door's reason kind for the burst


@dataclass(frozen=True)
class RefusedSequence:
    """A sequence whose burst the door refused before its presentation was judged."""

    name: str
    species: str
    reason_kind: str
    reason: str


@dataclass
class PadEvalReport:
    thresholds: dict[str, float]  # per check, the configured one the rates are given at
    reports: dict[str, PadReport]  # per check
    sequences: list[SequenceScore] = field(default_factory=list)
    door: str = ""  # through a gateway: the door the bursts were sent to ('' = in process)
    refused: list[RefusedSequence] = field(default_factory=list)  # through a gateway: left out of the rates
    decision_only: tuple[str, ...] = ()  # checks that have a decision and no score (no operating points)

    def as_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if math.isnan(x) or math.isinf(x) else round(x, 6)

        out: dict[str, Any] = {"checks": {}, "sequences": []}
        if self.door:
            out["door"] = self.door
            out["refused"] = [asdict(r) for r in self.refused]
        for check, r in self.reports.items():
            out["checks"][check] = {
                "threshold": None if check in self.decision_only else r.threshold,
                "bona_fide_sequences": r.bona_fide,
                "attack_sequences": r.attacks,
                "apcer_by_species": r.apcer_by_species,
                "apcer": r.apcer,
                "bpcer": r.bpcer,
                "acer": r.acer,
                "operating_points": [
                    {
                        "apcer_target": p.apcer,
                        "bpcer": p.bpcer,
                        "threshold": num(p.threshold),
                        "achieved_apcer": p.achieved_apcer,
                    }
                    for p in r.operating_points
                ],
            }
        for s in self.sequences:
            out["sequences"].append(
                {
                    "name": s.name,
                    "species": s.species,
                    "frames": s.frames,
                    "faces": s.faces,
                    "scores": {k: num(v) for k, v in s.scores.items()},
                    **({"reason_kind": s.reason_kind} if self.door else {}),
                }
            )
        return out

    def as_text(self) -> str:
        lines = [f"door {self.door} (through the gateway)"] if self.door else []
        for check, r in self.reports.items():
            how = (
                "the door's decision (bona fide when no presentation-attack defence denied the burst)"
                if check in self.decision_only
                else f"threshold {r.threshold:.3f} (bona fide when score >= threshold)"
            )
            lines.append(
                f"check {check}: {r.bona_fide} bona fide and {sum(r.attacks.values())} attack sequences, {how}"
            )
            lines.append(f"  {'species':<24} {'sequences':>9} {'APCER':>8}")
            for species, rate in r.apcer_by_species.items():
                lines.append(f"  {species:<24} {r.attacks[species]:>9} {rate:>8.2%}")
            lines.append(f"  {'APCER (worst species)':<24} {'':>9} {r.apcer:>8.2%}")
            lines.append(f"  {'BPCER':<24} {r.bona_fide:>9} {r.bpcer:>8.2%}")
            lines.append(f"  {'ACER':<24} {'':>9} {r.acer:>8.2%}")
            for p in r.operating_points:
                t = "none reaches it" if math.isinf(p.threshold) else f"set threshold {p.threshold:.3f}"
                lines.append(
                    f"  BPCER @ APCER <= {p.apcer:.0%}: {p.bpcer:.2%} ({t}; APCER there {p.achieved_apcer:.2%})"
                )
            resolution = 1 / max(1, min(r.attacks.values()))
            lines.append(
                f"  (APCER resolution {resolution:.1%} with the smallest species; a target below it is not measured)"
            )
        if self.refused:
            lines.append(
                f"refused before the presentation was judged, left out of the rates: {len(self.refused)}"
            )
            lines += [f"  {x.name}: {x.reason_kind}: {x.reason}" for x in self.refused]
        return "\n".join(lines)


def _meshes(
    mesh: Served, photos: Sequence[Photo], faces: Sequence[DetectedFaces | None], min_score: float
) -> list[np.ndarray | None]:
    """Per frame the face mesh (468,3) in the frame's full pixels, as the door computes it
    (``FacePipeline.meshes``); ``faces[i]``: one of ``photos[i]``'s faces, or None."""
    crops, matrices, rows = mesh_crops([p.image for p in photos], faces, [p.reduction for p in photos])
    out: list[np.ndarray | None] = [None] * len(faces)
    if rows:
        result = run_model(mesh, {"CROP": crops})
        for j, i in enumerate(rows):
            if float(result["FACE_SCORE"][j, 0]) >= min_score:
                out[i] = mesh_to_image(result["MESH"][j], matrices[j])
    return out


def score_sequences(
    faces: InProcessFaces,
    sequences: Sequence[LabelledSequence],
    geometry: GeometrySettings,
    dense: DenseSettings | None = None,
    mesh: Served | None = None,
    mesh_min_score: float = 0.5,
) -> list[SequenceScore]:
    """Each sequence's scores: ``geometry`` (the 5-point check), and with ``dense`` and the ``face_mesh``
    model ``mesh`` also :data:`COMBINED_CHECK` (the door's ``pad_check: dense`` verdict's margin, threshold
    1)."""
    if (dense is None) != (mesh is None):
        raise ValueError("the dense check needs both its settings and the face_mesh model")
    out = []
    for seq in sequences:
        frames = _even(seq.frames, geometry.max_frames)
        photos = [faces.find_faces(path.read_bytes()) for path in frames]
        found = [None if len(p.faces) == 0 else p.faces.take([0]) for p in photos]
        landmarks = [None if f is None else f.landmarks[0] for f in found]
        result = check_burst(landmarks, geometry)
        scores = {"geometry": result.score}
        if dense is not None and mesh is not None:
            meshes = _meshes(mesh, photos, found, mesh_min_score)
            points = [None if m is None else dense_points(m[:, :2]) for m in meshes]
            scores[COMBINED_CHECK] = combine(result, check_dense(points, dense)).score
        out.append(
            SequenceScore(
                seq.name, seq.species, len(seq.frames), sum(p is not None for p in landmarks), scores
            )
        )
    return out


def evaluate(
    root: Path,
    faces: InProcessFaces,
    geometry: GeometrySettings,
    apcers: Sequence[float] = (0.01, 0.05),
    *,
    dense: DenseSettings | None = None,
    mesh: Served | None = None,
) -> PadEvalReport:
    """Score every sequence under ``root`` (:func:`find_sequences`) and report each check (the dense one
    too with ``dense`` and ``mesh``, see :func:`score_sequences`)."""
    bona, attacks = find_sequences(root)
    scored = score_sequences(faces, [*bona, *(s for v in attacks.values() for s in v)], geometry, dense, mesh)
    thresholds = {"geometry": geometry.min_parallax}
    if dense is not None:
        thresholds[COMBINED_CHECK] = 1.0
    reports = {}
    for check in thresholds:
        b = np.array([s.scores[check] for s in scored if s.species == BONA_FIDE])
        a = {k: np.array([s.scores[check] for s in scored if s.species == k]) for k in attacks}
        reports[check] = pad_report(b, a, thresholds[check], apcers)
    return PadEvalReport(thresholds, reports, scored)


def evaluate_in_process(
    root: Path,
    *,
    min_parallax: float | None = None,
    model_repository: Path | None = None,
    dense: bool = False,
) -> PadEvalReport:
    """``fovea faces pad-eval DIR``: :func:`evaluate` with the faces service's settings (``FOVEA_FACES_*``)
    and the face models of ``model_repository`` (default: the repository's ``model_repository/``) loaded
    in this process. ``min_parallax``: the geometry threshold (default the service's); ``dense``: also the
    door's ``pad_check dense`` verdict (needs the face_mesh model).

    Raises:
        ValueError: bad settings, a model that does not load, a folder that is not a labelled set.
        OSError: a file that cannot be read.
    """
    settings = FacesSettings()
    geometry = GeometrySettings(
        min_parallax=settings.pad_min_parallax if min_parallax is None else min_parallax
    )
    repository = model_repository or default_repository()
    faces = InProcessFaces(repository, settings)
    if not dense:
        return evaluate(root, faces, geometry)
    mesh = load_from_repository("fovea.serving.face_mesh", repository / settings.mesh_model)
    checks = DenseSettings(
        min_ratio=settings.pad_dense_min_ratio, min_residual=settings.pad_dense_min_residual
    )
    return evaluate(root, faces, geometry, dense=checks, mesh=mesh)


# ---------------------------------------------------------------------------------------- through a gateway
DOOR_ACCEPTED = frozenset({"match", "no_match", "unknown_identity"})
"""VerifyAccess reason kinds of a burst no presentation-attack defence denied (it was matched or not)."""
DOOR_DETECTED = frozenset({"pad", "mixed_faces", "no_face", "liveness", "passive", "challenge_not_met"})
"""VerifyAccess reason kinds of a burst a presentation-attack defence denied (no face in the frames counts
as one, as a sequence the geometry check cannot judge does in process)."""
DOOR_CHECK = "door"


@dataclass(frozen=True)
class DoorAnswer:
    """What a door answered to one burst (``fovea.faces.v1.VerifyAccessResponse``)."""

    decision: str  # GRANT | DENY
    reason_kind: str
    reason: str
    pad_verdict: str  # PAD_NOT_CHECKED | PAD_BONA_FIDE | PAD_ATTACK | PAD_UNDECIDED
    pad_score: float  # the PAD check's (nan when it could not tell)
    pad_threshold: float
    pad_check: str = "geometry"  # which check gave the score (PadCheck.check)


def evaluate_door(
    root: Path,
    ask: Callable[[list[bytes]], DoorAnswer],
    *,
    door: str,
    max_frames: int,
    threshold: float | None = None,
    apcers: Sequence[float] = (0.01, 0.05),
) -> PadEvalReport:
    """Send every sequence under ``root`` (:func:`find_sequences`; at most ``max_frames`` frames each, in
    file-name order, sampled evenly) to ``ask`` (one VerifyAccess at ``door``) and report a row named after
    the door's PAD check (the responses' PAD scores; rates at ``threshold``, default the one the service
    reported) where the door ran one, and the ``door`` row (its decisions; see the module docstring). Sequences
    refused before they were judged are left out and listed; ``ValueError`` when that leaves a label with
    none, naming the reasons."""
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    bona, attacks = find_sequences(root)
    scored: list[SequenceScore] = []
    refused: list[RefusedSequence] = []
    service_threshold = math.nan
    pad_checks: set[str] = set()
    for seq in [*bona, *(s for v in attacks.values() for s in v)]:
        frames = _even(seq.frames, max_frames)
        answer = ask([p.read_bytes() for p in frames])
        kind = answer.reason_kind
        if kind not in DOOR_ACCEPTED and kind not in DOOR_DETECTED:
            refused.append(RefusedSequence(seq.name, seq.species, kind, answer.reason))
            continue
        scores = {DOOR_CHECK: 1.0 if kind in DOOR_ACCEPTED else 0.0}
        if answer.pad_verdict != "PAD_NOT_CHECKED":
            scores[answer.pad_check] = answer.pad_score if answer.pad_verdict != "PAD_UNDECIDED" else math.nan
            service_threshold = answer.pad_threshold
            pad_checks.add(answer.pad_check)
        scored.append(SequenceScore(seq.name, seq.species, len(seq.frames), None, scores, kind))
    labels = [BONA_FIDE, *attacks]
    judged = {label: [s for s in scored if s.species == label] for label in labels}
    if not all(judged.values()):
        kinds = sorted({x.reason_kind for x in refused})
        first = refused[0].reason if refused else ""
        missing = [label for label in labels if not judged[label]]
        raise ValueError(
            f"door {door} judged no sequence of {', '.join(missing)}: {len(refused)} refused before they were "
            f"judged ({', '.join(kinds)}), e.g. {first!r}"
        )
    if len(pad_checks) > 1:  # the door's policy changed during the run
        raise ValueError(f"door {door} answered with different PAD checks: {', '.join(sorted(pad_checks))}")
    checks = [DOOR_CHECK]
    thresholds = {DOOR_CHECK: 0.5}  # the door row's scores are 1 (accepted) or 0 (detected)
    if pad_checks:  # a judged burst without a PAD result (the check did not run) is not classified bona fide
        [pad_check] = pad_checks
        checks.insert(0, pad_check)
        thresholds[pad_check] = service_threshold if threshold is None else threshold
        for s in scored:
            s.scores.setdefault(pad_check, math.nan)
    reports = {}
    for check in checks:
        b = np.array([s.scores[check] for s in judged[BONA_FIDE]])
        a = {k: np.array([s.scores[check] for s in judged[k]]) for k in attacks}
        reports[check] = pad_report(b, a, thresholds[check], apcers if check != DOOR_CHECK else ())
    return PadEvalReport(
        {c: thresholds[c] for c in checks},
        reports,
        scored,
        door=door,
        refused=refused,
        decision_only=(DOOR_CHECK,),
    )


def door_answer(result: AccessResult) -> DoorAnswer:
    """A VerifyAccess answer as :func:`evaluate_door` reads it."""
    pad = result.pad
    return DoorAnswer(
        result.decision,
        result.reason_kind,
        result.reason,
        "PAD_NOT_CHECKED" if pad is None else pad.verdict,
        math.nan if pad is None else pad.score,
        math.nan if pad is None else pad.threshold,
        "" if pad is None else pad.check,
    )


def evaluate_through_door(
    root: Path,
    client: FoveaClient,
    *,
    door: str,
    gallery: str = "",
    identity: str = "pad-eval",
    max_frames: int = 10,
    threshold: float | None = None,
) -> PadEvalReport:
    """``fovea faces pad-eval DIR --door DOOR``: :func:`evaluate_door`, each burst a VerifyAccess through
    ``client`` at ``door`` claiming ``identity`` (the PAD result does not depend on it) in ``gallery``
    ('' = the door's own).

    Raises:
        ValueError: see :func:`evaluate_door`.
        FoveaClientError: the gateway refused a call.
    """

    def ask(frames: list[bytes]) -> DoorAnswer:
        return door_answer(client.verify_access(door, gallery, identity, frames))

    return evaluate_door(root, ask, door=door, max_frames=max_frames, threshold=threshold)


# ---------------------------------------------------------------------------------------------- synthetic
SYNTH_PHOTOS = ("obama", "obama2", "obama3", "biden")
SYNTH_ATTACKS = (
    "print_still",
    "print_slide",
    "print_tilt",
    "print_zoom",
    "screen_tilt",
    "print_bent",
    "print_bent_h",
)
# Bent prints are not planar, outside what the geometry check assumes: the species measured for it apart.
BENT_ATTACKS = {"print_bent": "vertical", "print_bent_h": "horizontal"}
PRINT_WIDTH_MM = 120.0


def _jpeg(frame: np.ndarray, rng: np.random.Generator, noise: float = 2.0) -> bytes:
    noisy = np.clip(frame.astype(np.float64) + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def portrait(faces: InProcessFaces, photo: Image.Image, side: int = 480) -> tuple[np.ndarray, np.ndarray]:
    """The portrait cropped round its largest face (6 IOD wide) at ``side`` px, and that face's landmarks."""
    found = faces.detect(np.asarray(photo))
    if len(found.faces) == 0:
        raise ValueError("no face in the portrait")
    lm = found.faces.landmarks[0]
    iod, centre = float(np.linalg.norm(lm[1] - lm[0])), lm.mean(0)
    half = 3 * iod
    box = (
        int(centre[0] - half),
        int(centre[1] - 1.1 * half),
        int(centre[0] + half),
        int(centre[1] + 0.9 * half),
    )
    crop = np.asarray(photo.crop(box).resize((side, side), Image.Resampling.BILINEAR))
    again = faces.detect(crop)
    if len(again.faces) == 0:
        raise ValueError("no face in the cropped portrait")
    return crop, again.faces.landmarks[0]


def _attack_poses(rng: np.random.Generator, species: str, n: int) -> list[tuple[np.ndarray, float]]:
    """(pose, distance mm) per frame of a print or screen moved as ``species`` says."""
    base = (rng.uniform(-10, 10), rng.uniform(-10, 10), rng.uniform(-5, 5))
    dist = rng.uniform(300, 420)
    t = np.linspace(0, 1, n)
    sign = rng.choice([-1.0, 1.0])
    if species == "print_still":
        return [(rotation(*base), dist)] * n
    if species == "print_slide":
        return [(rotation(base[0], base[1], base[2] + 10 * sign * k), dist * (1 + 0.05 * k)) for k in t]
    if species in BENT_ATTACKS:  # turned about the bend's axis (yaw for a vertical one, pitch otherwise)
        amount = rng.uniform(25, 40) * sign
        yaw_axis = BENT_ATTACKS[species] == "vertical"
        return [
            (
                rotation(base[0] + amount * k * yaw_axis, base[1] + amount * k * (not yaw_axis), base[2]),
                dist,
            )
            for k in t
        ]
    if species in ("print_tilt", "screen_tilt"):
        amount, axis = rng.uniform(25, 40) * sign, rng.uniform(0, 2 * np.pi)
        return [
            (
                rotation(base[0] + amount * k * np.cos(axis), base[1] + amount * k * np.sin(axis), base[2]),
                dist,
            )
            for k in t
        ]
    if species == "print_zoom":
        zoom = rng.uniform(0.65, 0.85) if sign > 0 else rng.uniform(1.2, 1.5)
        return [(rotation(*base), dist * (1 + (zoom - 1) * k)) for k in t]
    raise ValueError(f"unknown attack species {species!r}; known: {', '.join(SYNTH_ATTACKS)}")


def write_synthetic_dir(
    out: Path,
    faces: InProcessFaces,
    *,
    seed: int = 7,
    per_photo: int = 2,
    frames: int = 6,
    photos: Sequence[str] = SYNTH_PHOTOS,
    attacks: Sequence[str] = SYNTH_ATTACKS,
) -> dict[str, int]:
    """Write a labelled DIR under ``out`` (see the module's docstring): per portrait ``per_photo``
    bona fide sequences and ``per_photo`` sequences of each attack species in ``attacks`` (a subset of
    ``SYNTH_ATTACKS``), ``frames`` frames each. Returns the sequence count per label."""
    from fovea.convert.samples import sample

    unknown = [a for a in attacks if a not in SYNTH_ATTACKS]
    if unknown or not attacks:
        raise ValueError(
            f"attack species {', '.join(unknown) or '(none)'}: choose from {', '.join(SYNTH_ATTACKS)}"
        )

    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}

    def write(label: str, name: str, images: list[bytes]) -> None:
        folder = out / label / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(images):
            (folder / f"{i:03d}.jpg").write_bytes(data)
        counts[label] = counts.get(label, 0) + 1

    for photo_name in photos:
        photo = Image.open(sample(photo_name)).convert("RGB")
        crop, landmarks = portrait(faces, photo)
        print_photo = Image.fromarray(crop)
        for k in range(per_photo):
            turn = rng.uniform(20, 35) * rng.choice([-1, 1])
            start = -turn / 2 + rng.uniform(-3, 3)
            yaw_turn = rng.uniform() < 2 / 3
            angles = start + turn * np.linspace(0, 1, frames)
            views = [
                head_view(crop, landmarks, a if yaw_turn else 0.0, 0.0 if yaw_turn else a) for a in angles
            ]
            write(BONA_FIDE, f"{photo_name}-{k}", [_jpeg(v, rng) for v in views])
            for species in attacks:
                poses = _attack_poses(rng, species, frames)
                if species in BENT_ATTACKS:  # radius 0.5-2 print widths, either way round
                    radius = rng.uniform(0.5, 2) * PRINT_WIDTH_MM * rng.choice([-1.0, 1.0])
                    shots = [
                        bent_photo_view(
                            print_photo,
                            pose,
                            d,
                            (640, 480),
                            PRINT_WIDTH_MM,
                            radius_mm=radius,
                            axis=BENT_ATTACKS[species],
                        )
                        for pose, d in poses
                    ]
                else:
                    shots = [
                        photo_view(print_photo, pose, d, (640, 480), PRINT_WIDTH_MM) for pose, d in poses
                    ]
                if species.startswith("screen"):
                    shots = [screen_look(s, rng) for s in shots]
                write(f"{ATTACK}/{species}", f"{photo_name}-{k}", [_jpeg(s, rng) for s in shots])
    return counts


def write_synthetic_set(
    out: Path,
    *,
    seed: int = 7,
    per_photo: int = 2,
    frames: int = 6,
    photos: Sequence[str] = SYNTH_PHOTOS,
    attacks: Sequence[str] = SYNTH_ATTACKS,
    model_repository: Path | None = None,
) -> dict[str, int]:
    """``fovea faces pad-synth OUT``: :func:`write_synthetic_dir` into ``out`` (missing or empty) with the
    face detector of ``model_repository`` (default: the repository's ``model_repository/``) in this process.

    Raises:
        ValueError: ``out`` is not empty, an unknown portrait or attack species.
    """
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty")
    faces = InProcessFaces(model_repository or default_repository())
    return write_synthetic_dir(
        out, faces, seed=seed, per_photo=per_photo, frames=frames, photos=photos, attacks=attacks
    )


__all__ = [
    "DOOR_ACCEPTED",
    "DOOR_DETECTED",
    "DoorAnswer",
    "door_answer",
    "LabelledSequence",
    "RefusedSequence",
    "portrait",
    "PadEvalReport",
    "SequenceScore",
    "evaluate",
    "evaluate_door",
    "evaluate_in_process",
    "evaluate_through_door",
    "find_sequences",
    "score_sequences",
    "write_synthetic_dir",
    "write_synthetic_set",
]
