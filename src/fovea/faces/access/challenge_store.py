"""The door challenge's I/O: the signing key, single use of a challenge and the frames a door has seen, in
Redis (the pure part is ``fovea.faces.access.core.challenge``).

Keys (``fovea:faces`` prefix):

* ``challenge:<id>``: set (NX) when a challenge is first presented, expiring with the challenge: a second
  VerifyAccess with the same challenge finds it and is DENY ``challenge_reused``, whatever the first one's
  decision was.
* ``seen:<door>:<sha256>``: one per frame a door received (SHA-256 of the encoded bytes), kept
  ``replay_window_s``: a burst holding a frame the door has seen before is a replay (DENY ``replay``). A
  camera never sends the same bytes twice (sensor noise), a recorded burst sent again does. The check
  compares exact bytes: it stops the same frames sent again, not frames re-encoded (or changed by one
  pixel), which the challenge and the PAD checks are for. The keys are bounded by their expiry: at most
  (VerifyAccess calls per second at such doors) x ``replay_window_s`` x (distinct frames per burst) keys,
  about 200 bytes each in Redis (10 calls/s, 600 s, 10 frames: 60,000 keys, about 12 MB).

The frames are hashed in a worker thread (``asyncio.to_thread``; hashlib releases the GIL): a burst can
be ``max_photos`` frames of up to ``max_message_bytes`` in all, too much to hash in the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from fovea.common.errors import FailedPrecondition, InvalidArgument, UpstreamUnavailable
from fovea.common.server import read_internal_token
from fovea.faces.access.core import challenge as ch
from fovea.faces.access.core.access import Denied, DoorPolicy
from fovea.faces.config import FacesSettings
from fovea.faces.recognition.core.mesh import eye_aspect_ratio
from fovea.faces.recognition.core.records import check_door_id
from fovea.faces.recognition.store import PREFIX

log = logging.getLogger(__name__)

_DERIVE_LABEL = b"fovea faces challenge key v1"


def challenge_key(challenge_id: str) -> str:
    return f"{PREFIX}:challenge:{challenge_id}"


def seen_key(door_id: str, digest: str) -> str:
    return f"{PREFIX}:seen:{door_id}:{digest}"


def frame_digests(frames: Sequence[bytes]) -> list[str]:
    """SHA-256 (hex) of each frame's bytes, each distinct digest once, in order."""
    return list(dict.fromkeys(hashlib.sha256(f).hexdigest() for f in frames))


def load_secret(settings: FacesSettings) -> bytes:
    """The key challenges are signed with: ``challenge_secret_file``'s content; else derived from the
    internal token (HMAC-SHA256 of a fixed label: every replica of one stack has it, and it is not the token
    itself); else random for this process (a lone replica in development: challenges do not survive a
    restart). ``ValueError`` for a file that cannot be read or is too short."""
    path: Path | None = settings.challenge_secret_file
    if path is not None:
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise ValueError(f"challenge secret file {path}: {exc.strerror or exc}") from exc
        if len(secret) < 16:
            raise ValueError(
                f"challenge secret file {path} must hold 16 or more bytes (`fovea up` makes one)"
            )
        return secret
    if settings.internal_token_file is not None:
        token = read_internal_token(settings.internal_token_file)
        return hmac.new(token, _DERIVE_LABEL, hashlib.sha256).digest()
    log.warning("no challenge secret configured: a random one for this process (other replicas differ)")
    return secrets.token_bytes(32)


