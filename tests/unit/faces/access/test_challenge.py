"""The active challenge: signing, expiry, kinds, and the head-motion check on synthetic bursts (a head
turning the asked way, the other way, and flat photos moved every way)."""

from __future__ import annotations

import numpy as np
import pytest

from fovea.faces.access.core.challenge import (
    EXPIRED,
    INVALID,
    MOTION_KINDS,
    BlinkSettings,
    Challenge,
    ChallengeError,
    ChallengeResult,
    MotionSettings,
    blink_drop,
    check_blink,
    check_kinds,
    check_motion,
    issue,
    nose_travel,
    token,
    verify,
)
from fovea.faces.tools.core.pad_synth import (
    ATTACK_MOTIONS,
    CHALLENGE_TURNS,
    FACE_3D,
    IOD_MM,
    attack_burst,
    challenge_burst,
    project,
    rotation,
)

SECRET = b"k" * 32
NOW = 1_700_000_000_000
MOTION = MotionSettings()


def test_issue_then_verify_round_trips() -> None:
    challenge, tok = issue(SECRET, "door-7", ["turn_left", "turn_right"], NOW, 20_000)
    assert challenge.kind in ("turn_left", "turn_right") and challenge.expires_unix_ms == NOW + 20_000
    assert len(challenge.challenge_id) == 32 and tok.startswith(f"{challenge.kind}.{NOW + 20_000}.")
    assert verify(SECRET, challenge.challenge_id, tok, "door-7", NOW + 19_999) == challenge
    assert "turn your head" in challenge.instruction


def test_kinds_are_drawn_from_the_doors_list() -> None:
    seen = {issue(SECRET, "d", ["look_up", "turn_left"], NOW, 1000)[0].kind for _ in range(200)}
    assert seen == {"look_up", "turn_left"}  # 2^-199 chance of missing one
    only = {issue(SECRET, "d", ["turn_right"], NOW, 1000)[0].kind for _ in range(5)}
    assert only == {"turn_right"}


def test_kinds_are_checked() -> None:
    assert check_kinds(["turn_left"]) == ("turn_left",)
    assert check_kinds(["blink", "turn_left"]) == ("blink", "turn_left")
    for bad in (["wink"], [], ["turn_left", "turn_left"], "turn_left"):
        with pytest.raises(ValueError, match="challenge_kinds|wink"):
            check_kinds(bad)  # type: ignore[arg-type]


def test_expired_tampered_and_foreign_challenges_are_refused() -> None:
    challenge, tok = issue(SECRET, "door-7", ["turn_left"], NOW, 20_000)
    cid = challenge.challenge_id

    def refused(kind: str, *args: object) -> str:
        with pytest.raises(ChallengeError) as info:
            verify(*args)  # type: ignore[arg-type]
        assert info.value.kind == kind
        return info.value.reason

    assert "expired" in refused(EXPIRED, SECRET, cid, tok, "door-7", NOW + 20_000)  # expiry is exclusive
    refused(INVALID, SECRET, cid, tok, "door-8", NOW)  # another door
    refused(INVALID, b"x" * 32, cid, tok, "door-7", NOW)  # another secret
    refused(INVALID, SECRET, "0" * 32, tok, "door-7", NOW)  # another id
    later = tok.replace(str(NOW + 20_000), str(NOW + 99_000))
    refused(INVALID, SECRET, cid, later, "door-7", NOW + 50_000)  # a longer life is invalid, not expired
    other_kind = tok.replace("turn_left", "turn_right", 1)
    refused(INVALID, SECRET, cid, other_kind, "door-7", NOW)
    flipped = tok[:-1] + ("A" if tok[-1] != "A" else "B")
    refused(INVALID, SECRET, cid, flipped, "door-7", NOW)
    for junk in ("", "a.b", "turn_left.x.y", "turn_left.1.2.3"):
        refused(INVALID, SECRET, cid, junk, "door-7", NOW)
    refused(INVALID, SECRET, "not-hex", tok, "door-7", NOW)


