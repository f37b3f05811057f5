"""The HTTP routes of the public RPCs, derived from the service descriptors the gateway serves over gRPC.

One route per method, at the path gRPC uses (``/fovea.detection.v1.DetectionService/Detect``): a method added
to a served proto is served over HTTP, and listed in ``/openapi.json``, without a line of HTTP code.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message


class Shape(enum.Enum):
    UNARY = "unary"
    SERVER_STREAM = "server_stream"
    CLIENT_STREAM = "client_stream"
    BIDI_STREAM = "bidi_stream"


@dataclass(frozen=True)
class Route:
    path: str
    service: ServiceDescriptor
    method: MethodDescriptor
    request: type[Message]
    response: type[Message]

    @property
    def shape(self) -> Shape:
        match (self.method.client_streaming, self.method.server_streaming):
            case (False, False):
                return Shape.UNARY
            case (False, True):
                return Shape.SERVER_STREAM
            case (True, False):
                return Shape.CLIENT_STREAM
            case _:
                return Shape.BIDI_STREAM

    @property
    def name(self) -> str:
        """``DetectionService/Detect``: how messages name the method."""
        return f"{self.service.name}/{self.method.name}"


def route_table(services: Iterable[ServiceDescriptor]) -> dict[str, Route]:
    """Path -> route of every method of ``services``, in their order. ``ValueError`` when a service is
    given twice (two handlers for one path would be ambiguous)."""
    table: dict[str, Route] = {}
    for service in services:
        for method in service.methods:
            path = f"/{service.full_name}/{method.name}"
            if path in table:
                raise ValueError(f"{service.full_name} is served twice: {path} would have two routes")
            table[path] = Route(
                path=path,
                service=service,
                method=method,
                request=message_factory.GetMessageClass(method.input_type),
                response=message_factory.GetMessageClass(method.output_type),
            )
    return table


def services_of(routes: Mapping[str, Route]) -> list[ServiceDescriptor]:
    """The services of ``routes``, each once, in order."""
    return list({r.service.full_name: r.service for r in routes.values()}.values())
