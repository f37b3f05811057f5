from fovea.detection.core.labels import COCO80_LABELS, COCO80_TO_COCO91_IDS


def test_coco80_labels() -> None:
    assert len(COCO80_LABELS) == 80 and len(set(COCO80_LABELS)) == 80
    assert COCO80_LABELS[:10] == (
        "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    )  # fmt: skip
    assert COCO80_LABELS[-3:] == ("teddy bear", "hair drier", "toothbrush")
    assert COCO80_LABELS[62] == "tv" and COCO80_LABELS[60] == "dining table"


def test_coco91_ids() -> None:
    assert len(COCO80_TO_COCO91_IDS) == 80
    assert list(COCO80_TO_COCO91_IDS) == sorted(set(COCO80_TO_COCO91_IDS))
    ids = dict(zip(COCO80_LABELS, COCO80_TO_COCO91_IDS, strict=True))
    # COCO's category ids skip 12, 26, 29, 30, 45, 66, 68, 69, 71, 83
    assert ids["person"] == 1 and ids["stop sign"] == 13 and ids["backpack"] == 27
    assert ids["dining table"] == 67 and ids["toilet"] == 70 and ids["toothbrush"] == 90
