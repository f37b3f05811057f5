"""The door decision: every way to DENY, the one way to GRANT, what a caller without faces:admin is told, and
the policy file."""

from __future__ import annotations

import datetime
import math

import numpy as np
import pytest

from fovea.faces.access.core.access import (
    Decision,
    Denied,
    DoorPolicies,
    DoorPolicy,
    FrameOutcome,
    Liveness,
    burst_spread,
    check_hours,
    decide,
    deny,
    door_gallery,
    without_enrollment,
)
from fovea.faces.access.core.challenge import ChallengeResult
from fovea.faces.access.core.pad import PadResult, PadVerdict

OPEN = DoorPolicy()
MATCH, FAR = FrameOutcome(distance=0.35), FrameOutcome(distance=0.82)


def test_every_frame_with_a_face_must_match_by_default() -> None:
    r = decide("door-1", [MATCH, FrameOutcome(problem="no face"), MATCH], 0.6, OPEN, Liveness.NOT_CHECKED)
    assert r.decision is Decision.GRANT and r.kind == "match"
    assert r.distance == 0.35 and r.threshold == 0.6 and r.matching_frames == 2 and r.frame_count == 3
    assert "0.350 < threshold 0.600 (2/2 frames with a face matched)" in r.reason
    partial = decide("door-1", [FAR, MATCH], 0.6, OPEN, Liveness.NOT_CHECKED)
    assert partial.decision is Decision.DENY and partial.kind == "no_match"
    assert (
        "best distance 0.350 < threshold 0.600 (1/2 frames with a face matched, 2 needed)" in partial.reason
    )


def test_a_door_may_ask_for_fewer_matching_frames() -> None:
    one = DoorPolicy(min_matching_frames=1)
    r = decide("door-1", [FAR, MATCH], 0.6, one, Liveness.NOT_CHECKED, spread=0.5)
    assert r.decision is Decision.GRANT and r.matching_frames == 1 and r.frame_count == 2


def test_a_burst_of_two_people_denies_unless_the_door_allows_it() -> None:
    one = DoorPolicy(min_matching_frames=1)
    # Obama's frame matches (0.35); Biden's frame is 0.82 from Obama and 0.9 from Obama's frame.
    r = decide("door-1", [MATCH, FAR], 0.6, one, Liveness.NOT_CHECKED, spread=0.9)
    assert r.decision is Decision.DENY and r.kind == "mixed_faces"
    assert "different people: two faces are 0.900 apart, threshold 0.600" in r.reason
    mixed_ok = DoorPolicy(min_matching_frames=1, allow_mixed_faces=True)
    assert (
        decide("d", [MATCH, FAR], 0.6, mixed_ok, Liveness.NOT_CHECKED, spread=0.9).decision is Decision.GRANT
    )
    # the door's own (stricter) threshold is the one the spread is held against
    strict = DoorPolicy(threshold=0.4)
    assert decide("d", [MATCH], 0.6, strict, Liveness.NOT_CHECKED, spread=0.45).kind == "mixed_faces"


def test_burst_spread_is_the_largest_step_between_consecutive_faces() -> None:
    assert burst_spread(np.zeros((0, 128), np.float32)) == 0.0
    assert burst_spread(np.ones((1, 128), np.float32)) == 0.0
    # (0,0), (3,4), (0,1): steps 5 and sqrt(9 + 9) = 4.243 -> 5
    e = np.array([[0, 0], [3, 4], [0, 1]], np.float32)
    assert burst_spread(e) == pytest.approx(5.0)
    # a head turning: each step small, the ends far apart -> the largest step, not the ends' distance
    turn = np.array([[0.0, 0.0], [0.2, 0.0], [0.4, 0.0], [0.6, 0.0], [0.8, 0.0]])
    assert burst_spread(turn) == pytest.approx(0.2)
    # another person from the fourth frame on: one step as large as the people are apart
    assert burst_spread(np.concatenate([turn[:3], turn[:2] + [0.0, 0.9]])) == pytest.approx(
        np.hypot(0.4, 0.9)
    )
    # where a door lets frames miss the claimed identity: any two faces (the turn's ends 0.8 apart)
    assert burst_spread(turn, consecutive=False) == pytest.approx(0.8)


def test_an_identity_that_is_not_enrolled_denies() -> None:
    inf = FrameOutcome(distance=math.inf)
    r = decide("d", [inf], 0.6, OPEN, Liveness.NOT_CHECKED, not_enrolled="identity x has no templates")
    assert (
        r.decision is Decision.DENY
        and r.kind == "unknown_identity"
        and r.reason == "identity x has no templates"
    )
    # frames without a face are told first, enrolled or not
    no_face = decide(
        "d", [FrameOutcome(problem="no face")], 0.6, OPEN, Liveness.NOT_CHECKED, not_enrolled="x"
    )
    assert no_face.kind == "no_face"


