"""The challenge's I/O against a real Redis: issuing, single use (also under concurrency), expiry by an
injected clock, tampering, replayed frames, the signing key's sources; and the pass path from BeginAccess
to a GRANT for a synthetic head that turns as asked."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis

import fovea.faces.access.challenge_store
from fovea.common.errors import FailedPrecondition, InvalidArgument
from fovea.faces.__main__ import challenge_secret
from fovea.faces.access.challenge_store import ChallengeLedger, DoorChallenges, frame_digests, load_secret
from fovea.faces.access.core.access import Decision, Denied, DoorPolicy, FrameOutcome, Liveness, decide
from fovea.faces.config import FacesSettings
from fovea.faces.tools.core.pad_synth import challenge_burst

SECRET = b"s" * 32
REQUIRE = DoorPolicy(challenge="require", challenge_kinds=("turn_left",))
OPTIONAL = DoorPolicy(challenge="optional")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
async def door(redis_url: str) -> AsyncIterator[tuple[DoorChallenges, Clock]]:
    client = aioredis.Redis.from_url(redis_url)
    clock = Clock()
    settings = FacesSettings(redis_url=redis_url, challenge_ttl_s=20, replay_window_s=60)
    yield DoorChallenges(settings, SECRET, ChallengeLedger(client), clock), clock
    await client.aclose()


async def denied(kind: str, coro: object) -> str:
    with pytest.raises(Denied) as info:
        await coro  # type: ignore[misc]
    assert info.value.kind == kind, info.value.reason
    return info.value.reason


async def test_a_challenge_is_used_once(door: tuple[DoorChallenges, Clock]) -> None:
    challenges, clock = door
    c, token = challenges.begin("front", REQUIRE)
    assert c.kind == "turn_left" and c.expires_unix_ms == int(clock.now * 1000) + 20_000
    assert await challenges.admit("front", c.challenge_id, token, REQUIRE) == c
    reason = await denied("challenge_reused", challenges.admit("front", c.challenge_id, token, REQUIRE))
    assert "already used" in reason
    # two requests racing with one challenge: exactly one is let through
    c2, token2 = challenges.begin("front", REQUIRE)
    answers = await asyncio.gather(
        *(challenges.admit("front", c2.challenge_id, token2, REQUIRE) for _ in range(8)),
        return_exceptions=True,
    )
    assert sum(a == c2 for a in answers) == 1
    assert all(isinstance(a, Denied) and a.kind == "challenge_reused" for a in answers if a != c2)


async def test_expiry_tampering_and_missing(door: tuple[DoorChallenges, Clock]) -> None:
    challenges, clock = door
    c, token = challenges.begin("front", REQUIRE)
    clock.now += 20.0
    assert "expired 0 ms ago" in await denied(
        "challenge_expired", challenges.admit("front", c.challenge_id, token, REQUIRE)
    )
    c, token = challenges.begin("front", REQUIRE)
    await denied("challenge_invalid", challenges.admit("front", c.challenge_id, token + "x", REQUIRE))
    await denied("challenge_invalid", challenges.admit("back", c.challenge_id, token, REQUIRE))
    # refused ones did not use it up: the genuine answer still works once
    assert await challenges.admit("front", c.challenge_id, token, REQUIRE) == c
    assert "call BeginAccess" in await denied("challenge_missing", challenges.admit("front", "", "", REQUIRE))
    assert await challenges.admit("side", "", "", OPTIONAL) is None
    await denied("challenge_invalid", challenges.admit("plain", c.challenge_id, token, DoorPolicy()))
    # a kind the door no longer asks for (its policy changed after the challenge was issued)
    c, token = challenges.begin("front", REQUIRE)
    await denied(
        "challenge_invalid",
        challenges.admit(
            "front", c.challenge_id, token, DoorPolicy(challenge="require", challenge_kinds=("look_up",))
        ),
    )


async def test_begin_needs_a_valid_door_that_uses_challenges(door: tuple[DoorChallenges, Clock]) -> None:
    challenges, _ = door
    with pytest.raises(FailedPrecondition, match="does not use challenges"):
        challenges.begin("plain", DoorPolicy())
    with pytest.raises(InvalidArgument, match="door_id"):
        challenges.begin("../x", REQUIRE)
    kinds = {challenges.begin("side", OPTIONAL)[0].kind for _ in range(64)}
    assert kinds == {"turn_left", "turn_right"}  # the default kinds


async def test_a_frame_seen_before_at_the_door_is_a_replay(door: tuple[DoorChallenges, Clock]) -> None:
    challenges, _ = door
    burst = [f"frame {i} {np.random.default_rng().random()}".encode() for i in range(5)]
    await challenges.check_replay("front", burst, REQUIRE)
    assert "5 frame(s)" in await denied("replay", challenges.check_replay("front", burst, REQUIRE))
    # one old frame among new ones is a replay too; another door has not seen them
    mixed = [b"new 1", b"new 2", burst[2]]
    assert "1 frame(s)" in await denied("replay", challenges.check_replay("front", mixed, REQUIRE))
    await challenges.check_replay("back", burst, REQUIRE)
    # doors that neither require PAD nor use challenges do not check (nor record)
    await challenges.check_replay("plain", burst, DoorPolicy())
    await challenges.check_replay("plain", burst, DoorPolicy())
    await challenges.check_replay(
        "vault", [b"v"] * 3, DoorPolicy(pad="require")
    )  # a still burst is one frame
    await denied("replay", challenges.check_replay("vault", [b"v"], DoorPolicy(pad="require")))
    assert frame_digests([b"a", b"a", b"b"]) == [
        hashlib.sha256(b"a").hexdigest(),
        hashlib.sha256(b"b").hexdigest(),
    ]


async def test_frames_are_hashed_outside_the_event_loop(
    door: tuple[DoorChallenges, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: SHA-256 of every frame (up to max_message_bytes a burst) ran in the grpc.aio event loop."""
    challenges, _ = door
    threads: list[int] = []

    def recorded(frames: list[bytes]) -> list[str]:
        threads.append(threading.get_ident())
        return frame_digests(frames)

    monkeypatch.setattr(fovea.faces.access.challenge_store, "frame_digests", recorded)
    await challenges.check_replay("thread-door", [b"x" * 4096, b"y"], REQUIRE)
    assert threads and threading.get_ident() not in threads
    await denied("replay", challenges.check_replay("thread-door", [b"y"], REQUIRE))


