"""fovea.classify.core.training: the checks of a training set, the stratified split, augmentation, the head."""

from __future__ import annotations

import numpy as np
import pytest

from fovea.classify.core.training import (
    Head,
    Standardiser,
    augment,
    check_labels,
    check_name,
    evaluate,
    predict,
    softmax,
    stratified_split,
    train_head,
)
from fovea.common.errors import InvalidArgument


def test_check_labels_sorts_classes_and_maps_targets() -> None:
    labels = ["open"] * 10 + ["closed"] * 12
    found = check_labels(labels, min_per_class=10, max_images=100)
    assert found.classes == ("closed", "open")
    assert found.counts == {"closed": 12, "open": 10}
    assert found.targets[:10].tolist() == [1] * 10


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["cat"] * 20, "at least 2 classes, got 1 ('cat')"),
        (["cat"] * 3 + ["dog"] * 3, "at least 10 images: 'cat' has 3, 'dog' has 3"),
        (["Cat"] * 10 + ["cat"] * 10, "duplicate class name: 'Cat' and 'cat'"),
        (["c/t"] * 10 + ["dog"] * 10, "class name 'c/t' is invalid"),
        (["cat\n"] * 10 + ["dog"] * 10, "class name 'cat\\\\n' is invalid"),  # a final newline too
        (["a"] * 60 + ["b"] * 60, "120 images is more than the 100"),
    ],
)
def test_check_labels_refuses_with_a_message(labels: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_labels(labels, min_per_class=10, max_images=100)


def test_check_name() -> None:
    assert check_name("garage-door_2") == "garage-door_2"
    for bad in ("", "Garage", "-x", "a" * 49, "a b", "../x", "bins\n"):  # "$" alone would take "bins\n"
        with pytest.raises(InvalidArgument, match="is invalid"):
            check_name(bad)


def test_stratified_split_holds_out_each_class_share() -> None:
    targets = np.array([0] * 20 + [1] * 40 + [2] * 10)
    train, val = stratified_split(targets, 0.15, seed=3)
    assert len(np.intersect1d(train, val)) == 0
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(70))
    # round(0.15 * n): 20 -> 3, 40 -> 6, 10 -> 2 (1.5 rounds to even: 2)
    assert np.bincount(targets[val]).tolist() == [3, 6, 2]
    again, _ = stratified_split(targets, 0.15, seed=3)
    assert again.tolist() == train.tolist()  # deterministic for a seed
    other, _ = stratified_split(targets, 0.15, seed=4)
    assert other.tolist() != train.tolist()


def test_stratified_split_keeps_one_of_each_side() -> None:
    train, val = stratified_split(np.array([0, 0, 1, 1]), 0.05, seed=0)
    assert len(val) == 2 and len(train) == 2  # at least one held out, one left
    with pytest.raises(ValueError, match="at least 2"):
        stratified_split(np.array([0, 1, 1]), 0.5, seed=0)


def test_augment_crops_mirrors_and_shifts_colour_without_touching_the_input() -> None:
    rng = np.random.default_rng(0)
    image = np.zeros((300, 400, 3), np.uint8)
    image[:, :200] = (200, 30, 30)  # left half red, right half black
    before = image.copy()
    crops = [augment(image, rng) for _ in range(12)]
    assert np.array_equal(image, before)
    assert all(c.shape == (224, 224, 3) and c.dtype == np.uint8 for c in crops)
    left_red = [c[:, :20, 0].mean() > c[:, -20:, 0].mean() for c in crops]
    assert any(left_red) and not all(left_red)  # some copies mirrored
    assert len({int(c[:, -5:, 1].mean()) for c in crops}) > 3  # black shifted by different colours


def test_train_head_separates_two_clusters_and_reports_each_epoch() -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 1, (2, 64))
    y = np.repeat([0, 1], 50)
    x = (centres[y] + rng.normal(0, 0.8, (100, 64))).astype(np.float32)
    seen = []
    head, history = train_head(
        x[::2],
        y[::2],
        x[1::2],
        y[1::2],
        2,
        epochs=15,
        learning_rate=0.01,
        weight_decay=1e-4,
        seed=0,
        on_epoch=seen.append,
    )
    assert [s.epoch for s in seen] == list(range(1, 16)) and history == seen
    assert history[-1].loss < history[0].loss
    assert history[-1].validation_accuracy >= 0.95
    probs = predict(head, x)
    np.testing.assert_allclose(probs, softmax(x.astype(np.float64) @ head.weight + head.bias), atol=1e-5)


def test_evaluate_confusion_recall_precision() -> None:
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 1])
    report = evaluate(y_true, y_pred, ["a", "b", "c"])
    assert report.confusion.tolist() == [[2, 1, 0], [0, 2, 0], [0, 1, 0]]
    assert report.accuracy == pytest.approx(4 / 6)
    np.testing.assert_allclose(report.recall, [2 / 3, 1.0, 0.0])
    assert report.precision[0] == 1.0 and report.precision[1] == pytest.approx(0.5)
    assert np.isnan(report.precision[2])  # never predicted
    text = report.as_text()
    assert "accuracy 66.7% on 6 images" in text and "confusion" in text


def test_a_head_trained_on_standardised_features_folds_into_one_on_the_raw_features() -> None:
    rng = np.random.default_rng(3)
    raw = rng.normal([0.5, 40.0, -3.0], [0.01, 9.0, 1.0], (50, 3))  # scales 900x apart
    raw[:, 2] = 7.0  # a constant feature: left out, not a division by zero
    standardiser = Standardiser.fit(raw)
    x = standardiser.apply(raw)
    assert np.allclose(x[:, :2].mean(0), 0, atol=1e-5) and np.allclose(x[:, :2].std(0), 1, atol=1e-4)
    assert np.all(x[:, 2] == 0)
    head = Head(rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32))
    folded = standardiser.fold(head)
    assert folded.weight.dtype == folded.bias.dtype == np.float32
    np.testing.assert_allclose(predict(folded, raw), predict(head, x), atol=1e-5)


def test_a_near_constant_feature_is_left_out_not_given_a_huge_weight() -> None:
    rng = np.random.default_rng(4)
    raw = rng.normal(0, 1, (200, 4))
    raw[:, 3] = 5.0 + rng.normal(0, 1e-9, 200)  # rounding noise only
    standardiser = Standardiser.fit(raw)
    assert list(standardiser.keep) == [True, True, True, False]
    assert np.all(standardiser.apply(raw)[:, 3] == 0)
    head = Head(np.ones((4, 2), np.float32), np.zeros(2, np.float32))
    assert np.all(standardiser.fold(head).weight[3] == 0)
