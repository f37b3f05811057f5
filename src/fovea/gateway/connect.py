"""The Connect protocol's pieces, without I/O: codecs, envelopes, timeouts, errors and their HTTP statuses.

What the gateway's HTTP port speaks (https://connectrpc.com/docs/protocol): a unary RPC is ``POST
/<package>.<Service>/<Method>`` with ``Content-Type: application/json`` (the proto3 JSON mapping, bytes as
base64) or ``application/proto``; a server stream is the Connect streaming form (``application/connect+json``
or ``+proto``: every message behind a 5-byte envelope, then an end-stream message) or, for plain HTTP
clients, server-sent events (a JSON body with ``Accept: text/event-stream``). A failed call answers the HTTP
status the Connect spec maps its gRPC code to, with ``{"code": "<lower_snake>", "message": "..."}``.
"""

from __future__ import annotations

import binascii
import enum
import json
import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, cast

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from fovea.common.errors import clip, public_message

JSON = "application/json"
PROTO = "application/proto"
CONNECT_JSON = "application/connect+json"
CONNECT_PROTO = "application/connect+proto"
EVENT_STREAM = "text/event-stream"
TIMEOUT_HEADER = "connect-timeout-ms"
FLAG_COMPRESSED = 0x01
FLAG_END_STREAM = 0x02
_ENVELOPE = struct.Struct(">BI")

CODE_NAMES: dict[grpc.StatusCode, str] = {
    code: ("canceled" if code is grpc.StatusCode.CANCELLED else code.name.lower())
    for code in grpc.StatusCode
    if code is not grpc.StatusCode.OK
}
"""Connect's error code of each gRPC status: its lower_snake name (Connect spells CANCELLED ``canceled``)."""

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
"""The HTTP status of a unary call that failed with each gRPC code (the Connect spec's table)."""


class ConnectError(Exception):
    """A call's failure as Connect reports it: a gRPC code and a message a person can act on."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    def to_json(self) -> dict[str, str]:
        return {"code": CODE_NAMES.get(self.code, "unknown"), "message": self.message}


def invalid(message: str) -> ConnectError:
    return ConnectError(grpc.StatusCode.INVALID_ARGUMENT, message)


class Codec(enum.Enum):
    """How messages travel in a body: the proto3 JSON mapping, or protobuf's binary encoding."""

    JSON = "json"
    PROTO = "proto"


UNARY_TYPES = {JSON: Codec.JSON, PROTO: Codec.PROTO}
STREAM_TYPES = {CONNECT_JSON: Codec.JSON, CONNECT_PROTO: Codec.PROTO}


def unary_codec(content_type: str, method: str) -> Codec:
    """The codec of a unary call's body; ``invalid_argument`` naming the types accepted otherwise."""
    codec = UNARY_TYPES.get(content_type.lower())
    if codec is None:
        raise invalid(
            f"{method} takes Content-Type {JSON} (the proto3 JSON mapping) or {PROTO}, not "
            f"{clip(content_type, 64)!r} (curl: -H 'content-type: {JSON}')"
        )
    return codec


def stream_codec(content_type: str, accept: str, method: str) -> tuple[Codec, bool]:
    """``(codec, as server-sent events)`` of a server-streaming call: Connect streaming
    (``application/connect+json|proto``, enveloped), or a JSON body asking ``Accept: text/event-stream``."""
    kind = content_type.lower()
    if kind in STREAM_TYPES:
        return STREAM_TYPES[kind], False
    if kind == JSON and EVENT_STREAM in accept.lower():
        return Codec.JSON, True
    raise invalid(
        f"{method} streams its answers: send Content-Type {CONNECT_JSON} (Connect streaming, enveloped "
        f"messages) or Content-Type {JSON} with Accept: {EVENT_STREAM} (server-sent events), not "
        f"{clip(content_type, 64)!r}"
    )


