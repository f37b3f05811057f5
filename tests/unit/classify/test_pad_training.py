"""The pad recipe's pure parts: burst checks, the split by burst, augmentation, weights, calibration."""

from __future__ import annotations

import numpy as np
import pytest

from fovea.classify.core.pad_training import (
    augment_texture,
    balanced_weights,
    burst_folds,
    burst_kinds,
    calibrate,
    camera_jitter,
    pad_calibration,
    shift_bias,
    stratum,
)
from fovea.common.errors import InvalidArgument
from fovea.contracts.pad_classifier import LABELS


def _set(bona: int, attack: int) -> tuple[list[str], list[str]]:
    labels, groups = [], []
    for kind, n in (("bona_fide", bona), ("attack", attack)):
        for b in range(n):
            for crop in ("face", "context"):
                labels.append(f"{kind}-{crop}")
                groups.append(f"{kind}/{b}")
    return labels, groups


def test_too_little_material_is_refused_saying_how_much_is_enough() -> None:
    labels, groups = _set(7, 9)
    with pytest.raises(InvalidArgument, match="at least 8 of each") as refused:
        burst_kinds(labels, groups)
    assert "aim for 16 or more of each" in str(refused.value)  # the learning curve's advice
    assert len(burst_kinds(*_set(8, 8))) == 16
    with pytest.raises(InvalidArgument, match="group"):
        burst_kinds(labels, ["", *groups[1:]])
    with pytest.raises(InvalidArgument, match="both bona fide and attack"):
        burst_kinds(["bona_fide-face", "attack-face"], ["g", "g"], min_bursts=1)
    with pytest.raises(InvalidArgument, match="classes"):
        burst_kinds(["cat"], ["g"], min_bursts=1)


def test_every_burst_is_in_one_fold_each_kind_in_every_fold() -> None:
    kinds = burst_kinds(*_set(10, 20))
    folds = burst_folds(kinds, 5, seed=3)
    assert set(folds) == set(kinds) and set(folds.values()) == set(range(5))
    for fold in range(5):
        members = [g for g, f in folds.items() if f == fold]
        assert {kinds[g] for g in members} == {"bona_fide", "attack"} and len(members) == 6
    assert burst_folds(kinds, 5, seed=3) == folds
    # fewer folds than a kind has bursts; none for a kind of one burst
    assert set(
        burst_folds(
            {
                "bona_fide/a": "bona_fide",
                "bona_fide/b": "bona_fide",
                **{f"attack/{i}": "attack" for i in range(9)},
            }
        ).values()
    ) == {0, 1}
    with pytest.raises(ValueError, match="2 bursts of each kind"):
        burst_folds({"bona_fide/a": "bona_fide", "attack/b": "attack", "attack/c": "attack"})


def test_each_species_is_spread_over_the_folds() -> None:
    """pad-train names bursts attack/<species>/<seq>; a species' bursts go to different folds, so a head
    trained without any one fold has seen every species with two bursts or more."""
    species = ["print_still", "print_slide", "print_tilt", "print_zoom", "print_bent", "screen_tilt"]
    attacks = {f"attack/{sp}/p-{i}": "attack" for sp in species for i in range(2)}
    kinds = {**attacks, **{f"bona_fide/p-{i}": "bona_fide" for i in range(12)}}
    for seed in range(20):
        folds = burst_folds(kinds, 5, seed)
        for fold in range(5):
            trained = {stratum(g) for g in attacks if folds[g] != fold}
            assert trained == {f"attack/{sp}" for sp in species}, (seed, fold)
    assert stratum("attack/seq-1") == "attack" and stratum("seq") == ""


def test_cross_fitted_calibration_scores_every_burst() -> None:
    """pad_calibration over out-of-fold probabilities: one score per burst (the crops' log-odds averaged),
    the threshold between the kinds, the figures a job reports."""
    labels, groups = _set(3, 3)
    bona = np.array([label.startswith("bona") for label in labels])
    p_bona = np.where(bona, 0.8, 0.3)  # each crop's probability of being bona fide, split over two classes
    probabilities = np.zeros((len(labels), 4))
    for i, label in enumerate(labels):
        crop = label.split("-", 1)[1]
        probabilities[i, LABELS.index(f"bona_fide-{crop}")] = p_bona[i]
        probabilities[i, LABELS.index(f"attack-{crop}")] = 1 - p_bona[i]
    found, figures = pad_calibration(probabilities, labels, groups)
    low, high = np.log(0.3 / 0.7), np.log(0.8 / 0.2)
    assert found.threshold == pytest.approx((low + high) / 2, abs=1e-6)
    assert figures["validation_bona_fide_bursts"] == 3 and figures["validation_attack_bursts"] == 3
    assert figures["bpcer"] == figures["apcer"] == figures["crop_bpcer"] == figures["crop_apcer"] == 0
    assert figures["logit_shift"] == pytest.approx(-found.threshold)
    assert figures["apcer_by_species"] == {"attack": 0.0}  # attack/<seq>: no species folder
    species = [g.replace("attack/", "attack/print/") if g.endswith("/0") else g for g in groups]
    assert pad_calibration(probabilities, labels, species)[1]["apcer_by_species"] == {
        "attack": 0.0,
        "print": 0.0,
    }


