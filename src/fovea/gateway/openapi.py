"""``/openapi.json``: an OpenAPI 3.1 document of the HTTP API, generated from the routes' message descriptors.

Every method is a ``POST`` path; request and response bodies are the proto3 JSON mapping of their messages
(field names in lowerCamelCase as written, snake_case also read; bytes as base64 strings; 64-bit integers as
strings; enums by name; maps as objects), with the ``.proto`` comments as descriptions where the sources are
at hand (``proto_comments.py``). Errors are Connect's ``{"code", "message"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from fovea.gateway.connect import CODE_NAMES, CONNECT_JSON, EVENT_STREAM, JSON
from fovea.gateway.routes import Route, Shape, services_of

Schema = dict[str, Any]
SCHEMAS = "#/components/schemas/"
ERROR = "ConnectError"

_INT32 = {"type": "integer", "format": "int32"}
_INT64 = {"type": "string", "format": "int64", "description": "64-bit integer, as a decimal string"}
_UINT64 = {"type": "string", "format": "uint64", "description": "64-bit integer, as a decimal string"}
SCALARS: dict[int, Schema] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_SINT32: _INT32,
    FieldDescriptor.TYPE_SFIXED32: _INT32,
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "uint32", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "uint32", "minimum": 0},
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT64: _UINT64,
    FieldDescriptor.TYPE_FIXED64: _UINT64,
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte", "contentEncoding": "base64"},
}
"""The JSON schema of each scalar field type under the proto3 JSON mapping."""

WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$", "examples": ["1.5s"]},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.FieldMask": {"type": "string"},
}
"""Google's well-known types, which the JSON mapping writes as strings or free JSON rather than objects."""


class SchemaBuilder:
    """Collects ``components.schemas``: one per message and enum reached from the routes."""

    def __init__(self, comments: Mapping[str, str]) -> None:
        self.comments = comments
        self.schemas: dict[str, Schema] = {}

    def _described(self, schema: Schema, name: str) -> Schema:
        text = self.comments.get(name)
        return {**schema, "description": text} if text else schema

    def ref(self, message: Descriptor) -> Schema:
        """A ``$ref`` to ``message``'s schema, built (with all it reaches) on first use."""
        if message.full_name in WELL_KNOWN:
            return dict(WELL_KNOWN[message.full_name])
        if message.full_name not in self.schemas:
            self.schemas[message.full_name] = {}  # placed first: a message may contain itself
            self.schemas[message.full_name] = self._message(message)
        return {"$ref": SCHEMAS + message.full_name}

    def _enum_ref(self, enum: EnumDescriptor) -> Schema:
        if enum.full_name not in self.schemas:
            values = []
            for value in enum.values:
                comment = self.comments.get(f"{enum.full_name}.{value.name}")
                values.append(f"`{value.name}`" + (f": {comment}" if comment else ""))
            schema: Schema = {"type": "string", "enum": [v.name for v in enum.values]}
            text = self.comments.get(enum.full_name, "")
            schema["description"] = (text + "\n\n" if text else "") + "Values: " + "; ".join(values) + "."
            self.schemas[enum.full_name] = schema
        return {"$ref": SCHEMAS + enum.full_name}

    def _message(self, message: Descriptor) -> Schema:
        properties: dict[str, Schema] = {}
        for field in message.fields:
            schema = self._field(field)
            notes: list[str] = []
            marks: dict[str, Any] = {}
            if field.containing_oneof is not None and not field.containing_oneof.name.startswith("_"):
                others = [f.json_name for f in field.containing_oneof.fields if f is not field]
                notes.append(
                    f"One of `{field.containing_oneof.name}`: set at most one of this and "
                    + (", ".join(f"`{o}`" for o in others) or "nothing else")
                    + "."
                )
                marks["x-oneof"] = field.containing_oneof.name
            elif field.has_presence and field.type != FieldDescriptor.TYPE_MESSAGE:
                notes.append("Optional: left out when not set.")
                marks["x-optional"] = True
            text = " ".join(
                p for p in [self.comments.get(f"{message.full_name}.{field.name}", ""), *notes] if p
            )
            if text:
                described = {"description": text, **marks}
                schema = {"allOf": [schema], **described} if "$ref" in schema else {**schema, **described}
            properties[field.json_name] = schema
        schema = {"type": "object", "properties": properties, "additionalProperties": False}
        return self._described(schema, message.full_name)

    def _field(self, field: FieldDescriptor) -> Schema:
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
            out: Schema = {"type": "object", "additionalProperties": self._single(value)}
            if key.type != FieldDescriptor.TYPE_STRING:
                out["propertyNames"] = {"description": "a JSON string holding the key"}
            return out
        single = self._single(field)
        return {"type": "array", "items": single} if field.is_repeated else single

    def _single(self, field: FieldDescriptor) -> Schema:
        if field.message_type is not None:
            return self.ref(field.message_type)
        if field.enum_type is not None:
            return self._enum_ref(field.enum_type)
        return dict(SCALARS[field.type])