def parse_timeout(value: str | None) -> float | None:
    """Seconds of a ``Connect-Timeout-Ms`` header (a positive integer of at most 10 digits), None without."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or len(text) > 10 or int(text) == 0:
        raise invalid(
            f"Connect-Timeout-Ms must be a positive whole number of milliseconds, not {clip(text)!r}"
        )
    return int(text) / 1000.0


def decode_request(body: bytes, codec: Codec, message_type: type[Message]) -> bytes:
    """The request's protobuf bytes: JSON parsed as ``message_type`` (unknown fields refused), proto bytes as
    they are (the gRPC handlers check them like any other call's). ``invalid_argument`` naming the problem."""
    if codec is Codec.PROTO:
        return body
    name = message_type.DESCRIPTOR.name
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid(f"the request body is not UTF-8 text, so not a JSON {name}") from exc
    try:
        value = json.loads(text, object_pairs_hook=_object) if text.strip() else {}  # '' = the empty message
        images: list[tuple[Path, bytes]] = []
        if isinstance(value, dict):
            _take_bytes(value, cast(Descriptor, message_type.DESCRIPTOR), [], images)
        message = json_format.ParseDict(value, message_type())
        for path, data in images:
            _put(message, path, data)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        detail = public_message(one_line(exc), 600)
        raise invalid(f"the request body is not a valid JSON {name}: {detail}") from exc
    return message.SerializeToString()


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object that names each key once (json_format's own rule)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {clip(key)!r}")
        out[key] = value
    return out


Path = list[str | int]
"""Where a value sits in a message: field names and list indices."""
_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _take_bytes(
    value: dict[str, Any], message: Descriptor, at: Path, found: list[tuple[Path, bytes]]
) -> None:
    """Decode the base64 strings of ``message``'s bytes fields in ``value`` (recursively, in place: each
    becomes '' for ``ParseDict``) into ``found`` with their paths. What json_format does, without its copy of
    every image through ``urlsafe_b64decode``'s translation: a third of a Detect's JSON cost."""
    for key, item in value.items():
        field = message.fields_by_camelcase_name.get(key) or message.fields_by_name.get(key)
        if field is None or item is None:
            continue  # json_format names the unknown field, and reads null as unset
        here = [*at, field.name]
        if field.type == FieldDescriptor.TYPE_BYTES:
            items = item if field.is_repeated and isinstance(item, list) else [item]
            for i, text in enumerate(items):
                if isinstance(text, str):
                    found.append(([*here, i] if items is item else here, _b64(text, here)))
                    items[i] = ""
            if items is not item:
                value[key] = items[0]
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            if field.message_type.full_name.startswith("google.protobuf."):
                continue
            for i, sub in enumerate(item if field.is_repeated and isinstance(item, list) else [item]):
                if isinstance(sub, dict):
                    _take_bytes(sub, field.message_type, [*here, i] if field.is_repeated else here, found)


def _b64(text: str, at: Path) -> bytes:
    """Standard or URL-safe base64, padded or not (as the proto3 JSON mapping reads it)."""
    try:
        data = text.encode("ascii")
        if b"-" in data or b"_" in data:
            data = data.translate(_URLSAFE)
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except (UnicodeEncodeError, binascii.Error) as exc:
        where = ".".join(str(p) for p in at)
        raise json_format.ParseError(f"{where} is not base64 (standard or URL-safe): {exc}") from exc


def _put(message: Message, path: Path, data: bytes) -> None:
    node: Any = message
    for step in path[:-1]:
        node = node[step] if isinstance(step, int) else getattr(node, step)
    last = path[-1]
    if isinstance(last, int):
        node[last] = data
    else:
        setattr(node, last, data)


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def encode_response(data: bytes, codec: Codec, message_type: type[Message]) -> bytes:
    """A response message (protobuf bytes from the gRPC handler) in ``codec``: JSON with every field written
    out, zeros and empty lists included (proto3 JSON readers accept both forms), or the bytes as they are."""
    if codec is Codec.PROTO:
        return data
    try:
        message = message_type.FromString(data)
    except DecodeError as exc:  # the handlers' own answer: a bug, not the caller's fault
        raise ConnectError(grpc.StatusCode.INTERNAL, "the gateway could not read its own response") from exc
    return dumps(json_format.MessageToDict(message, always_print_fields_with_no_presence=True))


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def envelope(data: bytes, flags: int = 0) -> bytes:
    """One Connect streaming frame: flags (1 byte), length (4 bytes, big-endian), data."""
    return _ENVELOPE.pack(flags, len(data)) + data


def read_envelopes(body: bytes) -> Iterator[tuple[int, bytes]]:
    """The ``(flags, data)`` frames of an enveloped body; ``invalid_argument`` if it is cut short or
    compressed (this server takes identity-encoded messages only)."""
    at = 0
    while at < len(body):
        if len(body) - at < _ENVELOPE.size:
            raise invalid("the request body ends inside a Connect envelope header (5 bytes: flags, length)")
        flags, size = _ENVELOPE.unpack_from(body, at)
        at += _ENVELOPE.size
        if len(body) - at < size:
            raise invalid(f"a Connect envelope says {size} bytes follow but only {len(body) - at} do")
        if flags & FLAG_COMPRESSED:
            raise ConnectError(
                grpc.StatusCode.UNIMPLEMENTED, "compressed messages are not accepted: send them uncompressed"
            )
        yield flags, body[at : at + size]
        at += size


def single_message(body: bytes) -> bytes:
    """The one message of an enveloped request body (a server-streaming call takes exactly one)."""
    frames = [data for flags, data in read_envelopes(body) if not flags & FLAG_END_STREAM]
    if len(frames) != 1:
        raise invalid(f"a server-streaming call takes exactly one request message, not {len(frames)}")
    return frames[0]


def metadata_json(pairs: Iterable[tuple[str, str | bytes]]) -> dict[str, list[str]]:
    """Text metadata as Connect's end-stream ``metadata`` object (name -> values); binary entries left out."""
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        if isinstance(value, str):
            out.setdefault(name, []).append(value)
    return out


def end_stream(error: ConnectError | None, trailers: Mapping[str, list[str]]) -> bytes:
    """The end-stream frame of a Connect stream: the error, if any, and the trailing metadata."""
    body: dict[str, Any] = {}
    if error is not None:
        body["error"] = error.to_json()
    if trailers:
        body["metadata"] = dict(trailers)
    return envelope(dumps(body), FLAG_END_STREAM)


def sse_event(data: bytes, event: str | None = None) -> bytes:
    """One server-sent event (the data is one line of JSON: no newlines to split)."""
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + data + b"\n\n"
