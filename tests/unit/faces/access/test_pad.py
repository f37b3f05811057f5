"""The multi-frame geometry check: the homography, the nose's projective invariant, the parallax score, the
verdicts, and the error rates on the synthetic set and on attacks made from a real photo."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fovea.convert.samples import sample
from fovea.faces.access.core.pad import (
    CANONICAL_QUAD,
    CHECK,
    GeometrySettings,
    PadVerdict,
    canonical_nose,
    check_geometry,
    homography,
    parallax_score,
)
from fovea.faces.tools.core.accuracy import pad_report
from fovea.faces.tools.core.pad_render import photo_view
from fovea.faces.tools.core.pad_synth import (
    ATTACK_MOTIONS,
    BENT_MOTIONS,
    bona_fide_burst,
    project,
    rotation,
    synthetic_set,
)
from fovea.faces.tools.inprocess import InProcessFaces

SETTINGS = GeometrySettings()
# A frontal face's MTCNN landmarks in pixels (left eye, right eye, nose, mouth left, mouth right).
FACE = np.array([[440.0, 210.0], [550.0, 210.0], [497.0, 280.0], [450.0, 325.0], [545.0, 325.0]])


def _apply(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = np.c_[points, np.ones(len(points))] @ h.T
    return np.asarray(p[:, :2] / p[:, 2:])


def _warps(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """n random perspective warps of the plane (strong tilts, not degenerate near FACE)."""
    out = []
    for _ in range(n):
        h = np.eye(3) + rng.normal(0, [[0.2, 0.2, 30], [0.2, 0.2, 30], [3e-4, 3e-4, 0]])
        out.append(h)
    return out


def test_homography_maps_the_four_points_and_matches_a_known_one() -> None:
    rng = np.random.default_rng(0)
    for h in _warps(rng, 20):
        src = FACE[[0, 1, 4, 3]]
        found = homography(src, _apply(h, src))
        # Four point pairs fix the 8 unknowns: the homography found is the one that made them.
        np.testing.assert_allclose(found, h / h[2, 2], rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="degenerate"):
        homography(np.array([[0, 0], [1, 1], [2, 2], [0, 1]]), CANONICAL_QUAD)


def test_the_canonical_nose_is_the_same_for_any_view_of_a_plane() -> None:
    rng = np.random.default_rng(1)
    views = np.array([FACE] + [_apply(h, FACE) for h in _warps(rng, 10)])
    noses, usable = canonical_nose(views)
    assert usable.all()
    # A projective invariant: every view of the same flat points gives the same canonical position.
    np.testing.assert_allclose(noses, np.repeat(noses[:1], len(noses), 0), atol=1e-9)
    # Landmarks mirrored (eyes swapped) or missing are not a usable quad.
    mirrored = FACE[[1, 0, 2, 4, 3]]
    _, usable = canonical_nose(np.array([FACE, mirrored, np.full((5, 2), np.nan)]))
    assert usable.tolist() == [True, False, False]


def test_the_canonical_nose_moves_with_a_turning_head() -> None:
    face = np.array([[-0.5, 0, 0], [0.5, 0, 0], [0, 0.55, -0.4], [-0.4, 1.05, -0.1], [0.4, 1.05, -0.1]])
    frames = np.array([project(face @ rotation(yaw, 0, 0).T * 63 + [0, 0, 600]) for yaw in (-15, 0, 15)])
    noses, _ = canonical_nose(frames)
    # The nose stands about 0.35 IOD over the eye-mouth plane: a 15 degree yaw moves it sideways by about
    # 0.35 * sin(15) = 0.09 IOD each way (perspective and foreshortening change this a little).
    assert noses[0, 0] - noses[1, 0] == pytest.approx(-(noses[2, 0] - noses[1, 0]), abs=0.01)
    assert abs(noses[2, 0] - noses[0, 0]) == pytest.approx(0.18, abs=0.03)


def test_parallax_score_is_the_start_to_end_travel_of_a_robust_line() -> None:
    # A nose moving 0.03 IOD right per frame over 6 frames travels 5 * 0.03 = 0.15.
    line = np.c_[np.arange(6) * 0.03, np.zeros(6)]
    assert parallax_score(line) == pytest.approx(0.15)
    # One frame 0.5 IOD off (a misplaced landmark) barely moves the median slope.
    outlier = line.copy()
    outlier[3] += [0.5, 0.5]
    assert parallax_score(outlier) == pytest.approx(0.15, abs=0.03)
    # A still burst does not travel.
    assert parallax_score(np.zeros((4, 2))) == 0.0
    with pytest.raises(ValueError):
        parallax_score(np.zeros((1, 2)))


def test_a_still_photo_repeated_is_undetermined_naming_the_check() -> None:
    # No motion at all: a photo held still and a person holding still look the same (undetermined).
    r = check_geometry(np.array([FACE] * 5), SETTINGS)
    assert r.verdict is PadVerdict.UNDECIDED and r.score == 0.0 and r.check == CHECK
    assert r.answer == "undetermined" and r.reasons[0].startswith(f"{CHECK}: undetermined")
    assert (r.usable_frames, r.frame_count, r.threshold) == (5, 5, SETTINGS.min_parallax)


def test_a_head_turning_is_bona_fide() -> None:
    rng = np.random.default_rng(2)
    r = check_geometry(bona_fide_burst(rng, 7, turn=40, noise=0.01), SETTINGS)
    assert r.verdict is PadVerdict.BONA_FIDE and r.score >= SETTINGS.min_parallax
    assert "3D parallax" in r.reasons[0]


def test_the_identity_changing_is_an_attack_whatever_the_geometry() -> None:
    rng = np.random.default_rng(3)
    burst = bona_fide_burst(rng, 4, turn=40, noise=0.01)
    same = np.zeros((4, 128))
    swapped = same.copy()
    swapped[2, 0] = 0.7  # one frame is someone else: 0.7 from the others
    assert (
        check_geometry(burst, SETTINGS, embeddings=same, match_threshold=0.6).verdict is PadVerdict.BONA_FIDE
    )
    r = check_geometry(burst, SETTINGS, embeddings=swapped, match_threshold=0.6)
    assert r.verdict is PadVerdict.ATTACK and r.identity_spread == pytest.approx(0.7)
    assert "identity changes" in r.reasons[0]
    # a head turning moves the embedding a little each frame, its ends 0.75 apart: one person, not an attack
    turning = np.zeros((4, 128))
    turning[:, 0] = [0.0, 0.25, 0.5, 0.75]
    r = check_geometry(burst, SETTINGS, embeddings=turning, match_threshold=0.6)
    assert r.verdict is PadVerdict.BONA_FIDE and r.identity_spread == pytest.approx(0.25)


def test_too_few_usable_frames_is_undecided_and_bad_bursts_are_refused() -> None:
    lost = np.array([FACE, FACE, np.full((5, 2), np.nan)])
    r = check_geometry(lost, SETTINGS)
    assert r.verdict is PadVerdict.UNDECIDED and np.isnan(r.score) and r.usable_frames == 2
    with pytest.raises(ValueError, match="3-15 frames"):
        check_geometry(np.array([FACE] * 2), SETTINGS)
    with pytest.raises(ValueError, match="3-15 frames"):
        check_geometry(np.array([FACE] * 16), SETTINGS)
    with pytest.raises(ValueError, match=r"\(F, 5, 2\)"):
        check_geometry(np.zeros((4, 68, 2)), SETTINGS)
    with pytest.raises(ValueError, match="min_parallax"):
        GeometrySettings(min_parallax=0)


def _scores(bursts: list[np.ndarray]) -> np.ndarray:
    return np.array([check_geometry(b, SETTINGS).score for b in bursts])


def test_error_rates_on_the_synthetic_set() -> None:
    """The issue's target on synthetic material: APCER <= 1% (worst attack species) with BPCER <= 5%, at
    the threshold set by principle (see GeometrySettings), on a seed other than the one looked at while
    writing the check: 1200 attack bursts (6 motions x 200) and 1200 heads turning 25-45 degrees, 3-15
    frames, landmark noise 2% of the IOD.

    Prints bent like paper (400 more bursts, drawn after the planar ones, which are the same with or
    without them) are not planar, so they are reported beside it, not in the target: radius 0.5-2 print
    widths, turned 20-50 degrees about the bend, bent 0.0% and bent_h 1.5% pass (seed 7) -- just over the
    1% that the planar species meet (tests/unit/faces/test_pad_synth.py has the curvature and the turn)."""
    data = synthetic_set(seed=7, per_kind=200, noise=0.02, bent=True)
    scores = {k: _scores(v) for k, v in data.attacks.items()}
    bona = _scores(data.bona_fide)
    report = pad_report(bona, {k: scores[k] for k in ATTACK_MOTIONS}, SETTINGS.min_parallax)
    assert set(report.apcer_by_species) == set(ATTACK_MOTIONS)
    assert report.apcer <= 0.01 and report.bpcer <= 0.05, report
    # The threshold is not tuned to this set: the one reaching APCER 1% here is within 0.03 of it.
    at_1 = report.operating_points[0]
    assert abs(at_1.threshold - SETTINGS.min_parallax) < 0.03 and at_1.bpcer <= 0.05, at_1
    bent = pad_report(bona, {k: scores[k] for k in BENT_MOTIONS}, SETTINGS.min_parallax)
    assert bent.apcer_by_species == {"bent": 0.0, "bent_h": 0.015}, bent


def test_cleaner_landmarks_separate_completely() -> None:
    # With 1% landmark noise no attack reaches the threshold and hardly any head turning 25-45 degrees misses
    # it (seed 7, 1200 heads: 1.1% do).
    data = synthetic_set(seed=8, per_kind=50, noise=0.01)
    report = pad_report(
        _scores(data.bona_fide), {k: _scores(v) for k, v in data.attacks.items()}, SETTINGS.min_parallax
    )
    assert report.apcer == 0.0 and report.bpcer <= 0.02, report


def test_small_turns_are_not_enough() -> None:
    # A head turning 8 degrees moves its nose by about 0.35 * 2 sin(4) = 0.05 IOD: below the threshold, as
    # a still head is (the challenge will ask for a turn).
    rng = np.random.default_rng(9)
    scores = _scores([bona_fide_burst(rng, 9, turn=8, noise=0.01) for _ in range(50)])
    assert np.mean(scores < SETTINGS.min_parallax) >= 0.9


PHOTO_MOTIONS = {  # name -> per frame t in [0, 1]: (yaw, pitch, roll) of the print, distance mm
    "still": lambda t: ((0, 0, 0), 350),
    "tilt_yaw": lambda t: ((-35 + 70 * t, 0, 0), 350),
    "tilt_pitch": lambda t: ((0, -30 + 60 * t, 0), 350),
    "spin": lambda t: ((0, 0, 30 * t), 350),
    "tilt_zoom": lambda t: ((40 * t, 15 * t, 0), 300 + 200 * t),
    "far_tilt": lambda t: ((-30 + 60 * t, 10, 5), 550),
}


@pytest.mark.parametrize("name", ["obama", "obama2", "biden"])
def test_attacks_made_from_a_real_photo_are_rejected(in_process: InProcessFaces, name: str) -> None:
    """The sample photo printed and moved in front of a camera (perspective warps of the real image) and
    MTCNN run on every frame: each burst is an attack, and MTCNN's landmark noise is within what the
    synthetic set assumes."""
    photo = Image.open(sample(name)).convert("RGB")
    frames_per_burst = 5
    deviations = []
    for motion, pose_at in PHOTO_MOTIONS.items():
        landmarks = []
        for t in np.linspace(0, 1, frames_per_burst):
            (yaw, pitch, roll), distance = pose_at(t)
            image = photo_view(photo, rotation(yaw, pitch, roll), distance, (960, 720))
            faces = in_process.detect(image).faces
            assert len(faces) >= 1, f"{name} {motion}: no face at t={t}"
            landmarks.append(faces.landmarks[0])
        burst = np.array(landmarks)
        r = check_geometry(burst, SETTINGS)
        assert r.verdict is not PadVerdict.BONA_FIDE, f"{name} {motion}: {r}"
        noses, usable = canonical_nose(burst)
        assert usable.all()
        deviations.append(noses - np.median(noses, axis=0))
    # The synthetic set's 2% IOD per coordinate puts the canonical nose's jitter at about 0.04 IOD per
    # frame (see GeometrySettings); MTCNN on these warps stays within it.
    rms = float(np.sqrt(np.mean(np.concatenate(deviations) ** 2)))
    assert rms < 0.04, rms