def error_schema() -> Schema:
    return {
        "type": "object",
        "properties": {
            "code": {"type": "string", "enum": sorted(CODE_NAMES.values())},
            "message": {"type": "string"},
        },
        "required": ["code", "message"],
        "description": "A failed call: its gRPC status as Connect names it, and what to do about it.",
    }


def _operation(route: Route, builder: SchemaBuilder, scope: str | None) -> Schema:
    comment = builder.comments.get(f"{route.service.full_name}.{route.method.name}", "")
    request, response = builder.ref(route.method.input_type), builder.ref(route.method.output_type)
    notes = [comment] if comment else []
    if scope:
        notes.append(f"API key scope: `{scope}`.")
    ok: Schema = {"description": f"A {route.method.output_type.name}."}
    shape = route.shape
    if shape is Shape.UNARY:
        ok["content"] = {JSON: {"schema": response}}
    elif shape is Shape.SERVER_STREAM:
        ok["description"] = (
            f"A stream of {route.method.output_type.name} messages: with `Accept: {EVENT_STREAM}` one "
            f"server-sent event per message (`data:` one line of JSON), then `event: end` (data `{{}}`) or "
            f"`event: error` (data a ConnectError); with Content-Type `{CONNECT_JSON}` Connect envelopes."
        )
        ok["content"] = {EVENT_STREAM: {"schema": response}, CONNECT_JSON: {"schema": response}}
        notes.append(f"A server stream: send `Accept: {EVENT_STREAM}` (or use a Connect client).")
    else:
        notes.append(
            "Not served over HTTP (a client or bidirectional stream needs HTTP/2 both ways): use gRPC."
        )
    error = {"$ref": "#/components/responses/Error"}
    operation: Schema = {
        "operationId": f"{route.service.name}_{route.method.name}",
        "tags": [route.service.name],
        "summary": (comment.split(". ")[0].rstrip(".") if comment else route.method.name),
        "description": "\n\n".join(notes),
        "parameters": [
            {"$ref": "#/components/parameters/ConnectTimeoutMs"},
            {"$ref": "#/components/parameters/RequestId"},
        ],
        "requestBody": {"required": True, "content": {JSON: {"schema": request}}},
        "responses": {"200": ok, "400": error, "401": error, "403": error, "default": error},
    }
    if scope:
        operation["x-fovea-scope"] = scope
    return operation


def build_openapi(
    routes: Mapping[str, Route],
    scopes: Mapping[str, str],
    comments: Mapping[str, str],
    *,
    title: str = "Fovea",
    version: str = "v1",
) -> dict[str, Any]:
    """The OpenAPI document of ``routes`` (path -> route); ``scopes``: path -> the API key scope it needs;
    ``comments``: full name -> description (:func:`fovea.gateway.proto_comments.load_comments`)."""
    builder = SchemaBuilder(comments)
    paths = {path: {"post": _operation(route, builder, scopes.get(path))} for path, route in routes.items()}
    tags = [
        {"name": service.name, **({"description": text} if (text := comments.get(service.full_name)) else {})}
        for service in services_of(routes)
    ]
    schemas = {name: builder.schemas[name] for name in sorted(builder.schemas)}
    schemas[ERROR] = error_schema()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": (
                "Every gRPC method of the gateway as `POST /<package>.<Service>/<Method>` (the Connect "
                "protocol): a JSON body in, a JSON body out. Same API keys, scopes, limits and errors as gRPC."
            ),
        },
        "tags": tags,
        "paths": paths,
        "security": [{"bearerAuth": []}, {"apiKeyHeader": []}],
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A Fovea API key (`fovea keys create`)",
                },
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
            "parameters": {
                "ConnectTimeoutMs": {
                    "name": "Connect-Timeout-Ms",
                    "in": "header",
                    "required": False,
                    "description": "Deadline of the call in milliseconds (the gateway's default applies without it)",
                    "schema": {"type": "integer", "minimum": 1},
                },
                "RequestId": {
                    "name": "x-request-id",
                    "in": "header",
                    "required": False,
                    "description": "Your id of the call, kept in the logs beside the gateway's own (both echoed back)",
                    "schema": {"type": "string", "maxLength": 128},
                },
            },
            "responses": {
                "Error": {
                    "description": "The call failed",
                    "content": {JSON: {"schema": {"$ref": SCHEMAS + ERROR}}},
                },
            },
            "schemas": schemas,
        },
    }
