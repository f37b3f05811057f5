"""Domain errors that carry their gRPC status; translated in one place (``interceptors.py``)."""

from __future__ import annotations

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
