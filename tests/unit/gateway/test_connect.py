"""The Connect protocol's pure pieces: codes and HTTP statuses, codecs, timeouts, JSON <-> proto, envelopes."""

from __future__ import annotations

import base64
import json
import random

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor_pb2 import FieldDescriptorProto
from google.protobuf.message import Message

from fovea.common.v1 import common_pb2
from fovea.detection.v1 import detection_pb2
from fovea.faces.v1 import faces_pb2
from fovea.gateway.connect import (
    CODE_NAMES,
    FLAG_COMPRESSED,
    FLAG_END_STREAM,
    HTTP_STATUS,
    Codec,
    ConnectError,
    decode_request,
    encode_response,
    end_stream,
    envelope,
    parse_timeout,
    read_envelopes,
    single_message,
    sse_event,
    stream_codec,
    unary_codec,
)
from fovea.style.v1 import style_pb2


def invalid_argument(fn: object, *args: object) -> str:
    with pytest.raises(ConnectError) as caught:
        fn(*args)  # type: ignore[operator]
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.http_status == 400
    return caught.value.message


def test_every_error_code_has_a_connect_name_and_an_http_status() -> None:
    codes = [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK]
    assert len(codes) == 16
    assert set(CODE_NAMES) == set(HTTP_STATUS) == set(codes)
    assert CODE_NAMES[grpc.StatusCode.UNAUTHENTICATED] == "unauthenticated"
    assert CODE_NAMES[grpc.StatusCode.PERMISSION_DENIED] == "permission_denied"
    assert CODE_NAMES[grpc.StatusCode.CANCELLED] == "canceled"  # Connect's spelling
    # the Connect spec's table, for the codes callers meet most
    assert HTTP_STATUS[grpc.StatusCode.INVALID_ARGUMENT] == 400
    assert HTTP_STATUS[grpc.StatusCode.UNAUTHENTICATED] == 401
    assert HTTP_STATUS[grpc.StatusCode.PERMISSION_DENIED] == 403
    assert HTTP_STATUS[grpc.StatusCode.NOT_FOUND] == 404
    assert HTTP_STATUS[grpc.StatusCode.RESOURCE_EXHAUSTED] == 429
    assert HTTP_STATUS[grpc.StatusCode.UNAVAILABLE] == 503
    assert HTTP_STATUS[grpc.StatusCode.DEADLINE_EXCEEDED] == 504
    assert HTTP_STATUS[grpc.StatusCode.UNIMPLEMENTED] == 501


def test_an_error_as_json() -> None:
    error = ConnectError(grpc.StatusCode.UNAUTHENTICATED, "missing API key")
    assert error.to_json() == {"code": "unauthenticated", "message": "missing API key"}
    assert error.http_status == 401


def test_codecs_by_content_type() -> None:
    assert unary_codec("application/json", "S/M") is Codec.JSON
    assert unary_codec("Application/JSON", "S/M") is Codec.JSON
    assert unary_codec("application/proto", "S/M") is Codec.PROTO
    message = invalid_argument(unary_codec, "application/x-www-form-urlencoded", "DetectionService/Detect")
    assert "DetectionService/Detect takes Content-Type application/json" in message
    assert "application/x-www-form-urlencoded" in message and "curl: -H" in message
    assert stream_codec("application/connect+json", "", "S/W") == (Codec.JSON, False)
    assert stream_codec("application/connect+proto", "", "S/W") == (Codec.PROTO, False)
    assert stream_codec("application/json", "text/event-stream", "S/W") == (Codec.JSON, True)
    message = invalid_argument(stream_codec, "application/json", "*/*", "StyleService/WatchJob")
    assert "StyleService/WatchJob streams its answers" in message and "text/event-stream" in message


def test_timeouts() -> None:
    assert parse_timeout(None) is None
    assert parse_timeout("1500") == 1.5
    assert parse_timeout(" 1 ") == 0.001
    for bad in ("", "abc", "0", "-5", "1.5", "12345678901"):
        assert "Connect-Timeout-Ms" in invalid_argument(parse_timeout, bad)