class ChallengeLedger:
    """Single use of challenges and the frames each door has seen. Redis failures raise
    ``UpstreamUnavailable`` (the door decision is then DENY ``unavailable``)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def consume(self, challenge_id: str, ttl_ms: int) -> bool:
        """Mark the challenge used; False when it already was (atomic: of two concurrent calls one wins)."""
        try:
            return bool(await self.redis.set(challenge_key(challenge_id), b"1", nx=True, px=max(ttl_ms, 1)))
        except RedisError as exc:
            raise UpstreamUnavailable(f"Redis is unavailable: {exc}") from exc

    async def seen_before(self, door_id: str, digests: Sequence[str], window_s: float) -> int:
        """Record the frames' digests for ``door_id`` for ``window_s``; how many of them were already there
        (0: none of these frames was sent to this door within the window)."""
        if not digests:
            return 0
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for digest in digests:
                    pipe.set(seen_key(door_id, digest), b"1", nx=True, px=int(window_s * 1000))
                answers = await pipe.execute()
        except RedisError as exc:
            raise UpstreamUnavailable(f"Redis is unavailable: {exc}") from exc
        return sum(1 for a in answers if not a)


class DoorChallenges:
    """Issuing challenges, and the checks a VerifyAccess passes before its decision: the challenge's
    signature, door, expiry and single use, and the burst's frames not seen before at the door."""

    def __init__(
        self,
        settings: FacesSettings,
        secret: bytes,
        ledger: ChallengeLedger,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.secret = secret
        self.ledger = ledger
        self.clock = clock
        self.motion = ch.MotionSettings(min_motion=settings.challenge_min_motion)
        self.blink = ch.BlinkSettings(min_drop=settings.blink_min_drop)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def begin(self, door_id: str, policy: DoorPolicy) -> tuple[ch.Challenge, str]:
        """A new challenge for the door (``InvalidArgument`` for a bad door id, ``FailedPrecondition`` for a
        door whose policy has challenges off)."""
        try:
            check_door_id(door_id)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from exc
        if policy.challenge == "off":
            raise FailedPrecondition(f"door {door_id!r} does not use challenges (its policy: challenge off)")
        lifetime_ms = int(self.settings.challenge_ttl_s * 1000)
        return ch.issue(
            self.secret,
            door_id,
            policy.challenge_kinds,
            self.now_ms(),
            lifetime_ms,
            count=policy.challenge_moves,
        )

    async def admit(
        self, door_id: str, challenge_id: str, token: str, policy: DoorPolicy
    ) -> ch.Challenge | None:
        """The challenge a request carries, checked and marked used; None when it carries none and the door
        does not require one. ``Denied`` with the check's kind otherwise."""
        if not challenge_id and not token:
            if policy.challenge == "require":
                raise Denied(ch.MISSING, f"door {door_id!r} requires a challenge: call BeginAccess first")
            return None
        if policy.challenge == "off":
            raise Denied(ch.INVALID, f"door {door_id!r} does not use challenges")
        now = self.now_ms()
        try:
            challenge = ch.verify(self.secret, challenge_id, token, door_id, now)
        except ch.ChallengeError as exc:
            raise Denied(exc.kind, exc.reason) from None
        if (
            any(k not in policy.challenge_kinds for k in ch.moves(challenge.kind))
            or len(ch.moves(challenge.kind)) != policy.challenge_moves
        ):
            raise Denied(ch.INVALID, f"challenge: {challenge.kind} is not one of this door's kinds")
        if not await self.ledger.consume(challenge.challenge_id, challenge.expires_unix_ms - now):
            raise Denied(ch.REUSED, "challenge: already used (a challenge answers one VerifyAccess)")
        return challenge

    async def check_replay(self, door_id: str, frames: Sequence[bytes], policy: DoorPolicy) -> None:
        """``Denied`` (replay) when a frame of the burst was sent to this door before within the window;
        checked (and the frames recorded) only at doors that require PAD or use challenges."""
        if policy.pad != "require" and policy.challenge == "off":
            return
        digests = await asyncio.to_thread(frame_digests, frames)  # not in the event loop: up to MiBs
        seen = await self.ledger.seen_before(door_id, digests, self.settings.replay_window_s)
        if seen:
            raise Denied(
                "replay",
                f"replay: {seen} frame(s) of this burst were sent to this door before "
                f"(within {self.settings.replay_window_s:.0f}s)",
            )

    def check_motion(
        self,
        challenge: ch.Challenge,
        landmarks: Sequence[np.ndarray | None],
        meshes: Sequence[np.ndarray | None] | None = None,
    ) -> ch.ChallengeResult:
        """The burst against its challenge: a head motion from the 5 landmarks per frame, a blink from the
        face meshes' eye aspect ratios (``meshes``: per frame (468, 2|3) or None; required for a blink)."""
        if challenge.kind == ch.BLINK:
            if meshes is None:
                raise ValueError("a blink challenge is checked on face meshes")
            ears = [None if m is None else float(eye_aspect_ratio(m)) for m in meshes]
            return ch.check_blink(challenge, ears, self.blink)
        return ch.check_motion(challenge, landmarks, self.motion)


__all__ = ["ChallengeLedger", "DoorChallenges", "challenge_key", "frame_digests", "load_secret", "seen_key"]
