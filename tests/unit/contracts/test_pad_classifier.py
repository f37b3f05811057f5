"""The passive PAD classifier's contract: per-crop log-odds and their fusion over a burst."""

from __future__ import annotations

import numpy as np
import pytest

from fovea.contracts.pad_classifier import LABELS, burst_logit, burst_score, crop_logits, label


def test_labels_are_sorted_as_the_classify_service_orders_classes() -> None:
    assert list(LABELS) == sorted(LABELS) and label("bona_fide", "face") in LABELS
    with pytest.raises(ValueError):
        label("live", "face")


def test_crop_log_odds_compare_the_two_classes_of_the_crops_kind() -> None:
    # LABELS: attack-context, attack-face, bona_fide-context, bona_fide-face. A face crop with p(bona face)
    # 0.6 and p(attack face) 0.2 has log-odds log 3; a context crop 0.1 vs 0.4: log 0.25.
    p = np.array([[0.1, 0.2, 0.1, 0.6], [0.4, 0.3, 0.1, 0.2]])
    x = crop_logits(p, ["face", "context"])
    assert x == pytest.approx([np.log(3), np.log(0.25)])
    with pytest.raises(ValueError):
        crop_logits(p[:, :3], ["face", "context"])


def test_the_burst_is_the_mean_over_frames_of_the_mean_over_crops() -> None:
    # Frame 0: crops 1 and 3 (mean 2); frame 1: one crop -4 -> burst (2 - 4) / 2 = -1.
    assert burst_logit(np.array([1.0, 3.0, -4.0]), np.array([0, 0, 1])) == pytest.approx(-1.0)
    assert np.isnan(burst_logit(np.zeros(0), np.zeros(0)))
    assert burst_score(0.0) == 0.5 and burst_score(10) > 0.99 and burst_score(-1000) >= 0