def test_json_requests_become_the_same_proto_bytes_as_grpc_sends() -> None:
    data = b"\x89PNG\r\n"
    expected = detection_pb2.DetectRequest(
        image=common_pb2.Image(data=data), min_score=0.25, classes=["dog"], max_candidates=3
    )
    camel = {
        "image": {"data": base64.b64encode(data).decode()},
        "minScore": 0.25,
        "classes": ["dog"],
        "maxCandidates": 3,
    }
    snake = {**camel, "max_candidates": 3}
    del snake["maxCandidates"]
    for body in (camel, snake):
        raw = decode_request(json.dumps(body).encode(), Codec.JSON, detection_pb2.DetectRequest)
        assert detection_pb2.DetectRequest.FromString(raw) == expected
    url_safe = {"image": {"data": base64.urlsafe_b64encode(b"\xfb\xff").decode().rstrip("=")}}
    raw = decode_request(json.dumps(url_safe).encode(), Codec.JSON, detection_pb2.DetectRequest)
    assert detection_pb2.DetectRequest.FromString(raw).image.data == b"\xfb\xff"
    # maps, enums by name, 64-bit integers as strings
    raw = decode_request(
        b'{"galleryId": "g", "metadata": {"team": "red"}}', Codec.JSON, faces_pb2.EnrollRequest
    )
    assert dict(faces_pb2.EnrollRequest.FromString(raw).metadata) == {"team": "red"}
    raw = decode_request(b'{"gatys": {"optimizer": "ADAM"}}', Codec.JSON, style_pb2.SubmitJobRequest)
    assert style_pb2.SubmitJobRequest.FromString(raw).gatys.optimizer == style_pb2.ADAM


def _tree_type() -> type[Message]:
    """``message T { repeated bytes r = 1; bytes s = 2; repeated T kids = 3; map<string, bytes> m = 4; }``:
    every place a bytes field can sit (the public protos have no repeated bytes)."""
    proto = descriptor_pb2.FileDescriptorProto(name="tree_test.proto", package="t", syntax="proto3")
    tree = proto.message_type.add(name="T")
    entry = tree.nested_type.add(name="MEntry")
    entry.options.map_entry = True
    entry.field.add(
        name="key", number=1, type=FieldDescriptorProto.TYPE_STRING, label=FieldDescriptorProto.LABEL_OPTIONAL
    )
    entry.field.add(
        name="value",
        number=2,
        type=FieldDescriptorProto.TYPE_BYTES,
        label=FieldDescriptorProto.LABEL_OPTIONAL,
    )
    for name, number, kind, label, type_name in [
        ("r", 1, FieldDescriptorProto.TYPE_BYTES, FieldDescriptorProto.LABEL_REPEATED, ""),
        ("s", 2, FieldDescriptorProto.TYPE_BYTES, FieldDescriptorProto.LABEL_OPTIONAL, ""),
        ("kids", 3, FieldDescriptorProto.TYPE_MESSAGE, FieldDescriptorProto.LABEL_REPEATED, ".t.T"),
        ("m", 4, FieldDescriptorProto.TYPE_MESSAGE, FieldDescriptorProto.LABEL_REPEATED, ".t.T.MEntry"),
    ]:
        field = tree.field.add(name=name, number=number, type=kind, label=label)
        if type_name:
            field.type_name = type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("t.T"))


@pytest.mark.parametrize(
    "body",
    [
        {
            "r": ["AAE=", "_-8", ""],
            "s": "+/8=",
            "kids": [{"s": "AQ"}, {}, {"r": ["Ag=="], "kids": [{"s": "Aw"}]}],
        },
        {"m": {"a": "AAE="}, "s": None, "kids": [{"m": {"b": "-_8"}}]},
        {"r": [], "kids": []},
    ],
)
def test_bytes_anywhere_decode_as_json_format_does(body: dict[str, object]) -> None:
    tree = _tree_type()
    text = json.dumps(body).encode()
    assert tree.FromString(decode_request(text, Codec.JSON, tree)) == json_format.Parse(text, tree())


def test_an_empty_body_is_the_empty_message_and_proto_bodies_pass_as_they_are() -> None:
    assert decode_request(b"", Codec.JSON, detection_pb2.DetectRequest) == b""
    assert decode_request(b" \n", Codec.JSON, detection_pb2.DetectRequest) == b""
    assert decode_request(b"\x0a\x00", Codec.PROTO, detection_pb2.DetectRequest) == b"\x0a\x00"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"imag": {}}', 'no field named "imag"'),
        (b'{"image": ', "Expecting value: line 1 column 11"),
        (b"[1, 2]", "DetectRequest"),
        (b'"text"', "DetectRequest"),
        (b'{"image": {"data": "not base64!"}}', "image"),
        (b'{"minScore": "high"}', "minScore"),
        (b'{"maxDetections": 1e40}', "maxDetections"),
        (b'{"classes": "dog"}', "classes"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"image": {"data": "", "data": ""}}', "duplicate key 'data'"),
        (b'{"image": {"data": "abcde"}}', "image.data is not base64"),
        ('{"image": {"data": "été"}}'.encode(), "image.data is not base64"),
        (b'{"image":' * 200 + b"{}" + b"}" * 200, "DetectRequest"),
    ],
)
def test_bad_json_is_invalid_argument_naming_the_problem(body: bytes, says: str) -> None:
    message = invalid_argument(decode_request, body, Codec.JSON, detection_pb2.DetectRequest)
    assert "request body is not" in message and says in message, message
    assert len(message) <= 700 and "\n" not in message


