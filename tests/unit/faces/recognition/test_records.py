"""Template records survive the trip through bytes; ids, metadata and thresholds are checked."""

from __future__ import annotations

import numpy as np
import pytest

from fovea.faces.recognition.core.records import (
    TemplateRecord,
    check_door_id,
    check_gallery_id,
    check_identity_id,
    check_metadata,
    check_threshold,
    decode_template,
    encode_template,
)


def record(i: int, dim: int = 128) -> TemplateRecord:
    vector = np.random.default_rng(i).normal(size=dim).astype(np.float32)
    return TemplateRecord(f"t{i}", f"person {i} é", "dlib_v1", 1_700_000_000_000 + i, vector)


def test_template_round_trip_is_exact() -> None:
    original = record(1)
    data = encode_template(original)
    assert len(data) < 128 * 4 + 100  # header + raw float32, no JSON array
    back = decode_template(data)
    assert (back.template_id, back.identity_id, back.embedding_model, back.created_ms) == (
        "t1",
        "person 1 é",
        "dlib_v1",
        1_700_000_000_001,
    )
    assert back.embedding.dtype == np.float32
    np.testing.assert_array_equal(back.embedding, original.embedding)


def test_bad_records_are_refused() -> None:
    with pytest.raises(ValueError):
        decode_template(b"XX1{}\n")
    with pytest.raises(ValueError):
        decode_template(encode_template(record(0))[:-1])  # a partial float


@pytest.mark.parametrize("good", ["office", "site-7.door_2", "A" * 64, "0lobby"])
def test_good_gallery_ids(good: str) -> None:
    assert check_gallery_id(good) == good


@pytest.mark.parametrize("bad", ["", "-x", "a b", "a:b", "A" * 65, "é", "office\n"])
def test_bad_gallery_ids(bad: str) -> None:
    with pytest.raises(ValueError, match="gallery_id"):
        check_gallery_id(bad)


def test_door_ids_follow_the_gallery_rule() -> None:
    assert check_door_id("front-door.2_b") == "front-door.2_b"
    for bad in ["", " ", "*", "../../x", "door 7", "door\n", "d" * 65, ".hidden"]:
        with pytest.raises(ValueError, match="door_id"):
            check_door_id(bad)
    with pytest.raises(ValueError) as info:
        check_door_id("x" * 10_000)
    assert len(str(info.value)) < 300  # the caller's text is not echoed whole


def test_identity_ids() -> None:
    assert check_identity_id("Jane Doe:42/é") == "Jane Doe:42/é"
    for bad in ["", " x", "x ", "a\nb", "x" * 129]:
        with pytest.raises(ValueError, match="identity_id"):
            check_identity_id(bad)


def test_metadata_and_threshold_limits() -> None:
    assert check_metadata({"k": "v"}) == {"k": "v"}
    with pytest.raises(ValueError):
        check_metadata({f"k{i}": "v" for i in range(33)})
    with pytest.raises(ValueError):
        check_metadata({"k": "v" * 5000})
    assert check_threshold(0.0) == 0.0 and check_threshold(0.55) == 0.55
    for bad in [-0.1, 4.5, float("nan")]:
        with pytest.raises(ValueError):
            check_threshold(bad)