def test_malformed_tokens_are_invalid_not_errors() -> None:
    """Before: a non-ASCII mac made hmac.compare_digest raise TypeError, and an expiry of "²³" passed
    str.isdigit() and made int() raise ValueError (the door's DENY was then kind ``error``, with a traceback)."""
    challenge, tok = issue(SECRET, "door-7", ["turn_left"], NOW, 20_000)
    cid = challenge.challenge_id
    kind, expiry, mac = tok.split(".")
    bad_tokens = [
        f"{kind}.{expiry}.{'é' * len(mac)}",  # non-ASCII mac
        f"{kind}.{expiry}.{mac[:-1]}é",
        f"{kind}.²³.{mac}",  # superscript digits: isdigit() but not int()
        f"{kind}.{expiry[:-1]}٣.{mac}",  # an Arabic-Indic digit: int() takes it, the pattern does not
        f"{kind}.{expiry}.{mac}\n",
        f"{kind}.+{expiry}.{mac}",
        f"{kind}.{expiry}.{mac}=",
        f"{kind}.{expiry}.{mac[:-2]}",
        f"{kind}.{expiry}.{mac.replace(mac[0], '+', 1)}",
        f"{kind}.{'9' * 17}.{mac}",
        f"türn_left.{expiry}.{mac}",
    ]
    for bad in bad_tokens:
        with pytest.raises(ChallengeError) as info:
            verify(SECRET, cid, bad, "door-7", NOW)
        assert info.value.kind == INVALID, bad
    for bad_id in (cid + "\n", cid.upper(), "٣" * 32):
        with pytest.raises(ChallengeError) as info:
            verify(SECRET, bad_id, tok, "door-7", NOW)
        assert info.value.kind == INVALID, bad_id
    assert verify(SECRET, cid, tok, "door-7", NOW) == challenge  # the well-formed one still passes


def test_token_needs_a_real_secret() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        token(b"short", Challenge("0" * 32, "d", "turn_left", NOW))


def _turn(yaw: tuple[float, float], pitch: tuple[float, float] = (0.0, 0.0), frames: int = 5) -> np.ndarray:
    """Noise-free landmarks of the average face turning, 600 mm from the camera."""
    face = FACE_3D - FACE_3D.mean(0)
    out = []
    for t in np.linspace(0, 1, frames):
        r = rotation(yaw[0] + (yaw[1] - yaw[0]) * t, pitch[0] + (pitch[1] - pitch[0]) * t, 0)
        out.append(project(face @ r.T * IOD_MM + [0, 0, 600]))
    return np.asarray(out)


def test_directions_image_left_right_and_the_persons_own() -> None:
    # pad_synth's positive yaw turns the head to the person's right: the nose (0.40 IOD in front of the
    # eyes) moves to the image's left. Canonical travel ~ 0.35 IOD * sin(20 deg) = 0.12 (+ perspective).
    right = _turn((0, 20))
    assert right[-1, 2, 0] < right[0, 2, 0]  # the nose went left in the image
    travel, usable = nose_travel(right)
    assert usable == 5 and travel[0] == pytest.approx(-0.130, abs=0.005) and abs(travel[1]) < 0.01
    assert nose_travel(_turn((0, -20)))[0][0] == pytest.approx(0.130, abs=0.005)
    # positive pitch tilts the head forward (looking down): the nose moves towards the mouth
    assert nose_travel(_turn((0, 0), (0, 20)))[0][1] == pytest.approx(0.126, abs=0.005)

    def met(kind: str, lm: np.ndarray) -> bool:
        return check_motion(Challenge("0" * 32, "d", kind, NOW), list(lm), MOTION).met

    assert met("turn_right", right) and not met("turn_left", right)
    assert met("turn_left", _turn((0, -20))) and not met("turn_right", _turn((0, -20)))
    assert met("look_up", _turn((0, 0), (0, -20))) and met("look_down", _turn((0, 0), (0, 20)))
    assert not met("look_up", right)  # a turn is not a nod


