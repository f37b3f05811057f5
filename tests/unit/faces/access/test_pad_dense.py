"""The dense PAD check (fovea.faces.access.core.pad_dense) on synthetic dense bursts (pad_synth, DENSE_FACE_3D)."""

from __future__ import annotations

import numpy as np
import pytest

from fovea.faces.access.core.pad import GeometrySettings, PadResult, PadVerdict, check_geometry
from fovea.faces.access.core.pad_dense import (
    COMBINED_CHECK,
    DenseSettings,
    check_dense,
    combine,
    cylinder_residual,
    fit_homography,
    parallax_field,
)
from fovea.faces.tools.core.pad_synth import (
    DENSE_FACE_3D,
    attack_burst,
    bent_burst,
    bona_fide_burst,
    synthetic_set,
)


def test_fit_homography_recovers_a_known_one() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (20, 2))
    h = np.array([[1.1, 0.05, 3.0], [-0.02, 0.95, -4.0], [1e-4, -2e-4, 1.0]])
    p = np.c_[src, np.ones(20)] @ h.T
    dst = p[:, :2] / p[:, 2:]
    np.testing.assert_allclose(fit_homography(src, dst), h, atol=1e-9)
    with pytest.raises(ValueError):
        fit_homography(src[:3], dst[:3])


def test_noise_free_sheets_leave_nothing_a_head_leaves_its_shape() -> None:
    """Noise-free: a tilted flat print fits one homography (field ~0); a bent print is fitted by a single-axis
    cubic bend to below 0.006 IOD; a head turning 35 degrees leaves 0.01 IOD or more off any such bend, more
    than a free rigid shape leaves (which the perspective of a 35-degree turn keeps above zero)."""
    rng = np.random.default_rng(1)
    flat = attack_burst(rng, 7, "tilt", noise=0.0, layout=DENSE_FACE_3D)
    total, _, _, _ = cylinder_residual(*parallax_field(flat)[:2])
    assert total < 1e-6
    for motion in ("bent", "bent_h"):
        bent = bent_burst(rng, 7, motion, noise=0.0, layout=DENSE_FACE_3D)
        total, sheet, _, _ = cylinder_residual(*parallax_field(bent)[:2])
        assert sheet <= total and sheet < 0.006
    head = bona_fide_burst(rng, 7, turn=35.0, noise=0.0, layout=DENSE_FACE_3D)
    _, sheet, rigid, _ = cylinder_residual(*parallax_field(head)[:2])
    assert sheet > 0.01 and sheet > 1.2 * rigid


def test_measured_rates_on_the_synthetic_set() -> None:
    """30 bursts per attack species and 180 heads at 2% IOD noise (seed 7): an attack gets through both
    checks only where the 5-point check alone lets it through (one 3-frame zoom here), at most 1% of all
    attacks do, and at most 10% of heads are refused (bench/pad_dense.py measures larger sets)."""
    data = synthetic_set(7, 30, bent=True, layout=DENSE_FACE_3D)
    five, dense = GeometrySettings(), DenseSettings()

    def passes(burst: np.ndarray) -> tuple[bool, bool]:
        f = check_geometry(burst[:, :5], five)
        both = combine(f, check_dense(list(burst), dense))
        return f.verdict is PadVerdict.BONA_FIDE, both.verdict is PadVerdict.BONA_FIDE

    assert data.bona_fide and all(data.attacks.values())
    assert np.mean([not passes(b)[1] for b in data.bona_fide]) <= 0.10
    attacks = np.array([passes(b) for bursts in data.attacks.values() for b in bursts])
    assert not np.any(attacks[:, 1] & ~attacks[:, 0])
    assert attacks[:, 1].mean() <= 0.01
    for species in ("bent", "bent_h"):
        assert not any(passes(b)[1] for b in data.attacks[species])


def test_too_few_frames_with_a_mesh_is_undecided_and_bad_shapes_raise() -> None:
    rng = np.random.default_rng(2)
    burst = list(bona_fide_burst(rng, 4, layout=DENSE_FACE_3D))
    result = check_dense([burst[0], None, burst[2], None], DenseSettings())
    assert result.verdict is PadVerdict.UNDECIDED and result.usable_frames == 2
    with pytest.raises(ValueError):
        check_dense([burst[0], burst[1][:5], burst[2]], DenseSettings())
    with pytest.raises(ValueError):
        DenseSettings(min_ratio=0.5)


def test_identity_change_is_an_attack() -> None:
    rng = np.random.default_rng(3)
    burst = list(bona_fide_burst(rng, 5, layout=DENSE_FACE_3D))
    embeddings = np.zeros((5, 4))
    embeddings[3, 0] = 1.0
    result = check_dense(burst, DenseSettings(), embeddings=embeddings, match_threshold=0.6)
    assert result.verdict is PadVerdict.ATTACK and "identity" in result.reasons[0]


def test_combine_needs_both_and_names_the_failing_check_first() -> None:
    def r(verdict: PadVerdict, reason: str) -> PadResult:
        return PadResult(verdict, 1.0, 1.0, (reason,), 5, 5)

    ok, bad, unsure = PadVerdict.BONA_FIDE, PadVerdict.ATTACK, PadVerdict.UNDECIDED
    assert combine(r(ok, "five"), r(ok, "dense")).verdict is ok
    both = combine(r(ok, "five"), r(bad, "dense"))
    assert both.verdict is bad and both.reasons == ("dense", "five") and both.check == COMBINED_CHECK
    assert combine(r(bad, "five"), r(unsure, "dense")).reasons[0] == "five"
    assert combine(r(unsure, "five"), r(ok, "dense")).verdict is unsure