def test_augmentation_keeps_the_pixels_scale_and_colour_balance() -> None:
    # A one-pixel checkerboard (a screen's grid) survives: every output pixel is a source pixel times one
    # gain, so neighbours still alternate, and the three channels keep their ratios.
    rng = np.random.default_rng(0)
    board = (np.indices((256, 256)).sum(0) % 2 * 100 + 50).astype(np.uint8)
    image = np.stack([board, board // 2, board // 4 + 10], -1)
    out = augment_texture(image, rng, 224, camera=0.0)
    assert out.shape == (224, 224, 3)
    assert np.all(np.abs(np.diff(out[..., 0].astype(int), axis=1)) > 50)
    gain = out[..., 0].astype(float) / np.maximum(out[..., 1], 1)
    assert np.ptp(gain[out[..., 1] > 40]) < 0.1
    with pytest.raises(ValueError):
        augment_texture(image[:200], rng, 224)


def test_camera_jitter_gives_another_cameras_look_to_some_copies() -> None:
    # A one-pixel checkerboard is what a blur, a lower resolution or a JPEG wipes out first: over 40 draws
    # some copies keep it (no jitter drawn, noise only) and some lose it; the image's mean stays (within what
    # a phone's sharpening clips off this board's dark squares).
    board = (np.indices((256, 256)).sum(0) % 2 * 100 + 50).astype(np.uint8)
    image = np.stack([board] * 3, -1)
    contrast = []
    for seed in range(40):
        out = camera_jitter(image, np.random.default_rng(seed))
        assert out.shape == image.shape and out.dtype == np.uint8
        assert abs(float(out.mean()) - float(image.mean())) < 12
        contrast.append(float(np.abs(np.diff(out[..., 0].astype(int), axis=1)).mean()))
    assert min(contrast) < 30 and max(contrast) > 90  # blurred away in some, kept (100 levels) in others
    np.testing.assert_array_equal(
        camera_jitter(image, np.random.default_rng(3)), camera_jitter(image, np.random.default_rng(3))
    )
    # camera=0: augment_texture draws no jitter, the grid survives every copy
    rng = np.random.default_rng(1)
    assert all(
        np.abs(np.diff(augment_texture(image, rng, camera=0.0)[..., 0].astype(int), axis=1)).min() > 50
        for _ in range(5)
    )
    jittered = [augment_texture(image, np.random.default_rng(s), camera=1.0) for s in range(10)]
    assert min(float(np.abs(np.diff(j[..., 0].astype(int), axis=1)).mean()) for j in jittered) < 30


def test_weights_give_both_kinds_the_same_total() -> None:
    w = balanced_weights(["bona_fide"] * 2 + ["attack"] * 6)
    assert w[:2].sum() == pytest.approx(w[2:].sum()) and w.mean() == pytest.approx(1.0)


def test_calibration_picks_the_fewest_errors_in_the_middle_of_the_gap() -> None:
    # Bona fide at 1, 2, 3 and attacks at -1, 0, 2.5: thresholds between 0 and 1 make no bona fide error and
    # no attack error except 2.5 (1 of 3); so do ones in (2.5, 3]? no: they refuse 1 and 2. The widest
    # error-minimising gap is (0, 1): threshold 0.5, BPCER 0, APCER 1/3.
    c = calibrate(np.array([1.0, 2, 3, -1, 0, 2.5]), np.array([1, 1, 1, 0, 0, 0], bool))
    assert c.threshold == pytest.approx(0.5) and c.bpcer == 0 and c.apcer == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        calibrate(np.array([1.0]), np.array([True]))
    bias = shift_bias(np.zeros(4, np.float32), 1.5)
    assert [bias[LABELS.index(n)] for n in LABELS] == [0, 0, 1.5, 1.5]