def test_synthetic_heads_meet_their_challenge_and_not_the_opposite() -> None:
    """Heads turning 30 degrees the asked way (3-15 frames, 2% IOD landmark noise, 400-900 mm, face depth
    +-25%): at least 95% meet it (measured 96-98% per kind at seed 5; 25 degrees: 86-89%, 20 degrees: 55-63%,
    the instruction asks for a clear turn); the opposite challenge is almost never met."""
    rng = np.random.default_rng(5)
    opposite = {
        "turn_left": "turn_right",
        "turn_right": "turn_left",
        "look_up": "look_down",
        "look_down": "look_up",
    }
    for kind in MOTION_KINDS:
        met, wrong = [], []
        for _ in range(200):
            lm = challenge_burst(rng, int(rng.integers(3, 16)), kind, 30.0, distance_mm=rng.uniform(400, 900))
            met.append(check_motion(Challenge("0" * 32, "d", kind, NOW), list(lm), MOTION).met)
            wrong.append(check_motion(Challenge("0" * 32, "d", opposite[kind], NOW), list(lm), MOTION).met)
        assert np.mean(met) >= 0.95, (kind, np.mean(met))
        assert np.mean(wrong) == 0.0, (kind, np.mean(wrong))
    assert set(CHALLENGE_TURNS) == set(MOTION_KINDS)


def test_flat_photos_moved_any_way_do_not_meet_a_challenge() -> None:
    """A printed photo slid, spun, tilted in 3D or zoomed: its canonical nose stays put up to landmark noise,
    so a challenge is met about once in 10,000 tries (3 of 37,200 burst x kind checks at 2% IOD noise,
    over-represented in 3-4 frame bursts; 99.9th percentile of the travel 0.09-0.11 IOD, threshold 0.12).
    Here (seed 11): 1 of 1,200."""
    rng = np.random.default_rng(11)
    failures = []
    for motion in ATTACK_MOTIONS:
        for _ in range(50):
            lm = attack_burst(rng, int(rng.integers(3, 16)), motion, distance_mm=rng.uniform(400, 900))
            for kind in MOTION_KINDS:
                r = check_motion(Challenge("0" * 32, "d", kind, NOW), list(lm), MOTION)
                if r.met:
                    failures.append((motion, kind, r.motion))
    assert len(failures) <= 1, failures


def test_a_photo_moved_left_does_not_pass_turn_left() -> None:
    """The whole photo slides 150 mm to the image's right and turns about its vertical axis: every landmark
    moves, the nose with the rest; none moves relative to the eye-mouth plane."""
    face = FACE_3D - FACE_3D.mean(0)
    flat = np.c_[face[:, :2] * IOD_MM, np.zeros(5)]
    frames = [project(flat @ rotation(-25 * t, 0, 0).T + [150 * t, 0, 500]) for t in np.linspace(0, 1, 6)]
    assert frames[-1][2, 0] - frames[0][2, 0] > 100  # the nose moved right by > 100 px
    r = check_motion(Challenge("0" * 32, "d", "turn_left", NOW), frames, MOTION)
    assert not r.met and abs(r.motion) < 0.01 and "not met" in r.reason


def test_too_few_usable_frames_is_not_met() -> None:
    lm = list(_turn((0, -30)))
    r = check_motion(Challenge("0" * 32, "d", "turn_left", NOW), [lm[0], None, lm[-1], None], MOTION)
    assert not r.met and np.isnan(r.motion) and "2 of 4 frames" in r.reason
    assert check_motion(Challenge("0" * 32, "d", "turn_left", NOW), [], MOTION).met is False


# ---- blink ---------------------------------------------------------------------------------------------------

BLINK_SETTINGS = BlinkSettings()


def _blink(ears: list[float | None]) -> ChallengeResult:
    return check_blink(Challenge("0" * 32, "d", "blink", NOW), ears, BLINK_SETTINGS)