def test_without_faces_admin_unknown_and_no_match_read_the_same() -> None:
    unknown = decide(
        "d", [FrameOutcome(distance=math.inf)], 0.6, OPEN, Liveness.NOT_CHECKED, not_enrolled="x"
    )
    no_match = decide("d", [FAR], 0.6, OPEN, Liveness.NOT_CHECKED)
    a, b = without_enrollment(unknown), without_enrollment(no_match)
    assert (a.decision, a.kind, a.reason, a.threshold) == (b.decision, b.kind, b.reason, b.threshold)
    assert a.reason == "no match" and math.isnan(a.distance) and math.isnan(b.distance)
    granted = decide("d", [MATCH], 0.6, OPEN, Liveness.NOT_CHECKED)
    assert without_enrollment(granted) == granted


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
    two = DoorPolicy(min_matching_frames=2, allow_mixed_faces=True)
    assert decide("d", [MATCH, FAR, MATCH], 0.6, two, Liveness.NOT_CHECKED).decision is Decision.GRANT
    assert decide("d", [MATCH, FAR, FAR], 0.6, two, Liveness.NOT_CHECKED).decision is Decision.DENY


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
        ({"default": {"min_matching_frames": True}}, "min_matching_frames"),
        ({"doors": {"*": {}}}, "door_id '\\*' is not valid"),
        ({"doors": {"../../x": {}}}, "door_id"),
        ({"doors": {" ": {}}}, "door_id"),
        ({"doors": ["a"]}, "must map"),
    ],
)
def test_bad_policies_are_refused(raw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DoorPolicies.from_dict(raw)


def _pad(verdict: PadVerdict) -> PadResult:
    return PadResult(verdict, 0.01, 0.12, ("geometry: no 3D parallax (0.010 IOD < 0.120)",), 5, 5)


def test_a_door_requiring_pad_denies_anything_but_bona_fide() -> None:
    frames = [MATCH] * 5
    require, record = DoorPolicy(pad="require"), DoorPolicy(pad="record")
    for verdict in (PadVerdict.ATTACK, PadVerdict.UNDECIDED):
        r = decide("vault", frames, 0.6, require, Liveness.NOT_CHECKED, pad=_pad(verdict))
        assert r.decision is Decision.DENY and r.kind == "pad" and r.pad == _pad(verdict)
        assert f"({verdict.value}): geometry: no 3D parallax" in r.reason
    missing = decide("vault", frames, 0.6, require, Liveness.NOT_CHECKED)
    assert missing.decision is Decision.DENY and "not run" in missing.reason
    live = decide("vault", frames, 0.6, require, Liveness.NOT_CHECKED, pad=_pad(PadVerdict.BONA_FIDE))
    assert live.decision is Decision.GRANT
    # record keeps the verdict and decides on the match alone; a non-match is still a non-match
    kept = decide("annex", frames, 0.6, record, Liveness.NOT_CHECKED, pad=_pad(PadVerdict.ATTACK))
    assert kept.decision is Decision.GRANT and kept.pad is not None
    far = decide("vault", [FAR] * 5, 0.6, require, Liveness.NOT_CHECKED, pad=_pad(PadVerdict.BONA_FIDE))
    assert far.decision is Decision.DENY and far.kind == "no_match"
    with pytest.raises(ValueError, match="unknown pad policy 'on'"):
        DoorPolicy(pad="on")
    assert DoorPolicies.from_dict({"doors": {"vault": {"pad": "require"}}}).for_door("vault").pad == "require"


POLICY_FILE = {
    "default": {"pad": "record"},
    "doors": {
        "front": {
            "gallery": "staff",
            "pad": "require",
            "challenge": "require",
            "challenge_kinds": ["turn_left", "turn_right", "look_up"],
            "hours": {"tz": "Europe/Berlin", "open": [{"days": "mon-fri", "from": "07:00", "to": "19:00"}]},
            "min_matching_frames": 3,
        },
        "side": {"challenge": "optional"},
    },
}


def test_the_policy_file_grows_gallery_challenge_hours_and_matching_frames() -> None:
    policies = DoorPolicies.from_dict(POLICY_FILE)
    front = policies.for_door("front")
    assert front.gallery == "staff" and front.challenge == "require" and front.min_matching_frames == 3
    assert front.challenge_kinds == ("turn_left", "turn_right", "look_up")
    assert front.hours is not None and front.hours.tz == "Europe/Berlin"
    side = policies.for_door("side")
    assert side.challenge_kinds == ("turn_left", "turn_right") and side.hours is None and side.gallery is None
    assert policies.for_door("other") == DoorPolicy(pad="record")
    # the file of before (pad only) still loads
    assert (
        DoorPolicies.from_dict({"doors": {"pad-vault": {"pad": "require"}}}).for_door("pad-vault").pad
        == "require"
    )


def test_snapshot_policy_says_which_decisions_get_a_snapshot() -> None:
    policies = DoorPolicies.from_dict(
        {"default": {"snapshot": "deny"}, "doors": {"lobby": {"snapshot": "always"}, "quiet": {}}}
    )
    assert policies.wants_snapshot("other", Decision.DENY) and not policies.wants_snapshot(
        "other", Decision.GRANT
    )
    assert policies.wants_snapshot("lobby", Decision.GRANT) and policies.wants_snapshot(
        "lobby", Decision.DENY
    )
    assert not policies.wants_snapshot("quiet", Decision.DENY)  # a door's own policy starts from the defaults
    assert DoorPolicy().snapshot == "off"


@pytest.mark.parametrize(
    ("door", "message"),
    [
        ({"challenge": "always"}, "unknown challenge policy 'always'; known: off, optional, require"),
        ({"challenge_kinds": ["wink"]}, "unknown challenge kinds \\['wink'\\]; known: .*blink"),
        ({"challenge_kinds": []}, "at least one kind"),
        ({"gallery": "no such/gallery"}, "gallery"),
        ({"hours": {"tz": "Mars/Olympus", "open": []}}, "unknown time zone 'Mars/Olympus'"),
        (
            {"hours": {"tz": "UTC", "open": [{"days": "someday", "from": "07:00", "to": "19:00"}]}},
            "unknown days",
        ),
        ({"hours": {"tz": "UTC", "open": [{"days": "mon", "from": "7", "to": "19:00"}]}}, "HH:MM"),
        ({"hours": {"tz": "UTC"}}, '"tz" and "open"'),
        ({"hours": {"tz": "UTC", "open": [], "close": []}}, '"tz" and "open"'),
        ({"passive": "require"}, "passive_check other than 'none'"),
        ({"passive_check": "antispoof2"}, "unknown passive check"),
        ({"hour": {}}, "unknown keys \\['hour'\\]"),
        ({"snapshot": "yes"}, "unknown snapshot policy 'yes'; known: off, deny, always"),
    ],
)
def test_bad_door_fields_are_refused_with_the_door_named(door: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        DoorPolicies.from_dict({"doors": {"front": door}})
    assert "door 'front'" in str(info.value)


def test_the_door_gallery_is_used_or_enforced() -> None:
    front = DoorPolicies.from_dict(POLICY_FILE).for_door("front")
    assert door_gallery(front, "") == "staff" and door_gallery(front, "staff") == "staff"
    with pytest.raises(Denied) as info:
        door_gallery(front, "visitors")
    assert info.value.kind == "bad_request" and "uses gallery 'staff', not 'visitors'" in info.value.reason
    assert door_gallery(OPEN, "visitors") == "visitors"


def test_closed_hours_deny_in_the_doors_time_zone() -> None:
    front = DoorPolicies.from_dict(POLICY_FILE).for_door("front")
    # Monday 2026-11-30 06:30 UTC is 07:30 in Berlin (CET, UTC+1): open; 18:30 UTC is 19:30: closed.
    check_hours(front, datetime.datetime(2026, 11, 30, 6, 30, tzinfo=datetime.UTC))
    with pytest.raises(Denied) as info:
        check_hours(front, datetime.datetime(2026, 11, 30, 18, 30, tzinfo=datetime.UTC))
    assert info.value.kind == "closed_hours" and "mon 19:30 Europe/Berlin" in info.value.reason
    with pytest.raises(Denied):  # Saturday
        check_hours(front, datetime.datetime(2026, 12, 5, 10, 0, tzinfo=datetime.UTC))
    check_hours(OPEN, datetime.datetime(2026, 12, 5, 3, 0, tzinfo=datetime.UTC))  # no hours: always open


def _challenge(met: bool) -> ChallengeResult:
    return ChallengeResult("0" * 32, "turn_left", met, 0.2 if met else 0.01, 0.12, "challenge turn_left: ...")


def test_a_challenge_not_met_denies_after_the_match_and_pad() -> None:
    frames = [MATCH] * 5
    policy = DoorPolicy(challenge="require")
    ok = decide("front", frames, 0.6, policy, Liveness.NOT_CHECKED, challenge=_challenge(True))
    assert ok.decision is Decision.GRANT and ok.challenge == _challenge(True)
    r = decide("front", frames, 0.6, policy, Liveness.NOT_CHECKED, challenge=_challenge(False))
    assert r.decision is Decision.DENY and r.kind == "challenge_not_met" and r.challenge == _challenge(False)
    pad = decide(
        "front", frames, 0.6, DoorPolicy(pad="require"), Liveness.NOT_CHECKED, challenge=_challenge(False)
    )
    assert pad.kind == "pad"  # no PAD result at a door requiring it: the PAD check is named first
    far = decide("front", [FAR] * 5, 0.6, policy, Liveness.NOT_CHECKED, challenge=_challenge(True))
    assert far.decision is Decision.DENY and far.kind == "no_match"


def test_denied_names_a_known_kind() -> None:
    for kind in ("challenge_expired", "challenge_reused", "challenge_invalid", "replay", "closed_hours"):
        assert Denied(kind, "x").kind == kind
    with pytest.raises(ValueError, match="unknown reason kind"):
        Denied("nope", "x")
