"""The door decision: every way to DENY, the one way to GRANT, and the policy file."""

from __future__ import annotations

import math

import pytest

from fovea.faces.core.access import (
    Decision,
    DoorPolicies,
    DoorPolicy,
    FrameOutcome,
    Liveness,
    decide,
    deny,
)

OPEN = DoorPolicy()
MATCH, FAR = FrameOutcome(distance=0.35), FrameOutcome(distance=0.82)


def test_a_matching_frame_grants() -> None:
    r = decide("door-1", [FAR, MATCH], 0.6, OPEN, Liveness.NOT_CHECKED)
    assert r.decision is Decision.GRANT and r.kind == "match"
    assert r.distance == 0.35 and r.threshold == 0.6 and r.matching_frames == 1 and r.frame_count == 2
    assert "0.350 < threshold 0.600" in r.reason


def test_no_match_denies_with_the_distance() -> None:
    r = decide("door-1", [FAR], 0.6, OPEN, Liveness.NOT_CHECKED)
    assert r.decision is Decision.DENY and r.kind == "no_match"
    assert "best distance 0.820 >= threshold 0.600" in r.reason


def test_threshold_is_strict() -> None:
    assert decide("d", [FrameOutcome(distance=0.6)], 0.6, OPEN, Liveness.LIVE).decision is Decision.DENY


def test_frames_without_faces_deny() -> None:
    r = decide(
        "d",
        [FrameOutcome(problem="no face"), FrameOutcome(problem="image could not be decoded")],
        0.6,
        OPEN,
        Liveness.NOT_CHECKED,
    )
    assert r.decision is Decision.DENY and r.kind == "no_face" and math.isnan(r.distance)
    assert "image could not be decoded" in r.reason and "no face" in r.reason
    assert decide("d", [], 0.6, OPEN, Liveness.NOT_CHECKED).kind == "bad_request"


def test_liveness_policy() -> None:
    strict = DoorPolicy(deny_unchecked_liveness=True)
    r = decide("vault", [MATCH], 0.6, strict, Liveness.NOT_CHECKED)
    assert r.decision is Decision.DENY and r.kind == "liveness" and "'vault' requires it" in r.reason
    assert decide("vault", [MATCH], 0.6, strict, Liveness.LIVE).decision is Decision.GRANT
    spoof = decide("lobby", [MATCH], 0.6, OPEN, Liveness.SPOOF)
    assert spoof.decision is Decision.DENY and spoof.liveness is Liveness.SPOOF


def test_door_threshold_and_frame_count() -> None:
    stricter = DoorPolicy(threshold=0.3)
    r = decide("d", [MATCH], 0.6, stricter, Liveness.NOT_CHECKED)
    assert r.decision is Decision.DENY and r.threshold == 0.3
    looser = DoorPolicy(threshold=0.9)  # a door never loosens the gallery threshold
    assert decide("d", [FAR], 0.6, looser, Liveness.NOT_CHECKED).decision is Decision.DENY
    two = DoorPolicy(min_matching_frames=2)
    assert decide("d", [MATCH, FAR], 0.6, two, Liveness.NOT_CHECKED).decision is Decision.DENY
    assert decide("d", [MATCH, MATCH], 0.6, two, Liveness.NOT_CHECKED).decision is Decision.GRANT


def test_deny_builds_a_failure_result() -> None:
    r = deny("unavailable", "Redis is unavailable: connection refused", frame_count=2)
    assert r.decision is Decision.DENY and r.frame_count == 2 and r.liveness is Liveness.NOT_CHECKED
    with pytest.raises(ValueError):
        deny("oops", "x")


def test_policies_from_a_dict() -> None:
    policies = DoorPolicies.from_dict(
        {
            "default": {"deny_unchecked_liveness": False},
            "doors": {"vault": {"deny_unchecked_liveness": True, "min_matching_frames": 2}},
        }
    )
    assert policies.for_door("vault") == DoorPolicy(deny_unchecked_liveness=True, min_matching_frames=2)
    assert policies.for_door("lobby") == DoorPolicy()
    fallback = DoorPolicy(deny_unchecked_liveness=True)
    assert DoorPolicies.from_dict({}, fallback).for_door("x") is fallback


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"door": {}}, "unknown keys"),
        ({"doors": {"a": {"liveness": "none"}}}, "unknown keys"),
        ({"doors": {"a": {"liveness_check": "blink"}}}, "unknown liveness check 'blink'; known: none"),
        ({"default": {"min_matching_frames": 0}}, "min_matching_frames"),
        ({"doors": ["a"]}, "must map"),
    ],
)
def test_bad_policies_are_refused(raw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DoorPolicies.from_dict(raw)
