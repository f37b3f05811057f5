"""The door's active challenge: a short-lived signed request to move the head a given way, and the check that
a burst of frames shows that motion.

``BeginAccess(door)`` issues a :class:`Challenge` (a random id, one kind drawn from the door's kinds, an
expiry) with a token: ``<kind>.<expires_unix_ms>.<mac>``, ``mac`` = HMAC-SHA256 under the server's secret of
``v1|<id>|<door>|<kind>|<expiry>`` (base64url). The token carries what the server needs to check it, so any
replica holding the secret can (no state until it is used); a changed kind, expiry, door or id breaks the
mac. Single use is the service's part (a Redis key per challenge id, see ``fovea.faces.access.challenge_store``).

Kinds are the motions the 5 MTCNN landmarks can show, and a blink (from the face mesh). The nose tip
stands about 0.35 inter-ocular distances (IOD) in front of the plane of the eyes and mouth corners; its position in that plane's canonical
frame (:func:`fovea.faces.access.core.pad.canonical_nose`, x towards the image's right, y down, unit the IOD) moves
by about ``0.35 * sin(angle)`` as the head turns or nods, and does not move at all for a flat photo or
screen, however it is moved (the position is a projective invariant of the five points).

- ``turn_left`` / ``turn_right``: the person turns the head to *their own* left / right. The camera of a
  door faces the person and is not mirrored, so the person's left is the image's right: for ``turn_left``
  the nose moves towards the image's right (canonical x grows), for ``turn_right`` towards the image's left.
  A mirrored camera (a selfie preview) would swap them: send unmirrored frames.
- ``look_up`` / ``look_down``: the head tilts back / forward; the nose tip moves towards the eyes / the
  mouth in the canonical frame (canonical y falls / grows).
- ``blink``: the person blinks. It needs the eyelids, which MTCNN's five points do not have: the face mesh
  (model ``face_mesh``, :mod:`fovea.faces.recognition.core.mesh`) gives each frame's eye contours and their eye aspect
  ratio (EAR). A blink is the EAR falling at least ``min_drop`` (a fraction) below the open-eye level and
  coming back within the burst: for some frame ``k`` (not the first or last usable one), ``1 - EAR[k] /
  min(max(EAR before k), max(EAR after k))`` >= ``min_drop`` (:func:`blink_drop`). A print has a fixed EAR
  (it moves by landmark noise only); a replayed video of a blink is what the geometry check and the replay
  check are for.

Two moves (a door's ``challenge_moves: 2``): the kind is two different motions joined by ``+`` in the
order asked, e.g. ``turn_left+look_up`` ("turn your head slowly to your left, then tilt your head slowly
back, looking up"), drawn at random in a random order when the challenge is issued, so a recorded video
cannot anticipate it: with the two turns and two nods there are 12 ordered pairs, a replayed one-move video
shows at most one of them and never both in order. The burst meets it when, for some frame ``k``, the
frames up to ``k`` travel ``min_motion`` in the first direction and the frames from ``k`` on travel
``min_motion`` in the second (:func:`check_sequence`; each part a Theil-Sen travel as below).

The motion is the signed travel of the canonical nose from the first usable frame to the last along the
asked direction: a robust straight-line fit (Theil-Sen, as the geometry check's score) over the frames, so
a single misplaced landmark does not make or break it.

All functions are pure; time, randomness and the secret are arguments.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fovea.faces.access.core.pad import canonical_nose

# The motions a challenge can ask for, with the direction the canonical nose must travel (x right, y down).
CHALLENGE_DIRECTIONS: dict[str, tuple[float, float]] = {
    "turn_left": (1.0, 0.0),  # the person's left = the image's right (a camera facing them, unmirrored)
    "turn_right": (-1.0, 0.0),
    "look_up": (0.0, -1.0),
    "look_down": (0.0, 1.0),
}
MOTION_KINDS = tuple(CHALLENGE_DIRECTIONS)
BLINK = "blink"
CHALLENGE_KINDS = (*MOTION_KINDS, BLINK)
DEFAULT_KINDS = ("turn_left", "turn_right")
SEQUENCE_SEP = "+"  # joins the moves of a two-move challenge's kind, in the order asked


def moves(kind: str) -> tuple[str, ...]:
    """The motions of a kind, in order: one for a single kind, two for ``a+b``."""
    return tuple(kind.split(SEQUENCE_SEP))


def valid_kind(kind: str) -> bool:
    """A known single kind, or two different motion kinds joined by ``+``."""
    parts = moves(kind)
    if len(parts) == 1:
        return kind in CHALLENGE_KINDS
    return len(parts) == 2 and parts[0] != parts[1] and all(p in MOTION_KINDS for p in parts)


# What a door does with challenges: none issued or checked; checked when the request carries one; every
# request must carry one (a request without one is DENY).
CHALLENGE_POLICIES = ("off", "optional", "require")
INSTRUCTIONS = {
    "turn_left": "turn your head slowly to your left",
    "turn_right": "turn your head slowly to your right",
    "look_up": "tilt your head slowly back, looking up",
    "look_down": "tilt your head slowly forward, looking down",
    BLINK: "look at the camera and blink once",
}
# The reason kinds of the challenge's DENYs (see fovea.faces.access.core.access.REASON_KINDS).
MISSING, INVALID, EXPIRED, REUSED, NOT_MET = (
    "challenge_missing",
    "challenge_invalid",
    "challenge_expired",
    "challenge_reused",
    "challenge_not_met",
)
_ID = re.compile(r"[0-9a-f]{32}")
# A token's parts, checked with fullmatch on ASCII text before anything else is done with them: the expiry in
# unix ms (digits only: str.isdigit() also takes "²³", which int() refuses) and the mac, 32 bytes in base64url
# without padding (43 characters).
_EXPIRY = re.compile(r"[0-9]{1,16}")
_MAC = re.compile(r"[A-Za-z0-9_-]{43}")


def check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    """``kinds`` as a tuple, each known, no duplicates, at least one; ``ValueError`` naming the known ones."""
    if isinstance(kinds, str) or not isinstance(kinds, Sequence):
        raise ValueError(f"challenge_kinds must be a list of kinds, got {kinds!r}")
    out = tuple(kinds)
    unknown = [k for k in out if k not in CHALLENGE_KINDS]
    if unknown:
        raise ValueError(f"unknown challenge kinds {unknown}; known: {', '.join(CHALLENGE_KINDS)}")
    if not out or len(set(out)) != len(out):
        raise ValueError(f"challenge_kinds must list at least one kind, each once, got {list(out)}")
    return out


class ChallengeError(Exception):
    """A challenge that cannot be accepted; ``kind`` is the DENY's reason kind."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class Challenge:
    challenge_id: str  # 32 hex digits
    door_id: str
    kind: str  # one of CHALLENGE_KINDS
    expires_unix_ms: int

    @property
    def instruction(self) -> str:
        return ", then ".join(INSTRUCTIONS[k] for k in moves(self.kind))


