"""Requests checked at the edge, before they are forwarded: each must parse as its method's request type,
name only known enum values, and keep every string and repeated field within bounds.

A request that fails is refused with INVALID_ARGUMENT naming the field and the bound; the caller's text is
never echoed beyond a short prefix, so an error always fits in a gRPC status. The bytes that pass are
forwarded unchanged (the backends parse them again; no re-encoding here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from fovea.common.errors import InvalidArgument, clip


@dataclass(frozen=True)
class FieldLimits:
    """Bounds on a request's fields. ``overrides`` maps a full field name
    (``fovea.faces.v1.EnrollRequest.metadata``) to its own bound: characters for a string, entries for a
    repeated field or map (whose strings keep ``max_string_chars``)."""

    max_string_chars: int = 256
    max_repeated: int = 256
    max_map_entries: int = 64
    max_map_key_chars: int = 128
    max_map_value_chars: int = 1024
    overrides: Mapping[str, int] = field(default_factory=dict)

    def bound(self, fd: FieldDescriptor, default: int) -> int:
        return self.overrides.get(fd.full_name, default)


DEFAULT_LIMITS = FieldLimits(
    overrides={
        # images: the services apply their own, smaller, configured counts (FOVEA_FACES_MAX_PHOTOS)
        "fovea.faces.v1.EnrollRequest.photos": 100,
        "fovea.faces.v1.VerifyAccessRequest.frames": 100,
        "fovea.detection.v1.DetectRequest.classes": 1024,  # a user model may have many labels
        "fovea.faces.v1.ListIdentitiesRequest.page_token": 1024,
        "fovea.classify.v1.TrainClassifierRequest.images": 100_000,  # the service's own bound applies
    }
)


def parse_request(data: bytes, message_type: type[Message], limits: FieldLimits = DEFAULT_LIMITS) -> Message:
    """``data`` parsed as ``message_type`` and checked (see the module docstring); ``InvalidArgument`` if not."""
    name = message_type.DESCRIPTOR.name
    try:
        message = message_type.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:  # upb says only "Error parsing message ..."
        raise InvalidArgument(
            f"request is not a valid {name} message: malformed protobuf encoding, or a string field that is "
            "not valid UTF-8"
        ) from exc
    check_message(message, limits, name)
    return message


def check_message(message: Message, limits: FieldLimits = DEFAULT_LIMITS, path: str = "") -> None:
    """``InvalidArgument`` naming the first field of ``message`` (recursively) that is out of bounds."""
    for fd, value in message.ListFields():
        where = f"{path}.{fd.name}" if path else fd.name
        if fd.is_repeated:
            if _is_map(fd):
                _check_map(fd, value, limits, where)
                continue
            _check_count(fd, len(value), limits.bound(fd, limits.max_repeated), where)
            for i, item in enumerate(value):
                _check_value(fd, item, limits, f"{where}[{i}]", limits.max_string_chars)
        else:
            _check_value(fd, value, limits, where, limits.bound(fd, limits.max_string_chars))


def _is_map(fd: FieldDescriptor) -> bool:
    entry = fd.message_type
    return entry is not None and entry.GetOptions().map_entry


def _check_count(fd: FieldDescriptor, count: int, bound: int, where: str) -> None:
    if count > bound:
        raise InvalidArgument(f"{where} has {count} entries; at most {bound} are allowed")


def _check_map(fd: FieldDescriptor, value: Mapping[object, object], limits: FieldLimits, where: str) -> None:
    _check_count(fd, len(value), limits.bound(fd, limits.max_map_entries), where)
    entry = fd.message_type
    assert entry is not None  # a map field's entry type; for mypy
    value_fd = entry.fields_by_name["value"]
    for key, item in value.items():
        if isinstance(key, str) and len(key) > limits.max_map_key_chars:
            raise InvalidArgument(
                f"{where} has a key of {len(key)} characters; at most {limits.max_map_key_chars} are allowed"
            )
        label = f"{where}[{clip(str(key), 32)!r}]"
        if value_fd.type == FieldDescriptor.TYPE_STRING:
            _check_text(str(item), limits.max_map_value_chars, label)
        else:
            _check_value(value_fd, item, limits, label, limits.max_map_value_chars)


def _check_value(fd: FieldDescriptor, value: object, limits: FieldLimits, where: str, max_chars: int) -> None:
    if fd.type == FieldDescriptor.TYPE_STRING:
        _check_text(str(value), max_chars, where)
    elif fd.enum_type is not None:
        if value not in fd.enum_type.values_by_number:
            names = ", ".join(v.name for v in fd.enum_type.values)
            raise InvalidArgument(f"{where} {value} is not a known {fd.enum_type.name}; known: {names}")
    elif fd.type == FieldDescriptor.TYPE_MESSAGE and isinstance(value, Message):
        check_message(value, limits, where)


def _check_text(text: str, bound: int, where: str) -> None:
    if len(text) > bound:
        raise InvalidArgument(f"{where} is {len(text)} characters long; at most {bound} are allowed")
