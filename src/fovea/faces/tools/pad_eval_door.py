"""``fovea faces pad-eval DIR --door DOOR``: the labelled set sent to a deployed door through the gateway,
each sequence one VerifyAccess burst (see :mod:`fovea.faces.tools.pad_eval`'s docstring for the two rows it
reports and what is left out)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fovea.client import AccessResult, FoveaClient
from fovea.faces.tools.core.accuracy import pad_report
from fovea.faces.tools.pad_eval import (
    BONA_FIDE,
    DOOR_CHECK,
    PadEvalReport,
    RefusedSequence,
    SequenceScore,
    _even,
    find_sequences,
)

DOOR_ACCEPTED = frozenset({"match", "no_match", "unknown_identity"})
"""VerifyAccess reason kinds of a burst no presentation-attack defence denied (it was matched or not)."""
DOOR_DETECTED = frozenset({"pad", "mixed_faces", "liveness", "passive", "challenge_not_met"})
"""VerifyAccess reason kinds of a burst a presentation-attack defence denied."""
DOOR_NO_FACE = "no_face"
"""The reason kind of a burst with no usable face: a failure to acquire, counted apart from the door row's
rates (ISO/IEC 30107-3)."""


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
    fta: dict[str, int] = {}
    for seq in [*bona, *(s for v in attacks.values() for s in v)]:
        frames = _even(seq.frames, max_frames)
        answer = ask([p.read_bytes() for p in frames])
        kind = answer.reason_kind
        if kind == DOOR_NO_FACE:
            fta[seq.species] = fta.get(seq.species, 0) + 1
            continue
        if kind not in DOOR_ACCEPTED and kind not in DOOR_DETECTED:
            refused.append(RefusedSequence(seq.name, seq.species, kind, answer.reason))
            continue
        scores = {DOOR_CHECK: 1.0 if kind in DOOR_ACCEPTED else 0.0}
        if answer.pad_verdict != "PAD_NOT_CHECKED":
            # An undetermined burst (UNDECIDED) keeps its parallax, as in process; nan: the check could not tell.
            scores[answer.pad_check] = answer.pad_score
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
        failures_to_acquire=fta,
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


__all__ = [
    "DOOR_ACCEPTED",
    "DOOR_DETECTED",
    "DoorAnswer",
    "door_answer",
    "evaluate_door",
    "evaluate_through_door",
]
