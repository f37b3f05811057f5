"""ROC figures on a small case worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from fovea.faces.tools.core.accuracy import pad_report, pair_distances, rates_at, roc_report

# Sorted by distance: 0.2 G, 0.3 G, 0.4 I, 0.5 G, 0.7 I, 0.8 I, 0.9 I (G = genuine, I = impostor).
GENUINE = np.array([0.5, 0.2, 0.3])
IMPOSTOR = np.array([0.8, 0.4, 0.9, 0.7])


def test_roc_report_by_hand() -> None:
    report = roc_report(GENUINE, IMPOSTOR, fars=(0.01, 0.25))
    assert (report.genuine_pairs, report.impostor_pairs) == (3, 4)
    # AUC = P(genuine < impostor) over 3 x 4 pairs: 0.2 and 0.3 beat all four, 0.5 beats three: 11/12.
    assert report.roc_auc == pytest.approx(11 / 12)
    # FAR <= 1%: accept d <= 0.3 (2 of 3 genuine, no impostor); strict threshold halfway to 0.4.
    low = report.operating_points[0]
    assert (low.tar, low.achieved_far, low.threshold) == pytest.approx((2 / 3, 0.0, 0.35))
    # FAR <= 25%: accept d <= 0.5 (all genuine, impostor 0.4): threshold halfway to 0.7.
    high = report.operating_points[1]
    assert (high.tar, high.achieved_far, high.threshold) == pytest.approx((1.0, 0.25, 0.6))
    # FRR falls from 1/3 to 0 while FAR stays 1/4 (accepting 0.5): they are equal at 0.25, a quarter of the
    # way from the d <= 0.4 point (threshold 0.45) to the d <= 0.5 point (threshold 0.6).
    assert report.eer == pytest.approx(0.25)
    assert report.eer_threshold == pytest.approx(0.45 + 0.25 * 0.15)
    assert report.far_resolution == 0.25


def test_perfect_separation() -> None:
    report = roc_report(np.array([0.1, 0.2]), np.array([0.9, 1.0]), fars=(1e-3,))
    assert report.roc_auc == 1.0 and report.eer == 0.0
    point = report.operating_points[0]
    assert point.tar == 1.0 and 0.2 < point.threshold < 0.9


def test_pairs_from_a_distance_matrix() -> None:
    # photos: a1, a2, b1; the matrix is symmetrised ((0.3 + 0.5) / 2 = 0.4 for a1-a2)
    d = np.array([[0.0, 0.3, 0.9], [0.5, 0.0, 0.8], [0.9, 0.8, 0.0]])
    genuine, impostor = pair_distances(d, ["a", "a", "b"])
    np.testing.assert_allclose(genuine, [0.4])
    np.testing.assert_allclose(impostor, [0.9, 0.8])
    with pytest.raises(ValueError):
        pair_distances(d, ["a", "b"])


def test_needs_both_kinds_of_pairs() -> None:
    with pytest.raises(ValueError, match="genuine and impostor"):
        roc_report(np.array([0.1]), np.array([]))
    with pytest.raises(ValueError, match="FAR"):
        roc_report(GENUINE, IMPOSTOR, fars=(0.0,))


def test_rates_at_a_threshold() -> None:
    # d < 0.45 accepts genuine 0.2, 0.3 (2 of 3) and impostor 0.4 (1 of 4)
    assert rates_at(GENUINE, IMPOSTOR, 0.45) == pytest.approx((2 / 3, 0.25))
    assert rates_at(GENUINE, IMPOSTOR, 0.2) == (0.0, 0.0)  # strict


# PAD scores (higher = more bona fide): bona fide 0.9, 0.5, 0.3, nan; attack species "print" 0.1, 0.6 and
# "screen" 0.2, 0.4.
PAD_BONA = np.array([0.9, 0.5, 0.3, np.nan])
PAD_ATTACKS = {"print": np.array([0.1, 0.6]), "screen": np.array([0.2, 0.4])}


def test_pad_report_by_hand() -> None:
    report = pad_report(PAD_BONA, PAD_ATTACKS, threshold=0.35, apcers=(0.0, 0.5))
    # At 0.35: print accepts 0.6 (1/2), screen 0.4 (1/2): APCER = worst = 0.5; bona fide rejected 0.3 and
    # nan (undecided counts as an attack): BPCER 2/4; ACER (0.5 + 0.5) / 2.
    assert report.apcer_by_species == {"print": 0.5, "screen": 0.5}
    assert (report.apcer, report.bpcer, report.acer) == pytest.approx((0.5, 0.5, 0.5))
    assert (report.bona_fide, report.attacks) == (4, {"print": 2, "screen": 2})
    # APCER 0: the lowest threshold above every attack score is the next score, 0.9: BPCER 3/4.
    zero = report.operating_points[0]
    assert (zero.threshold, zero.bpcer, zero.achieved_apcer) == pytest.approx((0.9, 0.75, 0.0))
    # APCER <= 0.5: threshold 0.2 accepts print 0.6 (1/2) and screen 0.2, 0.4 (2/2): too many; 0.3 accepts
    # print 0.6 and screen 0.4 (1/2 each): 0.3 is the lowest, BPCER = nan only, 1/4.
    half = report.operating_points[1]
    assert (half.threshold, half.bpcer, half.achieved_apcer) == pytest.approx((0.3, 0.25, 0.5))


def test_pad_report_refuses_empty_sets() -> None:
    with pytest.raises(ValueError, match="bona fide"):
        pad_report(np.array([]), PAD_ATTACKS, 0.5)
    with pytest.raises(ValueError, match="attack species"):
        pad_report(PAD_BONA, {"print": np.array([])}, 0.5)
    with pytest.raises(ValueError, match="APCER targets"):
        pad_report(PAD_BONA, PAD_ATTACKS, 0.5, apcers=(1.0,))