def test_blink_drop_on_synthetic_ear_sequences() -> None:
    # open 0.30, closed 0.08: 1 - 0.08 / 0.30 = 0.733
    assert blink_drop(np.array([0.30, 0.29, 0.08, 0.28, 0.31])) == pytest.approx(1 - 0.08 / 0.30)
    # the level is the lower of the open levels either side: 1 - 0.1 / min(0.3, 0.2) = 0.5
    assert blink_drop(np.array([0.30, 0.10, 0.20])) == pytest.approx(0.5)
    assert blink_drop(np.array([0.30, 0.30, 0.10])) == 0.0  # closing at the end: no reopening
    assert blink_drop(np.array([0.10, 0.30, 0.30])) == 0.0  # opening at the start: no closing
    assert np.isnan(blink_drop(np.array([0.3, 0.1])))


def test_blink_met_not_met_and_too_few_frames() -> None:
    met = _blink([0.31, None, 0.30, 0.12, 0.05, 0.22, 0.29])
    # open level min(0.31 before, 0.29 after): 1 - 0.05 / 0.29 = 0.83
    assert met.met and met.motion == pytest.approx(1 - 0.05 / 0.29) and "met" in met.reason
    half = _blink([0.30, 0.21, 0.30])  # a 30% dip: within what the jitter and a squint do
    assert not half.met and half.threshold == 0.4 and "not met" in half.reason
    few = _blink([0.3, None, 0.05, None])
    assert not few.met and np.isnan(few.motion) and "2 of 4 frames" in few.reason
    with pytest.raises(ValueError):
        BlinkSettings(min_frames=2)
    with pytest.raises(ValueError, match="check_blink"):
        check_motion(Challenge("0" * 32, "d", "blink", NOW), [], MOTION)


def test_a_print_with_jittering_landmarks_does_not_blink() -> None:
    """A still eye's EAR with the mesh's frame-to-frame jitter (sd 0.02 on 0.30, Gaussian): over 2,000 bursts
    of 3-15 frames the dip that reopens stays below 0.4 (it reaches 4 standard deviations of a ratio of two
    jittered values only rarely)."""
    rng = np.random.default_rng(4)
    drops = [blink_drop(0.30 + rng.normal(0, 0.02, int(rng.integers(3, 16)))) for _ in range(2000)]
    assert max(drops) < BLINK_SETTINGS.min_drop, max(drops)
    assert np.percentile(drops, 99) < 0.3


def test_blink_token_round_trip() -> None:
    challenge, text = issue(SECRET, "d", ["blink"], NOW, 1000)
    assert challenge.kind == "blink" and challenge.instruction.startswith("look at the camera")
    assert verify(SECRET, challenge.challenge_id, text, "d", NOW).kind == "blink"


def test_two_moves_are_drawn_in_a_random_order_and_both_needed_in_order() -> None:
    """A two-move challenge (turn_left then look_up): the head doing both in order meets it, either move
    alone or both in the other order does not (12 frames, 30 degrees each, 2% landmark noise)."""
    import numpy as np

    from fovea.faces.access.core.challenge import Challenge, MotionSettings, check_motion, issue, moves
    from fovea.faces.tools.core.pad_synth import head_turn_burst

    challenge, _ = issue(b"k" * 32, "front", ["turn_left", "look_up"], 0, 1000, count=2)
    assert set(moves(challenge.kind)) == {"turn_left", "look_up"} and ", then " in challenge.instruction
    rng = np.random.default_rng(4)
    asked = Challenge("0" * 32, "front", "turn_left+look_up", 1)
    left = head_turn_burst(rng, 7, (0.0, -30.0), (0.0, 0.0))
    up = head_turn_burst(rng, 7, (-30.0, -30.0), (0.0, -30.0))
    both = np.concatenate([left, up[1:]])
    settings = MotionSettings()
    assert check_motion(asked, list(both), settings).met
    assert not check_motion(asked, list(head_turn_burst(rng, 12, (0.0, -30.0), (0.0, 0.0))), settings).met
    reverse = Challenge("0" * 32, "front", "look_up+turn_left", 1)
    assert not check_motion(reverse, list(both), settings).met