def _mac(secret: bytes, challenge: Challenge) -> str:
    message = f"v1|{challenge.challenge_id}|{challenge.door_id}|{challenge.kind}|{challenge.expires_unix_ms}"
    digest = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token(secret: bytes, challenge: Challenge) -> str:
    """The challenge's token: ``<kind>.<expires_unix_ms>.<mac>`` (see the module's docstring)."""
    if len(secret) < 16:
        raise ValueError("the challenge secret must be at least 16 bytes")
    return f"{challenge.kind}.{challenge.expires_unix_ms}.{_mac(secret, challenge)}"


def issue(
    secret: bytes,
    door_id: str,
    kinds: Sequence[str],
    now_ms: int,
    lifetime_ms: int,
    *,
    choose: Callable[[Sequence[str]], str] = secrets.choice,
    new_id: Callable[[], str] = lambda: secrets.token_hex(16),
    count: int = 1,
) -> tuple[Challenge, str]:
    """A new challenge for ``door_id`` (one of ``kinds`` drawn by ``choose``; with ``count`` 2 two
    different motion kinds of them, the first drawn then the second from the rest), valid ``lifetime_ms``
    from ``now_ms``, and its token."""
    if lifetime_ms <= 0:
        raise ValueError(f"lifetime_ms must be > 0, got {lifetime_ms}")
    kinds = check_kinds(kinds)
    if count == 1:
        kind = choose(kinds)
    elif count == 2:
        motions = [k for k in kinds if k in MOTION_KINDS]
        if len(motions) < 2:
            raise ValueError(f"two moves need two motion kinds among {list(kinds)}")
        first = choose(motions)
        kind = first + SEQUENCE_SEP + choose([k for k in motions if k != first])
    else:
        raise ValueError(f"a challenge has 1 or 2 moves, got {count}")
    challenge = Challenge(new_id(), door_id, kind, now_ms + lifetime_ms)
    return challenge, token(secret, challenge)


