"""Requests checked at the edge: parsed as their type, known enum values, bounded strings and repeats."""

from __future__ import annotations

import pytest

from fovea.common.errors import InvalidArgument
from fovea.detection.v1 import detection_pb2
from fovea.faces.v1 import faces_pb2
from fovea.gateway.validation import FieldLimits, parse_request
from fovea.style.v1 import style_pb2


def test_a_valid_request_parses() -> None:
    data = style_pb2.SubmitJobRequest(style_name="style3", idempotency_key="k").SerializeToString()
    assert parse_request(data, style_pb2.SubmitJobRequest).style_name == "style3"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "data",
    [
        b"\x0a\xff\xff\xff\xff\x0f",  # a length-delimited field longer than the message
        b"\x0a\x02\xff\xfe",  # field 1 (job_id, a string) that is not UTF-8
        b"\x0a",  # truncated
    ],
)
def test_undecodable_bytes_are_invalid_argument(data: bytes) -> None:
    with pytest.raises(InvalidArgument, match="request is not a valid GetJobRequest message"):
        parse_request(data, style_pb2.GetJobRequest)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            style_pb2.SubmitJobRequest(gatys=style_pb2.GatysParams(optimizer=7)),  # type: ignore[arg-type]
            "gatys.optimizer 7 is not a known Optimizer; known: OPTIMIZER_UNSPECIFIED, LBFGS, ADAM",
        ),
        (
            style_pb2.SubmitJobRequest(gatys=style_pb2.GatysParams(init=-1)),  # type: ignore[arg-type]
            "gatys.init -1 is not a known Init",
        ),
        (style_pb2.GetJobRequest(job_id="x" * 100_000), "job_id is 100000 characters long; at most 256"),
        (
            faces_pb2.CreateGalleryRequest(gallery_id="g", metadata={f"k{i}": "v" for i in range(65)}),
            "metadata has 65 entries; at most 64",
        ),
        (faces_pb2.CreateGalleryRequest(metadata={"k" * 129: "v"}), "metadata has a key of 129 characters"),
        (
            faces_pb2.CreateGalleryRequest(metadata={"team": "v" * 1025}),
            "metadata['team'] is 1025 characters",
        ),
        (
            style_pb2.SubmitJobRequest(gatys=style_pb2.GatysParams(style_layers={"r" * 300: 1.0})),
            "gatys.style_layers has a key of 300 characters",
        ),
        (detection_pb2.DetectRequest(classes=["c"] * 1025), "classes has 1025 entries; at most 1024"),
    ],
)
def test_out_of_bounds_fields_are_named_not_echoed(message: object, expected: str) -> None:
    data = message.SerializeToString()  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgument) as err:
        parse_request(data, type(message))  # type: ignore[arg-type]
    assert expected in str(err.value)
    assert len(str(err.value)) < 200


def test_limits_are_arguments() -> None:
    data = style_pb2.GetJobRequest(job_id="abcdef").SerializeToString()
    parse_request(data, style_pb2.GetJobRequest)
    with pytest.raises(InvalidArgument, match="at most 5"):
        parse_request(data, style_pb2.GetJobRequest, FieldLimits(max_string_chars=5))