def test_responses_are_json_with_every_field_written_out() -> None:
    reply = detection_pb2.DetectResponse(
        model="nanodet",
        detections=[detection_pb2.Detection(label="dog", score=0.5, box=common_pb2.BoundingBox(x2=3))],
        annotated_png=b"\x00\x01",
    )
    out = json.loads(encode_response(reply.SerializeToString(), Codec.JSON, detection_pb2.DetectResponse))
    assert out["model"] == "nanodet" and out["annotatedPng"] == "AAE="
    assert out["detections"] == [
        {"label": "dog", "classId": 0, "score": 0.5, "box": {"x1": 0.0, "y1": 0.0, "x2": 3.0, "y2": 0.0}}
    ]
    assert out["clientTag"] == "" and out["inferenceSeconds"] == 0.0  # zeros too, unlike canonical JSON
    job = style_pb2.Job(state=style_pb2.SUCCEEDED, created_unix_ms=2**40)
    out = json.loads(encode_response(job.SerializeToString(), Codec.JSON, style_pb2.Job))
    assert out["state"] == "SUCCEEDED" and out["createdUnixMs"] == str(2**40)
    assert "progress" not in out  # a message field left unset stays out
    raw = reply.SerializeToString()
    assert encode_response(raw, Codec.PROTO, detection_pb2.DetectResponse) == raw


def test_envelopes() -> None:
    # flags byte, then the length as 4 bytes big-endian: 2 bytes -> 00 00 00 02
    assert envelope(b"{}") == b"\x00\x00\x00\x00\x02{}"
    body = envelope(b"{}") + envelope(b'{"a":1}') + envelope(b"", FLAG_END_STREAM)
    assert list(read_envelopes(body)) == [(0, b"{}"), (0, b'{"a":1}'), (FLAG_END_STREAM, b"")]
    assert list(read_envelopes(b"")) == []
    assert single_message(envelope(b"{}")) == b"{}"
    assert "exactly one request message, not 0" in invalid_argument(single_message, b"")
    assert "not 2" in invalid_argument(single_message, envelope(b"{}") * 2)
    assert "envelope header" in invalid_argument(lambda: list(read_envelopes(b"\x00\x00")))
    assert "only 2 do" in invalid_argument(lambda: list(read_envelopes(b"\x00\x00\x00\x00\x05{}")))
    with pytest.raises(ConnectError) as caught:
        list(read_envelopes(envelope(b"x", FLAG_COMPRESSED)))
    assert caught.value.code == grpc.StatusCode.UNIMPLEMENTED


def test_end_of_stream_and_events() -> None:
    frame = end_stream(None, {})
    assert frame[0] == FLAG_END_STREAM and json.loads(frame[5:]) == {}
    failed = end_stream(ConnectError(grpc.StatusCode.NOT_FOUND, "no job"), {"x-request-id": ["r1"]})
    assert json.loads(failed[5:]) == {
        "error": {"code": "not_found", "message": "no job"},
        "metadata": {"x-request-id": ["r1"]},
    }
    assert sse_event(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert sse_event(b"{}", "end") == b"event: end\ndata: {}\n\n"


def test_any_json_is_a_message_or_invalid_argument_never_another_error() -> None:
    # 3,000 random JSON values shaped like the requests (fixed seed): each decodes or is INVALID_ARGUMENT
    rng = random.Random(22)
    keys = ["image", "data", "photos", "frames", "metadata", "minScore", "classes", "styleName", "gatys", "optimizer",
            "styleLayers", "faceIndex", "content", "style_image", "max_detections", "", "x"]  # fmt: skip

    def value(depth: int) -> object:
        kind = rng.randrange(9 if depth < 4 else 6)
        choices: list[object] = [None, True, rng.randint(-(2**70), 2**70), rng.random() * 1e40, "", "AAE="]
        if kind < 6:
            return choices[kind]
        if kind == 6:
            return rng.choice(["ADAM", "x" * 300, "-_8", "\u00e9", "NaN", "Infinity", "12"])
        if kind == 7:
            return [value(depth + 1) for _ in range(rng.randrange(3))]
        return {rng.choice(keys): value(depth + 1) for _ in range(rng.randrange(4))}

    types = [detection_pb2.DetectRequest, faces_pb2.EnrollRequest, style_pb2.SubmitJobRequest]
    decoded = 0
    for _ in range(3000):
        body = json.dumps(value(0)).encode()
        try:
            decode_request(body, Codec.JSON, rng.choice(types))
            decoded += 1
        except ConnectError as exc:
            assert exc.code == grpc.StatusCode.INVALID_ARGUMENT, (body, exc.message)
    assert 0 < decoded < 3000  # both outcomes were reached
