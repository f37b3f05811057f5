"""Door access: per-door policies, the pluggable liveness step, and the GRANT / DENY decision.

Everything here is pure: the service gathers what happened (per-frame distances, the liveness result, any
failure) and :func:`decide` turns it into a decision with a reason a person can read. Anything unexpected is
a DENY: :func:`deny` builds one from a failure.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from fovea.contracts.face_detector import DetectedFaces
from fovea.faces.access.core.challenge import (
    CHALLENGE_POLICIES,
    DEFAULT_KINDS,
    MOTION_KINDS,
    ChallengeResult,
    check_kinds,
)
from fovea.faces.access.core.hours import OpeningHours
from fovea.faces.access.core.pad import PadResult, PadVerdict, burst_spread
from fovea.faces.access.core.passive import (
    PASSIVE_CHECKS,
    PASSIVE_POLICIES,
    PassiveResult,
    check_available,
    trained_name,
)
from fovea.faces.recognition.core.records import check_door_id, check_gallery_id


class Decision(enum.Enum):
    GRANT = "GRANT"
    DENY = "DENY"


class Liveness(enum.Enum):
    NOT_CHECKED = "NOT_CHECKED"
    LIVE = "LIVE"
    SPOOF = "SPOOF"


class LivenessCheck(Protocol):
    """A liveness step: the decoded frames (H,W,3 uint8 RGB; a large JPEG frame may be decoded at reduced
    size) and the face used in each, in that frame's decoded pixels (None: no face)."""

    name: str

    async def check(
        self, frames: Sequence[np.ndarray], faces: Sequence[DetectedFaces | None]
    ) -> Liveness: ...


class NoLivenessCheck:
    """No liveness check configured: every result is NOT_CHECKED (the door policy decides what that means)."""

    name = "none"

    async def check(self, frames: Sequence[np.ndarray], faces: Sequence[DetectedFaces | None]) -> Liveness:
        return Liveness.NOT_CHECKED


# Known liveness checks by name; a policy naming another one fails at start-up.
LIVENESS_CHECKS: dict[str, Callable[[], LivenessCheck]] = {"none": NoLivenessCheck}


# What a door does with presentation-attack detection (the multi-frame geometry check, fovea.faces.access.core.pad):
# not run; run and recorded (response and audit) without deciding; run, and anything but BONA_FIDE is DENY.
PAD_POLICIES = ("off", "record", "require")
# Which geometry the PAD stage runs: the 5-point check (fovea.faces.access.core.pad), or that and the dense check on
# the face mesh together (fovea.faces.access.core.pad_dense.combine; needs the face_mesh model).
PAD_CHECKS = ("geometry", "dense")
# A snapshot of the burst (its middle frame, as a JPEG) published to the door's MQTT snapshot topic
# (fovea.faces.events.mqtt): never, for each DENY, for every decision. Nothing else ever carries an image.
SNAPSHOT_POLICIES = ("off", "deny", "always")
# What a door that requires PAD does with an undetermined geometry answer (too little motion to tell): deny it
# (the behaviour before three answers); accept it when the request carries a challenge that was met, else
# deny asking for one (challenge_missing); let the passive check (which the door then requires) decide.
PAD_UNDETERMINED = ("deny", "challenge", "passive")