async def test_a_head_turning_as_asked_is_granted(door: tuple[DoorChallenges, Clock]) -> None:
    """The pass path (real bona fide video cannot be made from photos): BeginAccess, then the landmarks of
    a synthetic head turning 30 degrees to the person's left answer it; the decision is GRANT. The same
    head turning right is DENY challenge_not_met."""
    challenges, _ = door
    c, token = challenges.begin("front", REQUIRE)
    admitted = await challenges.admit("front", c.challenge_id, token, REQUIRE)
    assert admitted is not None
    rng = np.random.default_rng(2)
    left = challenge_burst(rng, 6, "turn_left", 30.0)
    result = challenges.check_motion(admitted, list(left))
    assert result.met and result.motion > 0.12, result
    frames = [FrameOutcome(distance=0.3)] * 6
    granted = decide("front", frames, 0.6, REQUIRE, Liveness.NOT_CHECKED, challenge=result)
    assert granted.decision is Decision.GRANT and granted.challenge == result
    right = challenges.check_motion(admitted, list(challenge_burst(rng, 6, "turn_right", 30.0)))
    denied_ = decide("front", frames, 0.6, REQUIRE, Liveness.NOT_CHECKED, challenge=right)
    assert denied_.decision is Decision.DENY and denied_.kind == "challenge_not_met" and right.motion < 0


def test_the_signing_key(tmp_path: Path) -> None:
    secret = tmp_path / "challenge-secret"
    secret.write_text("c" * 43 + "\n")
    assert load_secret(FacesSettings(challenge_secret_file=secret)) == b"c" * 43
    token = tmp_path / "internal-token"
    token.write_text("t" * 43)
    derived = load_secret(FacesSettings(internal_token_file=token))
    assert derived == hmac.new(b"t" * 43, b"fovea faces challenge key v1", hashlib.sha256).digest()
    assert derived != b"t" * 43
    assert len(load_secret(FacesSettings())) == 32  # random, per process
    secret.write_text("short")
    with pytest.raises(ValueError, match="16 or more bytes"):
        load_secret(FacesSettings(challenge_secret_file=secret))
    with pytest.raises(ValueError, match="challenge secret file"):
        load_secret(FacesSettings(challenge_secret_file=tmp_path / "missing"))
    with pytest.raises(SystemExit, match="FOVEA_FACES_CHALLENGE_SECRET_FILE: challenge secret file"):
        challenge_secret(FacesSettings(challenge_secret_file=tmp_path / "missing"))  # the service's start