def verify(secret: bytes, challenge_id: str, token_text: str, door_id: str, now_ms: int) -> Challenge:
    """The challenge ``token_text`` stands for, when its mac is right for ``challenge_id`` and ``door_id``
    and it has not expired at ``now_ms``; else :class:`ChallengeError` (``challenge_invalid`` or
    ``challenge_expired``). The mac is checked first, so an expiry the caller changed is invalid, not
    expired. Any malformed id or token (not ASCII, parts that do not fullmatch their pattern) is
    ``challenge_invalid`` too: nothing a caller sends raises anything else. Single use is not checked here."""
    parts = token_text.split(".")
    if (
        not challenge_id.isascii()
        or not token_text.isascii()
        or not _ID.fullmatch(challenge_id)
        or len(parts) != 3
        or not _EXPIRY.fullmatch(parts[1])
        or not _MAC.fullmatch(parts[2])
    ):
        raise ChallengeError(INVALID, "challenge: malformed challenge id or token")
    kind, expiry, mac = parts[0], int(parts[1]), parts[2].encode("ascii")
    challenge = Challenge(challenge_id, door_id, kind, expiry)
    if not valid_kind(kind) or not hmac.compare_digest(mac, _mac(secret, challenge).encode()):
        raise ChallengeError(
            INVALID,
            "challenge: the token's signature does not match (challenge for another door, or altered)",
        )
    if now_ms >= expiry:
        raise ChallengeError(EXPIRED, f"challenge: expired {now_ms - expiry} ms ago")
    return challenge


@dataclass(frozen=True)
class MotionSettings:
    """``min_motion``: how far the canonical nose must travel in the asked direction, in IOD. 0.12 IOD is a
    turn of about asin(0.12 / 0.35) = 20 degrees for an average face (the geometry check asks the same
    travel in any direction); a flat photo moves it by landmark noise only (about 0.04 IOD per frame,
    averaged by the fit). ``min_frames``: usable frames needed to measure."""

    min_motion: float = 0.12
    min_frames: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.min_motion < 1:
            raise ValueError(f"min_motion must be within (0, 1) IOD, got {self.min_motion}")
        if self.min_frames < 2:
            raise ValueError(f"min_frames must be >= 2, got {self.min_frames}")


@dataclass(frozen=True)
class BlinkSettings:
    """``min_drop``: how far the eye aspect ratio must fall below the open-eye level, as a fraction of it,
    and come back. 0.4: an open eye's EAR is 0.25-0.35 and a closed one's below 0.1 (a drop of 60-100%),
    while the face mesh's EAR of an open eye jitters by about 0.02-0.03 (under 10%) from frame to frame, so
    0.4 is four such jitters and still well short of a full closure (a half-closed eye at 30 frames/s is
    often all a 3-15 frame burst catches). ``min_frames``: usable frames (a face mesh) needed: 3, one
    before, one during and one after."""

    min_drop: float = 0.4
    min_frames: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.min_drop < 1:
            raise ValueError(f"min_drop must be within (0, 1), got {self.min_drop}")
        if self.min_frames < 3:
            raise ValueError(f"min_frames must be >= 3 (open, closed, open), got {self.min_frames}")