@dataclass(frozen=True)
class DoorPolicy:
    liveness_check: str = "none"  # a key of LIVENESS_CHECKS
    deny_unchecked_liveness: bool = False  # NOT_CHECKED -> DENY
    # Frames whose face must match the claimed identity; None = every frame that holds a face.
    min_matching_frames: int | None = None
    threshold: float | None = None  # stricter match threshold for this door; None = the gallery's
    # A burst whose faces are not all one person (two faces as far apart as the threshold) is DENY unless
    # this is set; then only min_matching_frames decides.
    allow_mixed_faces: bool = False
    pad: str = "off"  # one of PAD_POLICIES
    pad_check: str = "geometry"  # one of PAD_CHECKS
    # The gallery the door uses: a request naming another one is DENY (bad_request), one naming none uses
    # it. None: the request names the gallery.
    gallery: str | None = None
    # Active challenge (fovea.faces.access.core.challenge): one of CHALLENGE_POLICIES, and the kinds drawn from.
    challenge: str = "off"
    challenge_kinds: tuple[str, ...] = DEFAULT_KINDS
    challenge_moves: int = 1  # 2: two different motions of challenge_kinds in a random order, both in order
    hours: OpeningHours | None = None  # when the door opens; None = always
    # Single-frame passive presentation-attack check (fovea.faces.access.core.passive): one of PASSIVE_POLICIES,
    # and which check (a key of PASSIVE_CHECKS).
    passive: str = "off"
    passive_check: str = "none"
    snapshot: str = "off"  # one of SNAPSHOT_POLICIES
    pad_undetermined: str = "deny"  # one of PAD_UNDETERMINED

    def __post_init__(self) -> None:
        if self.snapshot not in SNAPSHOT_POLICIES:
            raise ValueError(
                f"unknown snapshot policy {self.snapshot!r}; known: {', '.join(SNAPSHOT_POLICIES)}"
            )
        if self.pad not in PAD_POLICIES:
            raise ValueError(f"unknown pad policy {self.pad!r}; known: {', '.join(PAD_POLICIES)}")
        if self.pad_check not in PAD_CHECKS:
            raise ValueError(f"unknown pad_check {self.pad_check!r}; known: {', '.join(PAD_CHECKS)}")
        if self.challenge not in CHALLENGE_POLICIES:
            raise ValueError(
                f"unknown challenge policy {self.challenge!r}; known: {', '.join(CHALLENGE_POLICIES)}"
            )
        object.__setattr__(self, "challenge_kinds", check_kinds(self.challenge_kinds))
        if self.challenge_moves not in (1, 2) or isinstance(self.challenge_moves, bool):
            raise ValueError(f"challenge_moves must be 1 or 2, got {self.challenge_moves!r}")
        if self.challenge_moves == 2 and sum(k in MOTION_KINDS for k in self.challenge_kinds) < 2:
            raise ValueError("challenge_moves 2 needs two head motions among challenge_kinds")
        if self.gallery is not None:
            check_gallery_id(self.gallery)
        if self.hours is not None and not isinstance(self.hours, OpeningHours):
            raise ValueError("hours must be an OpeningHours (from {'tz': ..., 'open': [...]})")
        if self.passive not in PASSIVE_POLICIES:
            raise ValueError(f"unknown passive policy {self.passive!r}; known: {', '.join(PASSIVE_POLICIES)}")
        if self.passive_check not in PASSIVE_CHECKS and trained_name(self.passive_check) is None:
            raise ValueError(
                f"unknown passive check {self.passive_check!r}; known: {', '.join(sorted(PASSIVE_CHECKS))}, "
                "trained:<name>"
            )
        if self.passive != "off" and self.passive_check == "none":
            raise ValueError(f"passive {self.passive!r} needs a passive_check other than 'none'")
        if self.passive != "off":
            check_available(self.passive_check)
        if self.pad_undetermined not in PAD_UNDETERMINED:
            raise ValueError(
                f"unknown pad_undetermined {self.pad_undetermined!r}; known: {', '.join(PAD_UNDETERMINED)}"
            )
        if self.pad_undetermined == "passive" and self.passive != "require":
            raise ValueError("pad_undetermined 'passive' relies on the passive check: set passive 'require'")
        if self.pad_undetermined == "challenge" and self.challenge == "off":
            raise ValueError(
                "pad_undetermined 'challenge' asks for a challenge: set challenge 'optional' or 'require'"
            )
        if self.liveness_check not in LIVENESS_CHECKS:
            raise ValueError(
                f"unknown liveness check {self.liveness_check!r}; known: {', '.join(sorted(LIVENESS_CHECKS))}"
            )
        if self.min_matching_frames is not None and (
            isinstance(self.min_matching_frames, bool)
            or not isinstance(self.min_matching_frames, int)
            or self.min_matching_frames < 1
        ):
            raise ValueError(
                f"min_matching_frames must be an integer >= 1 (or null: every frame with a face), "
                f"got {self.min_matching_frames!r}"
            )
        if self.threshold is not None and not 0 < self.threshold <= 4:
            raise ValueError(f"threshold must be within (0, 4], got {self.threshold}")


@dataclass(frozen=True)
class DoorPolicies:
    default: DoorPolicy = field(default_factory=DoorPolicy)
    doors: Mapping[str, DoorPolicy] = field(default_factory=dict)

    def for_door(self, door_id: str) -> DoorPolicy:
        return self.doors.get(door_id, self.default)

    def wants_snapshot(self, door_id: str, decision: Decision) -> bool:
        """Whether the door's policy asks for a snapshot of a burst so decided."""
        wanted = self.for_door(door_id).snapshot
        return wanted == "always" or (wanted == "deny" and decision is Decision.DENY)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], default: DoorPolicy | None = None) -> DoorPolicies:
        """``{"default": {...}, "doors": {"door-7": {...}}}``; each policy takes the fields of
        :class:`DoorPolicy`. Unknown keys are refused (``ValueError`` naming them)."""
        unknown = set(raw) - {"default", "doors"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)} in door policies; expected 'default', 'doors'")
        base = default or DoorPolicy()
        if "default" in raw:
            base = _policy(raw["default"], "default")
        doors = raw.get("doors", {})
        if not isinstance(doors, Mapping):
            raise ValueError("'doors' must map door ids to policies")
        policies = {}
        for door_id, policy in doors.items():
            try:
                check_door_id(str(door_id))
            except ValueError as exc:
                raise ValueError(f"door policies: {exc}") from exc
            policies[str(door_id)] = _policy(policy, f"door {door_id!r}")
        return cls(base, policies)


