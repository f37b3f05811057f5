"""``/openapi.json`` generated from the routes' message descriptors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fovea.classify.v1 import classify_pb2
from fovea.detection.v1 import detection_pb2
from fovea.faces.v1 import faces_pb2
from fovea.gateway.auth import METHOD_SCOPES
from fovea.gateway.openapi import build_openapi
from fovea.gateway.proto_comments import find_proto_root, load_comments
from fovea.gateway.routes import route_table
from fovea.models.v1 import models_pb2
from fovea.style.v1 import style_pb2

SERVICES = [
    models_pb2.DESCRIPTOR.services_by_name["ModelsService"],
    detection_pb2.DESCRIPTOR.services_by_name["DetectionService"],
    faces_pb2.DESCRIPTOR.services_by_name["FacesService"],
    style_pb2.DESCRIPTOR.services_by_name["StyleService"],
    classify_pb2.DESCRIPTOR.services_by_name["ClassifyService"],
]

DETECT = "/fovea.detection.v1.DetectionService/Detect"
SCHEMAS = "#/components/schemas/"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    comments = load_comments(find_proto_root(Path(__file__).resolve()))
    return build_openapi(route_table(SERVICES), METHOD_SCOPES, comments)


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return spec["components"]["schemas"][name]  # type: ignore[no-any-return]


def test_every_method_is_a_post_path(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    paths = spec["paths"]
    assert paths and set(paths) == set(route_table(SERVICES))
    assert all(set(item) == {"post"} for item in paths.values())
    for needed in (
        DETECT,
        "/fovea.faces.v1.FacesService/VerifyAccess",
        "/fovea.style.v1.StyleService/WatchJob",
    ):
        assert needed in paths
    detect = paths[DETECT]["post"]
    assert detect["operationId"] == "DetectionService_Detect" and detect["tags"] == ["DetectionService"]
    assert detect["summary"] == "Detect objects in one image"
    assert detect["x-fovea-scope"] == "detect" and "`detect`" in detect["description"]
    body = detect["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": SCHEMAS + "fovea.detection.v1.DetectRequest"}
    assert detect["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": SCHEMAS + "fovea.detection.v1.DetectResponse"
    }
    assert detect["responses"]["401"] == {"$ref": "#/components/responses/Error"}
    watch = paths["/fovea.style.v1.StyleService/WatchJob"]["post"]
    assert set(watch["responses"]["200"]["content"]) == {"text/event-stream", "application/connect+json"}
    stream = paths["/fovea.detection.v1.DetectionService/DetectStream"]["post"]
    assert "use gRPC" in stream["description"]


def test_every_reference_resolves_and_the_document_is_json(spec: dict[str, Any]) -> None:
    found = list(refs(spec))
    assert found
    for ref in found:
        section, name = ref.removeprefix("#/components/").split("/")
        assert name in spec["components"][section], ref
    assert json.loads(json.dumps(spec)) == spec


def test_message_schemas_follow_the_json_mapping(spec: dict[str, Any]) -> None:
    request = schema(spec, "fovea.detection.v1.DetectRequest")
    assert request["type"] == "object" and request["additionalProperties"] is False
    props = request["properties"]
    assert list(props)[:3] == ["image", "model", "minScore"]  # lowerCamelCase, in field order
    assert props["image"] == {"$ref": SCHEMAS + "fovea.common.v1.Image"}
    assert props["minScore"]["description"].startswith("Drop detections scoring below this")
    box = schema(spec, "fovea.detection.v1.Detection")["properties"]["box"]  # a described reference
    assert box == {
        "allOf": [{"$ref": SCHEMAS + "fovea.common.v1.BoundingBox"}],
        "description": "Absolute pixels of the original image.",
    }
    assert props["classes"]["type"] == "array" and props["classes"]["items"] == {"type": "string"}
    assert props["minScore"]["format"] == "float" and "Drop detections" in props["minScore"]["description"]
    assert props["maxDetections"]["type"] == "integer"
    image = schema(spec, "fovea.common.v1.Image")["properties"]["data"]
    assert image["type"] == "string" and image["format"] == "byte" and image["contentEncoding"] == "base64"
    # enums by name, with the values' comments
    state = schema(spec, "fovea.style.v1.JobState")
    assert state["type"] == "string" and state["enum"][:2] == ["JOB_STATE_UNSPECIFIED", "QUEUED"]
    # maps are objects; 64-bit integers strings; a oneof says so; proto3 optional says so
    enroll = schema(spec, "fovea.faces.v1.EnrollRequest")["properties"]
    assert enroll["metadata"]["type"] == "object"
    assert enroll["metadata"]["additionalProperties"]["type"] == "string"
    assert enroll["photos"]["items"] == {"$ref": SCHEMAS + "fovea.common.v1.Image"}
    job = schema(spec, "fovea.style.v1.Job")["properties"]
    assert job["createdUnixMs"]["type"] == "string" and job["createdUnixMs"]["format"] == "int64"
    assert job["resultPng"]["description"] == "PNG of the result when SUCCEEDED."
    submit = schema(spec, "fovea.style.v1.SubmitJobRequest")["properties"]
    assert (
        "One of `style`" in submit["styleName"]["description"]
        and "`styleImage`" in submit["styleName"]["description"]
    )
    gatys = schema(spec, "fovea.style.v1.GatysParams")["properties"]["styleLayers"]
    assert gatys["additionalProperties"]["format"] == "float"


def test_security_and_errors(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKeyHeader"]["name"] == "x-api-key"
    assert {"bearerAuth": []} in spec["security"]
    error = schema(spec, "ConnectError")
    assert "unauthenticated" in error["properties"]["code"]["enum"] and error["required"] == [
        "code",
        "message",
    ]


def test_without_the_proto_sources_there_are_no_descriptions() -> None:
    bare = build_openapi(route_table(SERVICES), {}, {})
    assert "description" not in bare["components"]["schemas"]["fovea.common.v1.Image"]
    assert bare["paths"][DETECT]["post"]["summary"] == "Detect"
    assert "x-fovea-scope" not in bare["paths"][DETECT]["post"]