def blink_drop(ear: np.ndarray) -> float:
    """(F,) eye aspect ratios of a burst's usable frames, in order -> the deepest closure that opens again:
    the largest ``1 - EAR[k] / min(max(EAR[:k]), max(EAR[k+1:]))`` over the inner frames (0 when the eyes
    never close below both sides' open level; nan with fewer than 3 frames)."""
    e = np.asarray(ear, np.float64).reshape(-1)
    if len(e) < 3:
        return float("nan")
    before = np.maximum.accumulate(e)[:-2]  # max(EAR[:k]) for k = 1..F-2
    after = np.maximum.accumulate(e[::-1])[::-1][2:]  # max(EAR[k+1:])
    level = np.minimum(before, after)
    with np.errstate(divide="ignore", invalid="ignore"):
        drops = np.where(level > 0, 1 - e[1:-1] / level, 0.0)
    return float(max(drops.max(), 0.0))


@dataclass(frozen=True)
class ChallengeResult:
    """The motion check of a burst against its challenge. ``motion``: the nose's signed travel along the
    asked direction in IOD (nan when too few frames); ``met`` when it is >= ``threshold``."""

    challenge_id: str
    kind: str
    met: bool
    motion: float
    threshold: float
    reason: str


def _travel(p: np.ndarray) -> np.ndarray:
    """(U >= 2, 2) positions -> (2,) Theil-Sen travel from the first to the last."""
    i, j = np.triu_indices(len(p), k=1)
    return np.asarray(np.median((p[j] - p[i]) / (j - i)[:, None], axis=0) * (len(p) - 1))


def _landmark_array(landmarks: Sequence[np.ndarray | None]) -> np.ndarray:
    """Per frame (5,2) landmarks or None -> (F,5,2) float64, rows of nan where there was no face."""
    return np.array(
        [np.full((5, 2), np.nan) if p is None else np.asarray(p, np.float64).reshape(5, 2) for p in landmarks]
    ).reshape(-1, 5, 2)


def nose_travel(landmarks: np.ndarray) -> tuple[np.ndarray, int]:
    """(F,5,2) landmarks in pixels (rows of nan for frames without a face) -> ((2,) signed travel of the
    canonical nose from the first usable frame to the last, x right / y down, in IOD; usable frames). The
    travel is the Theil-Sen slope per coordinate times the usable frames' count minus one; (nan, nan) with
    fewer than two usable frames."""
    positions, usable = canonical_nose(landmarks)
    p = positions[usable]
    if len(p) < 2:
        return np.full(2, np.nan), len(p)
    return _travel(p), len(p)


def check_blink(
    challenge: Challenge, ears: Sequence[float | None], settings: BlinkSettings
) -> ChallengeResult:
    """Does the burst (per frame the face's eye aspect ratio from its face mesh, or None: no face or no mesh)
    show a blink? ``motion`` is :func:`blink_drop` of the usable frames (a fraction), ``threshold``
    ``settings.min_drop``."""
    usable = np.array([e for e in ears if e is not None and np.isfinite(e)], np.float64)
    threshold = settings.min_drop

    def result(met: bool, motion: float, reason: str) -> ChallengeResult:
        return ChallengeResult(challenge.challenge_id, challenge.kind, met, motion, threshold, reason)

    if len(usable) < settings.min_frames:
        return result(
            False,
            float("nan"),
            f"challenge {challenge.kind}: {len(usable)} of {len(ears)} frames have eye contours, "
            f"{settings.min_frames} needed",
        )
    drop = blink_drop(usable)
    span = f"eye aspect ratio {usable.min():.3f}-{usable.max():.3f}"
    if drop >= threshold:
        return result(
            True,
            drop,
            f"challenge {challenge.kind}: met, the eyes closed by {drop:.0%} >= {threshold:.0%} ({span})",
        )
    return result(
        False,
        drop,
        f"challenge {challenge.kind}: not met, the eyes closed by {drop:.0%} and opened again, {threshold:.0%} "
        f"needed ({span})",
    )


