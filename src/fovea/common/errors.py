"""Domain errors that carry their gRPC status; translated in one place (``interceptors.py``)."""

from __future__ import annotations

import re

import grpc


class FoveaError(Exception):
    """Base class: ``code`` is the gRPC status the edge returns; the message is shown to the caller."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidArgument(FoveaError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class InvalidImage(InvalidArgument):
    """The image bytes are not a usable JPEG/PNG/WebP (corrupt, empty, too small, too large)."""


class NotFound(FoveaError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(FoveaError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(FoveaError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(FoveaError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class UpstreamUnavailable(FoveaError):
    """A dependency (Triton, Redis, a backend service) does not answer."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(FoveaError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Relayed(FoveaError):
    """A status another service answered, passed on with its code (the gateway relaying a backend's)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


MAX_MESSAGE_CHARS = 1000
"""Longest status message a caller is sent (gRPC carries it in a header; ~8 KiB is the hard limit)."""

_OBJECT_REPR = re.compile(r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>")
_ADDRESS = re.compile(
    r"\b(?:redis|rediss|unix|grpc|http|https)://\S+"  # URLs of internal services
    r"|\b(?:ipv4:|ipv6:|dns:)?(?:\d{1,3}\.){3}\d{1,3}:\d{1,5}\b"  # 127.0.0.1:6379, ipv4:10.0.0.2:8001
    r"|\[[0-9a-fA-F:]+\]:\d{1,5}"  # [::1]:8001
    r"|\blocalhost:\d{1,5}\b"
    r"|\(\s*'[^']*'\s*,\s*\d{1,5}\s*\)"  # Python's (host, port) tuples: "Connect call failed ('127.0.0.1', 6390)"
)


def clip(text: str, limit: int = 64) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis: for echoing a caller's input in a message."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def public_message(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """What a caller may see of an error message: no Python object reprs, no internal addresses
    (``host:port``, ``redis://...``), at most ``limit`` characters. Log the original beside it."""
    text = _OBJECT_REPR.sub("", text)
    text = _ADDRESS.sub("<internal address>", text)
    return clip(text, limit)
