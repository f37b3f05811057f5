"""``fovea faces pad-eval DIR`` and ``fovea faces pad-synth OUT``: presentation-attack detection measured in
the terms of ISO/IEC 30107-3 over labelled frame sequences, and a labelled set made from the repository's
own portraits to run it on.

Layout of DIR (frames of a sequence in file-name order, numbers by value: ``frame2`` before ``frame10``;
.jpg, .jpeg or .png)::

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

Through a gateway (:func:`fovea.faces.tools.pad_eval_door.evaluate_door`, ``pad-eval DIR --gateway ADDR --door DOOR``) each sequence is
sent instead as one VerifyAccess burst to a door of a deployed stack (at most ``max_frames`` frames, sampled
evenly), so a site measures its own detector, thresholds and door policy. Two rows come back: one named
after the PAD check the door runs (``geometry``, or ``geometry+dense_geometry`` where its policy says
``pad_check: dense``), from the PAD score and verdict of the responses (rates at the threshold the service
reports, or at the one given), and ``door``, the door's own decision, which has no score: a burst is classified bona fide when no
presentation-attack defence denied it (``DOOR_ACCEPTED``: match, no_match, unknown_identity) and an attack
when one did (``DOOR_DETECTED``: pad, mixed_faces, liveness, passive, challenge_not_met; no_face is a failure to acquire, counted apart). A burst
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

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fovea.common.paths import model_repository as default_repository
from fovea.contracts.face_detector import DetectedFaces
from fovea.contracts.face_embedder import EmbedderInfo
from fovea.contracts.pad_classifier import THRESHOLD
from fovea.contracts.tensors import model_parameters
from fovea.faces.access.core.access import burst_spread
from fovea.faces.access.core.pad import GeometrySettings, check_burst
from fovea.faces.access.core.pad_dense import COMBINED_CHECK, DenseSettings, check_dense, combine
from fovea.faces.config import FacesSettings
from fovea.faces.recognition.core.mesh import dense_points, mesh_to_image
from fovea.faces.recognition.pipeline import Photo, mesh_crops
from fovea.faces.tools.core.accuracy import PadReport, pad_report
from fovea.faces.tools.inprocess import InProcessFaces, run_model
from fovea.faces.tools.pad_passive import PassiveScorer, burst_crops, in_process_door
from fovea.faces.tools.pad_synth_dir import SYNTH_ATTACKS, SYNTH_PHOTOS, portrait, write_synthetic_dir
from fovea.serving.base import read_config
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


def frame_order(path: Path) -> tuple[tuple[int, int | str], ...]:
    """Sort key of a frame file: its name's runs of digits compared as numbers, the rest as text, so that
    frames numbered without leading zeros (``f2.jpg`` ... ``f10.jpg``, as cameras and ``ffmpeg -i %d``
    write them) keep the order they were taken in; zero-padded names sort as before. The order matters:
    the geometry check and the identity-change test compare consecutive frames."""
    runs = re.findall(r"\d+|\D+", path.name)
    return tuple((0, int(r)) if r.isdigit() else (1, r) for r in runs)


def _images(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=frame_order
    )


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
    reason_kind: str = (
        ""  # through a gateway: the door's reason kind for the burst; in process the door's answer
    )
    geometry: str = ""  # the geometry check's answer: live | flat | undetermined | mixed


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
    # The door row: bursts with no usable face, by label (ISO/IEC 30107-3 counts them apart from the rates).
    failures_to_acquire: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if math.isnan(x) or math.isinf(x) else round(x, 6)

        out: dict[str, Any] = {"checks": {}, "sequences": []}
        if self.door:
            out["door"] = self.door
            out["refused"] = [asdict(r) for r in self.refused]
        if self.failures_to_acquire:
            out["failures_to_acquire"] = self.failures_to_acquire
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
                    **({"reason_kind": s.reason_kind} if self.door or s.reason_kind else {}),
                    **({"geometry": s.geometry} if s.geometry else {}),
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
        if self.failures_to_acquire:
            lines.append(
                "door row: failures to acquire (no usable face), left out of its rates: "
                + ", ".join(f"{k} {v}" for k, v in self.failures_to_acquire.items())
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


PASSIVE_CHECK = "passive"
DOOR_CHECK = "door"


def score_sequences(
    faces: InProcessFaces,
    sequences: Sequence[LabelledSequence],
    geometry: GeometrySettings,
    dense: DenseSettings | None = None,
    mesh: Served | None = None,
    mesh_min_score: float = 0.5,
    passive: PassiveScorer | None = None,
    match_threshold: float = float("inf"),
) -> list[SequenceScore]:
    """Each sequence's scores: ``geometry`` (the 5-point check), and with ``dense`` and the ``face_mesh``
    model ``mesh`` also :data:`COMBINED_CHECK` (the door's ``pad_check: dense`` verdict's margin, threshold
    1); with ``passive`` (a trained check) also ``passive`` (its burst score, threshold 0.5) and ``door``
    (1 bona fide, 0 attack, nan a failure to acquire: :func:`fovea.faces.tools.pad_passive.in_process_door`;
    faces whose embeddings spread ``match_threshold`` or more apart are an attack, the door's mixed_faces)."""
    if (dense is None) != (mesh is None):
        raise ValueError("the dense check needs both its settings and the face_mesh model")
    out = []
    for seq in sequences:
        frames = _even(seq.frames, geometry.max_frames)
        photos = [faces.find_faces(path.read_bytes()) for path in frames]
        found = [None if len(p.faces) == 0 else p.faces.take([0]) for p in photos]
        landmarks = [None if f is None else f.landmarks[0] for f in found]
        burst = None
        if passive is not None:
            burst = burst_crops(faces, frames, embed=math.isfinite(match_threshold), photos=photos)
        result = check_burst(landmarks, geometry)
        scores = {"geometry": result.score}
        if dense is not None and mesh is not None:
            meshes = _meshes(mesh, photos, found, mesh_min_score)
            points = [None if m is None else dense_points(m[:, :2]) for m in meshes]
            scores[COMBINED_CHECK] = combine(result, check_dense(points, dense)).score
        n_faces = sum(p is not None for p in landmarks)
        answer = ""
        if passive is not None and burst is not None:
            scores[PASSIVE_CHECK] = passive.score(burst)
            spread = 0.0 if burst.embeddings is None else burst_spread(burst.embeddings)
            answer = in_process_door(
                result, scores[PASSIVE_CHECK], n_faces, spread=spread, match_threshold=match_threshold
            )
            scores[DOOR_CHECK] = {BONA_FIDE: 1.0, ATTACK: 0.0}.get(answer, math.nan)
        out.append(
            SequenceScore(seq.name, seq.species, len(seq.frames), n_faces, scores, answer, result.answer)
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
    passive: PassiveScorer | None = None,
    match_threshold: float = float("inf"),
) -> PadEvalReport:
    """Score every sequence under ``root`` (:func:`find_sequences`) and report each check (the dense one
    too with ``dense`` and ``mesh``; the trained ``passive`` check and the ``door`` row with ``passive``, see
    :func:`score_sequences`; ``match_threshold``: the door's mixed-faces check's). The door row leaves
    failures to acquire out of its rates and counts them."""
    bona, attacks = find_sequences(root)
    scored = score_sequences(
        faces,
        [*bona, *(s for v in attacks.values() for s in v)],
        geometry,
        dense,
        mesh,
        passive=passive,
        match_threshold=match_threshold,
    )
    thresholds = {"geometry": geometry.min_parallax}
    if dense is not None:
        thresholds[COMBINED_CHECK] = 1.0
    if passive is not None:
        thresholds[PASSIVE_CHECK] = THRESHOLD
        thresholds[DOOR_CHECK] = 0.5
    reports = {}
    fta: dict[str, int] = {}
    for check in thresholds:
        b = np.array([s.scores[check] for s in scored if s.species == BONA_FIDE])
        a = {k: np.array([s.scores[check] for s in scored if s.species == k]) for k in attacks}
        if check == DOOR_CHECK:
            fta = {BONA_FIDE: int(np.isnan(b).sum()), **{k: int(np.isnan(v).sum()) for k, v in a.items()}}
            b, a = b[~np.isnan(b)], {k: v[~np.isnan(v)] for k, v in a.items()}
            if not len(b) or not all(len(v) for v in a.values()):
                raise ValueError(f"door row: every burst of a label is a failure to acquire: {fta}")
        reports[check] = pad_report(b, a, thresholds[check], apcers if check != DOOR_CHECK else ())
    decision_only = (DOOR_CHECK,) if passive is not None else ()
    return PadEvalReport(thresholds, reports, scored, decision_only=decision_only, failures_to_acquire=fta)


def evaluate_in_process(
    root: Path,
    *,
    min_parallax: float | None = None,
    model_repository: Path | None = None,
    dense: bool = False,
    passive: str = "",
    trained_repository: Path | None = None,
) -> PadEvalReport:
    """``fovea faces pad-eval DIR``: :func:`evaluate` with the faces service's settings (``FOVEA_FACES_*``)
    and the face models of ``model_repository`` (default: the repository's ``model_repository/``) loaded
    in this process. ``min_parallax``: the geometry threshold (default the service's); ``dense``: also the
    door's ``pad_check dense`` verdict (needs the face_mesh model); ``passive``: the passive check a site
    trained (``fovea faces pad-train NAME``), its active version read from ``trained_repository`` (default
    the faces service's ``TRAINED_REPOSITORY``), and the ``door`` row of a door that requires both.

    Raises:
        ValueError: bad settings, a model that does not load, a folder that is not a labelled set.
        OSError: a file that cannot be read.
    """
    settings = FacesSettings()
    geometry = GeometrySettings(
        min_parallax=settings.pad_min_parallax if min_parallax is None else min_parallax
    )
    repository = model_repository or default_repository()
    faces = InProcessFaces(repository, settings.for_doors())
    scorer = None
    if passive:
        trained = trained_repository or settings.trained_repository
        if trained is None:
            raise ValueError("--passive needs the trained classifiers' repository: --trained-repository DIR")
        scorer = PassiveScorer(trained, passive)
    # The door row denies a burst whose faces are not one person (mixed_faces) at the embedder's default
    # threshold, as a door does with a gallery at its default.
    embedder = EmbedderInfo.from_parameters(
        model_parameters(read_config(repository / settings.embedder_model / "config.pbtxt"))
    )
    match = embedder.default_threshold if scorer is not None else float("inf")
    if not dense:
        return evaluate(root, faces, geometry, passive=scorer, match_threshold=match)
    mesh = load_from_repository("fovea.serving.face_mesh", repository / settings.mesh_model)
    checks = DenseSettings(
        min_ratio=settings.pad_dense_min_ratio, min_residual=settings.pad_dense_min_residual
    )
    return evaluate(root, faces, geometry, dense=checks, mesh=mesh, passive=scorer, match_threshold=match)


def write_synthetic_set(
    out: Path,
    *,
    seed: int = 7,
    per_photo: int = 2,
    frames: int = 6,
    photos: Sequence[str] = SYNTH_PHOTOS,
    attacks: Sequence[str] = SYNTH_ATTACKS,
    talking: int = 0,
    scenes: Sequence[str] = (),
    screens: Sequence[str] = ("phone",),
    model_repository: Path | None = None,
) -> dict[str, int]:
    """``fovea faces pad-synth OUT``: :func:`write_synthetic_dir` into ``out`` (missing or empty) with the
    face detector of ``model_repository`` (default: the repository's ``model_repository/``) in this process.

    Raises:
        ValueError: ``out`` is not empty, an unknown portrait or attack species.
    """
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty")
    faces = InProcessFaces(model_repository or default_repository(), FacesSettings().for_doors())
    return write_synthetic_dir(
        out,
        faces,
        seed=seed,
        per_photo=per_photo,
        frames=frames,
        photos=photos,
        attacks=attacks,
        talking=talking,
        scenes=scenes,
        screens=screens,
    )


__all__ = [
    "SYNTH_ATTACKS",
    "SYNTH_PHOTOS",
    "LabelledSequence",
    "RefusedSequence",
    "portrait",
    "PadEvalReport",
    "SequenceScore",
    "evaluate",
    "evaluate_in_process",
    "find_sequences",
    "frame_order",
    "score_sequences",
    "write_synthetic_dir",
    "write_synthetic_set",
]