def check_sequence(
    challenge: Challenge, landmarks: Sequence[np.ndarray | None], settings: MotionSettings
) -> ChallengeResult:
    """A two-move challenge: met when some frame ``k`` splits the usable frames so that the part up to
    ``k`` travels ``min_motion`` in the first move's direction and the part from ``k`` on in the second's.
    ``motion``: the best split's smaller travel (IOD)."""
    first, second = (CHALLENGE_DIRECTIONS[k] for k in moves(challenge.kind))
    lm = _landmark_array(landmarks)
    positions, usable = canonical_nose(lm)
    p = positions[usable]
    threshold = settings.min_motion
    needed = 2 * settings.min_frames - 1

    def result(met: bool, motion: float, reason: str) -> ChallengeResult:
        return ChallengeResult(challenge.challenge_id, challenge.kind, met, motion, threshold, reason)

    if len(p) < needed:
        return result(
            False,
            float("nan"),
            f"challenge {challenge.kind}: {len(p)} of {len(lm)} frames have usable landmarks, {needed} needed",
        )
    best, at = -np.inf, 0
    for k in range(settings.min_frames - 1, len(p) - settings.min_frames + 1):
        a = float(np.dot(_travel(p[: k + 1]), first))
        b = float(np.dot(_travel(p[k:]), second))
        if min(a, b) > best:
            best, at = min(a, b), k
    if best >= threshold:
        return result(
            True,
            best,
            f"challenge {challenge.kind}: met, both moves in order >= {threshold:.3f} IOD (split at {at})",
        )
    return result(
        False,
        best,
        f"challenge {challenge.kind}: not met, the weaker of the two moves in order reached {best:.3f} IOD, "
        f"{threshold:.3f} needed",
    )


def check_motion(
    challenge: Challenge, landmarks: Sequence[np.ndarray | None], settings: MotionSettings
) -> ChallengeResult:
    """Does the burst (per frame the face's (5,2) landmarks in pixels, or None) show the challenge's
    motion? Frames whose landmarks make no usable quad are skipped; fewer than ``settings.min_frames``
    usable frames is not met."""
    if len(moves(challenge.kind)) == 2:
        return check_sequence(challenge, landmarks, settings)
    if challenge.kind not in CHALLENGE_DIRECTIONS:
        raise ValueError(f"{challenge.kind!r} is not a head motion; a blink is checked by check_blink")
    lm = _landmark_array(landmarks)
    travel, usable = nose_travel(lm)
    threshold = settings.min_motion

    def result(met: bool, motion: float, reason: str) -> ChallengeResult:
        return ChallengeResult(challenge.challenge_id, challenge.kind, met, motion, threshold, reason)

    if usable < settings.min_frames:
        return result(
            False,
            float("nan"),
            f"challenge {challenge.kind}: {usable} of {len(lm)} frames have usable landmarks, "
            f"{settings.min_frames} needed",
        )
    motion = float(np.dot(travel, CHALLENGE_DIRECTIONS[challenge.kind]))
    if motion >= threshold:
        return result(
            True,
            motion,
            f"challenge {challenge.kind}: met, the head moved {motion:.3f} IOD >= {threshold:.3f}",
        )
    return result(
        False,
        motion,
        f"challenge {challenge.kind}: not met, the head moved {motion:.3f} IOD in the asked direction, "
        f"{threshold:.3f} needed (dx {travel[0]:+.3f}, dy {travel[1]:+.3f} IOD; x is the image's right)",
    )


__all__ = [
    "BLINK",
    "CHALLENGE_DIRECTIONS",
    "CHALLENGE_KINDS",
    "CHALLENGE_POLICIES",
    "DEFAULT_KINDS",
    "EXPIRED",
    "INSTRUCTIONS",
    "INVALID",
    "MISSING",
    "MOTION_KINDS",
    "NOT_MET",
    "REUSED",
    "BlinkSettings",
    "Challenge",
    "ChallengeError",
    "ChallengeResult",
    "MotionSettings",
    "blink_drop",
    "check_blink",
    "check_kinds",
    "check_motion",
    "check_sequence",
    "moves",
    "valid_kind",
    "issue",
    "nose_travel",
    "token",
    "verify",
]