def _policy(raw: Any, what: str) -> DoorPolicy:
    if not isinstance(raw, Mapping):
        raise ValueError(f"the {what} policy must be an object")
    fields = set(DoorPolicy.__dataclass_fields__)
    unknown = set(raw) - fields
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)} in the {what} policy; known: {sorted(fields)}")
    try:
        raw = dict(raw)
        if raw.get("hours") is not None:
            raw["hours"] = OpeningHours.from_dict(raw["hours"])
        return DoorPolicy(**raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the {what} policy is invalid: {exc}") from exc


@dataclass(frozen=True)
class FrameOutcome:
    """One frame: the distance of its face to the claimed identity, or why there is none."""

    distance: float | None = None
    problem: str | None = None  # e.g. "no face", "image could not be decoded: ..."


# Why a decision was taken, as a small fixed set (metrics labels); the reason text says it in full.
REASON_KINDS = (
    "match",
    "no_match",
    "no_face",
    "mixed_faces",
    "liveness",
    "pad",
    "bad_request",
    "unknown_identity",
    "unavailable",
    "timeout",
    "error",
    "closed_hours",
    "challenge_missing",
    "challenge_invalid",
    "challenge_expired",
    "challenge_reused",
    "challenge_not_met",
    "replay",
    "passive",
)


@dataclass(frozen=True)
class AccessResult:
    decision: Decision
    reason: str
    kind: str  # one of REASON_KINDS
    distance: float  # best distance over the frames (nan when no frame had a face)
    threshold: float
    liveness: Liveness
    matching_frames: int
    frame_count: int
    pad: PadResult | None = None  # None: not run (the door's pad policy is off, or no decision was reached)
    challenge: ChallengeResult | None = None  # None: the request carried no challenge, or it failed before
    passive: PassiveResult | None = (
        None  # None: the door's passive policy is off (or no decision was reached)
    )


def decide(
    door_id: str,
    frames: Sequence[FrameOutcome],
    threshold: float,
    policy: DoorPolicy,
    liveness: Liveness,
    *,
    spread: float = 0.0,
    not_enrolled: str | None = None,
    pad: PadResult | None = None,
    challenge: ChallengeResult | None = None,
    passive_attack: str | None = None,
    passive: PassiveResult | None = None,
) -> AccessResult:
    """GRANT only when the frames' faces are one person (``spread`` < threshold, see :func:`burst_spread`,
    unless ``policy.allow_mixed_faces``), at least ``policy.min_matching_frames`` frames (default: every
    frame with a face) have distance < threshold, and the liveness result is acceptable to the policy;
    otherwise DENY with the first reason that applies. ``not_enrolled`` says why the claimed identity has
    nothing to compare with (its frames then carry no distance: ``inf``). ``pad``: the presentation-attack
    check's result, kept in the decision; with ``policy.pad == "require"`` anything but BONA_FIDE (or no
    result) is DENY, with the check's first reason. ``challenge``: the active challenge's motion check;
    not met is DENY (``challenge_not_met``) after the PAD check. ``passive_attack``: why the passive
    single-frame check says attack, where the door requires it (DENY ``passive``); ``passive``: that check's
    result, kept in the decision. An UNDECIDED PAD result at a door that requires PAD is what
    ``policy.pad_undetermined`` says: DENY ``pad``; accepted with a met challenge, else DENY
    ``challenge_missing``; or left to the passive check."""
    if policy.threshold is not None:
        threshold = min(threshold, policy.threshold)
    distances = [f.distance for f in frames if f.distance is not None]
    best = min(distances) if distances else float("nan")
    matching = sum(d < threshold for d in distances)
    needed = policy.min_matching_frames or len(distances)

    def result(decision: Decision, kind: str, reason: str) -> AccessResult:
        return AccessResult(
            decision, reason, kind, best, threshold, liveness, matching, len(frames), pad, challenge, passive
        )

    if not frames:
        return result(Decision.DENY, "bad_request", "no frames")
    if not distances:
        problems = sorted({f.problem or "no face" for f in frames})
        return result(
            Decision.DENY, "no_face", f"no usable face in {len(frames)} frame(s): {'; '.join(problems)}"
        )
    if spread >= threshold and not policy.allow_mixed_faces:
        return result(
            Decision.DENY,
            "mixed_faces",
            f"the frames show different people: two faces are {spread:.3f} apart, threshold {threshold:.3f}",
        )
    undetermined = pad is not None and pad.verdict is PadVerdict.UNDECIDED
    if (
        policy.pad == "require"
        and undetermined
        and policy.pad_undetermined == "challenge"
        and challenge is None
    ):
        why = pad.reasons[0] if pad is not None and pad.reasons else ""
        return result(
            Decision.DENY,
            "challenge_missing",
            f"the presentation-attack check could not tell ({why}): begin a challenge and send the burst with it",
        )
    accepted = undetermined and policy.pad_undetermined != "deny"
    if policy.pad == "require" and not accepted and (pad is None or pad.verdict is not PadVerdict.BONA_FIDE):
        why = pad.reasons[0] if pad is not None and pad.reasons else "presentation-attack check: not run"
        verdict = "NOT_CHECKED" if pad is None else pad.verdict.value
        return result(Decision.DENY, "pad", f"presentation attack suspected ({verdict}): {why}")
    if challenge is not None and not challenge.met:
        return result(Decision.DENY, "challenge_not_met", challenge.reason)
    if passive_attack is not None:
        return result(Decision.DENY, "passive", f"presentation attack suspected: {passive_attack}")
    if liveness is Liveness.SPOOF:
        return result(Decision.DENY, "liveness", "liveness check: spoof")
    if liveness is Liveness.NOT_CHECKED and policy.deny_unchecked_liveness:
        return result(Decision.DENY, "liveness", f"liveness not checked and door {door_id!r} requires it")
    if not_enrolled is not None:
        return result(Decision.DENY, "unknown_identity", not_enrolled)
    if matching < needed:
        return result(
            Decision.DENY,
            "no_match",
            f"no match: best distance {best:.3f} {'<' if best < threshold else '>='} threshold "
            f"{threshold:.3f} ({matching}/{len(distances)} frames with a face matched, {needed} needed)",
        )
    return result(
        Decision.GRANT,
        "match",
        f"match: best distance {best:.3f} < threshold {threshold:.3f} "
        f"({matching}/{len(distances)} frames with a face matched)",
    )


ENROLLMENT_KINDS = frozenset({"no_match", "unknown_identity"})
"""Reason kinds that tell a claimed identity that is enrolled from one that is not."""


def without_enrollment(result: AccessResult) -> AccessResult:
    """``result`` as a caller who may not learn who is enrolled sees it: a DENY for no match and one for
    an identity that is not enrolled read the same ("no match", no distance)."""
    if result.kind not in ENROLLMENT_KINDS:
        return result
    return replace(result, kind="no_match", reason="no match", distance=float("nan"))


class Denied(Exception):
    """A check before the decision that ends in DENY (closed hours, a challenge, a replay, a gallery the
    door does not use): ``kind`` is one of REASON_KINDS."""

    def __init__(self, kind: str, reason: str) -> None:
        if kind not in REASON_KINDS:
            raise ValueError(f"unknown reason kind {kind!r}; known: {', '.join(REASON_KINDS)}")
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def door_gallery(policy: DoorPolicy, requested: str) -> str:
    """The gallery a request at a door uses: the door's when the request names none; ``Denied``
    (bad_request) when the request names another one than the door's."""
    if policy.gallery is None:
        return requested
    if requested and requested != policy.gallery:
        raise Denied("bad_request", f"this door uses gallery {policy.gallery!r}, not {requested!r}")
    return policy.gallery


def check_hours(policy: DoorPolicy, at: datetime.datetime) -> None:
    """``Denied`` (closed_hours) when the door's hours do not include ``at`` (an aware datetime)."""
    if policy.hours is not None and not policy.hours.is_open(at):
        raise Denied("closed_hours", f"the door is closed at this time ({policy.hours.describe(at)})")


def deny(kind: str, reason: str, threshold: float = 0.0, frame_count: int = 0) -> AccessResult:
    """A DENY for a failure before or outside the decision (bad request, dependency down, timeout)."""
    if kind not in REASON_KINDS:
        raise ValueError(f"unknown reason kind {kind!r}; known: {', '.join(REASON_KINDS)}")
    return AccessResult(
        Decision.DENY, reason, kind, float("nan"), threshold, Liveness.NOT_CHECKED, 0, frame_count
    )


__all__ = [
    "PAD_UNDETERMINED",
    "LIVENESS_CHECKS",
    "PAD_CHECKS",
    "PAD_POLICIES",
    "REASON_KINDS",
    "SNAPSHOT_POLICIES",
    "AccessResult",
    "Decision",
    "Denied",
    "DoorPolicies",
    "DoorPolicy",
    "FrameOutcome",
    "Liveness",
    "LivenessCheck",
    "NoLivenessCheck",
    "ENROLLMENT_KINDS",
    "burst_spread",
    "check_hours",
    "decide",
    "deny",
    "door_gallery",
    "without_enrollment",
]
