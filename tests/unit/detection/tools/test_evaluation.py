"""The pure parts of `fovea detect eval`: matching class names, and the report."""

from __future__ import annotations

import pytest

from fovea.detection.tools.evaluation import ClassAP, EvalReport, check_matched, match_labels, normalise_label


def test_normalise_label() -> None:
    assert normalise_label(" Traffic_Light ") == "traffic light"
    assert normalise_label("hair-drier") == "hair drier"
    assert normalise_label("teddy   bear") == "teddy bear"


def test_labels_match_by_name_exactly_then_loosely() -> None:
    dataset = ["Dog", "traffic_light", "person", "unicorn"]
    detector = ["person", "bicycle", "dog", "traffic light", "Dog"]
    # exact "Dog" and "person"; loose "dog" and "traffic light"; "bicycle" is not in the dataset
    assert match_labels(dataset, detector) == {"person": 2, "dog": 0, "traffic light": 1, "Dog": 0}
    assert match_labels(dataset, []) == {}


def test_report_text_and_dict() -> None:
    report = EvalReport(
        folder="data/set",
        model="nanodet",
        images=2,
        boxes=3,
        map50=0.5,
        map50_95=0.25,
        per_class=[ClassAP("dog", 2, 1.0, 0.5, True), ClassAP("unicorn", 1, 0.0, 0.0, False)],
        warnings=[
            "dataset class 'unicorn' is not a class of detector 'nanodet': its 1 boxes count with AP 0"
        ],
        seconds=0.5,
    )
    assert report.as_text().splitlines() == [
        "data/set: 2 images, 3 boxes, model nanodet",
        "mAP@0.5 0.500   mAP@[.5:.95] 0.250   (0.5 s, 4.0 images/s)",  # 2 images in 0.5 s
        "",
        "class    boxes  AP@0.5  AP@[.5:.95]",
        "dog          2   1.000        0.500",
        "unicorn      1   0.000        0.000  (not a class of the detector)",
        "warning: dataset class 'unicorn' is not a class of detector 'nanodet': its 1 boxes count with AP 0",
    ]
    data = report.as_dict()
    assert data["seconds"] == 0.5 and data["images_per_s"] == 4.0
    assert data["map50"] == 0.5 and data["per_class"][1] == {
        "name": "unicorn",
        "boxes": 1,
        "ap50": 0.0,
        "ap50_95": 0.0,
        "known": False,
    }


def test_no_class_in_common_is_refused() -> None:
    check_matched({"dog": 0}, ["dog", "cat"], "nanodet", ["dog"])  # one is enough
    with pytest.raises(ValueError, match=r"none of the dataset's classes \('widget', 'gadget'\) is a class of "
                       r"detector 'nanodet' \('person', 'bicycle'\)"):  # fmt: skip
        check_matched({}, ["widget", "gadget"], "nanodet", ["person", "bicycle"])
    with pytest.raises(ValueError, match=r"'c7', \.\.\. \(20 in all\)"):
        check_matched({}, [f"c{i}" for i in range(20)], "m", ["x"])
