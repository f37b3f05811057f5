"""The HTTP route table, derived from the service descriptors the gateway serves."""

from __future__ import annotations

import pytest

from fovea.classify.v1 import classify_pb2
from fovea.detection.v1 import detection_pb2
from fovea.faces.v1 import faces_pb2
from fovea.gateway.auth import METHOD_SCOPES
from fovea.gateway.routes import Shape, route_table, services_of
from fovea.models.v1 import models_pb2
from fovea.style.v1 import style_pb2

SERVICES = [
    models_pb2.DESCRIPTOR.services_by_name["ModelsService"],
    detection_pb2.DESCRIPTOR.services_by_name["DetectionService"],
    faces_pb2.DESCRIPTOR.services_by_name["FacesService"],
    style_pb2.DESCRIPTOR.services_by_name["StyleService"],
    classify_pb2.DESCRIPTOR.services_by_name["ClassifyService"],
]


def test_one_route_per_method_at_the_grpc_path() -> None:
    routes = route_table(SERVICES)
    methods = [(s.full_name, m.name) for s in SERVICES for m in s.methods]
    assert methods and len(routes) == len(methods)
    assert list(routes) == [f"/{service}/{method}" for service, method in methods]
    detect = routes["/fovea.detection.v1.DetectionService/Detect"]
    assert detect.request is detection_pb2.DetectRequest and detect.response is detection_pb2.DetectResponse
    assert detect.shape is Shape.UNARY and detect.name == "DetectionService/Detect"
    assert routes["/fovea.style.v1.StyleService/WatchJob"].shape is Shape.SERVER_STREAM
    assert routes["/fovea.detection.v1.DetectionService/DetectStream"].shape is Shape.BIDI_STREAM
    assert routes["/fovea.faces.v1.FacesService/VerifyAccess"].request is faces_pb2.VerifyAccessRequest
    assert services_of(routes) == SERVICES


def test_every_route_has_a_scope() -> None:
    # the key check fails closed on a method without one: a route without a scope would always answer 403
    routes = route_table(SERVICES)
    assert routes and set(routes) == set(METHOD_SCOPES)


def test_a_service_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="fovea.style.v1.StyleService is served twice"):
        route_table([*SERVICES, SERVICES[3]])
