"""The statistics of the geometry check's three answers (fovea.faces.access.core.pad_stats)."""

from __future__ import annotations

import numpy as np
import pytest

from fovea.faces.access.core.pad import GeometrySettings, check_geometry
from fovea.faces.access.core.pad_stats import StatsSettings, motion_test, strain_series, width_ratio_series
from fovea.faces.tools.core.pad_synth import attack_burst, bona_fide_burst, head_turn_burst, project, rotation


def test_the_f_test_holds_its_level_on_pure_noise() -> None:
    # Under "no motion" with noise above the floor the p-value is uniform: about alpha of the series are
    # called moving (4000 series of 10 frames, sigma 0.03 > floor 0.01; binomial sd of the rate 0.0034).
    rng = np.random.default_rng(0)
    p = np.array([motion_test(rng.normal(0, 0.03, (10, 2)), 0.01).p for _ in range(4000)])
    assert abs(np.mean(p < 0.05) - 0.05) < 0.012
    assert abs(np.mean(p < 0.01) - 0.01) < 0.006


def test_a_smooth_motion_is_found_and_its_travel_measured() -> None:
    # A straight move of 0.2 over 10 frames with 0.01 noise: significant, travel 0.2 within 3 se.
    rng = np.random.default_rng(1)
    path = np.c_[np.linspace(0, 0.2, 10), np.zeros(10)] + rng.normal(0, 0.01, (10, 2))
    t = motion_test(path, 0.01)
    assert t.p < 1e-6 and abs(t.travel - 0.2) < 3 * t.se and t.degree == 2 and t.dof == 2 * (10 - 3)


def test_the_noise_floor_keeps_identical_frames_from_moving() -> None:
    # Identical frames plus a 0.001 drift: no jitter at all, so without the floor any drift would be
    # significant; with the 0.01 floor it is not.
    path = np.c_[np.linspace(0, 0.001, 8), np.zeros(8)]
    assert motion_test(path, 0.01).p > 0.5 and motion_test(path, 0.01).sigma == 0.01


def test_bad_series_raise() -> None:
    with pytest.raises(ValueError):
        motion_test(np.zeros((1, 2)), 0.01)
    with pytest.raises(ValueError):
        motion_test(np.array([[0.0, np.nan], [1, 1]]), 0.01)
    with pytest.raises(ValueError):
        StatsSettings(alpha=0)


def test_the_strain_is_zero_for_a_similarity_and_log_sec_for_a_tilt() -> None:
    # A face moved, spun and zoomed in the image plane: no strain. Turned by 40 degrees about the vertical
    # axis (weak perspective: far away): |strain| = -log cos 40 = 0.2663.
    face = np.array([[-0.5, 0, 0], [0.5, 0, 0], [0, 0.55, 0], [-0.4, 1.05, 0], [0.4, 1.05, 0]]) * 63
    far = np.array([0, 0, 20000.0])
    frames = [project(face @ rotation(0, 0, r).T + far + [d, 0, 0]) for r, d in ((0, 0), (30, 50))]
    turned = project(face @ rotation(40, 0, 0).T + far)
    strain = strain_series(np.array([*frames, turned]))
    assert np.allclose(strain[1], 0, atol=1e-6)
    assert np.linalg.norm(strain[2]) == pytest.approx(-np.log(np.cos(np.radians(40))), abs=2e-3)
    # Widening the mouth moves the width ratio, which a rotation does not.
    wide = frames[0].copy()
    wide[3, 0] -= 5
    wide[4, 0] += 5
    ratios = width_ratio_series(np.array([frames[0], turned, wide]))
    assert ratios[1] == pytest.approx(ratios[0], abs=1e-3) and ratios[2] > ratios[0] + 0.1


def test_three_answers_on_synthetic_bursts() -> None:
    """Heads turning are live, prints tilted far are often flat and never live, still and slid prints and
    talking heads are undetermined, never flat (seed 5, 2% landmark noise, 40 bursts each)."""
    rng = np.random.default_rng(5)
    settings = GeometrySettings()

    def answers(bursts: list[np.ndarray]) -> list[str]:
        return [check_geometry(b, settings).answer for b in bursts]

    heads = answers([bona_fide_burst(rng, 12, turn=35) for _ in range(40)])
    tilts = answers([attack_burst(rng, 12, "tilt") for _ in range(40)])
    still = answers([attack_burst(rng, 12, m) for m in ("still", "slide") for _ in range(20)])
    talk = []
    for _ in range(40):
        b = head_turn_burst(rng, 12, (0.0, 2.0), (0.0, 1.0))
        iod = np.linalg.norm(b[:, 1] - b[:, 0], axis=1)
        opening = np.abs(np.sin(np.linspace(0, 6, 12))) * 0.12 * iod
        b[:, 3, 0] -= opening / 2
        b[:, 4, 0] += opening / 2
        b[:, 3:, 1] += opening[:, None] * 0.3
        talk.append(b)
    talks = answers(talk)
    assert heads and np.mean([a == "live" for a in heads]) >= 0.9 and "flat" not in heads
    assert tilts and "live" not in tilts and tilts.count("flat") >= 4
    assert still and set(still) == {"undetermined"}
    assert talks and "flat" not in talks
