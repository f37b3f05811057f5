"""The gateway's channels to the replicas: targets from address settings, the service config (round robin,
health-checked, retries of the idempotent methods only)."""

from __future__ import annotations

import json

import pytest

from fovea.common.server import REPLICA_HEALTH
from fovea.detection.v1 import detection_pb2
from fovea.faces.v1 import faces_pb2
from fovea.gateway import upstream


@pytest.mark.parametrize(
    ("address", "target"),
    [
        ("127.0.0.1:50061", "127.0.0.1:50061"),
        ("faces-headless.fovea.svc:50062", "faces-headless.fovea.svc:50062"),
        ("10.0.0.1:50062, 10.0.0.2:50062", "ipv4:10.0.0.1:50062,10.0.0.2:50062"),
        ("[::1]:1,[::2]:1", "ipv6:[::1]:1,[::2]:1"),
    ],
)
def test_targets(address: str, target: str) -> None:
    assert upstream.target(address) == target


@pytest.mark.parametrize("address", ["a:1,b:1", "10.0.0.1:1,[::1]:1", "10.0.0.1,10.0.0.2", " "])
def test_a_bad_address_setting_is_refused(address: str) -> None:
    with pytest.raises(ValueError):
        upstream.target(address)


def test_only_side_effect_free_methods_are_retried() -> None:
    faces = json.loads(upstream.service_config(faces_pb2.DESCRIPTOR.services_by_name["FacesService"]))
    assert faces["loadBalancingConfig"] == [{"round_robin": {}}]
    assert faces["healthCheckConfig"] == {"serviceName": REPLICA_HEALTH}
    [policy] = faces["methodConfig"]
    retried = {m["method"] for m in policy["name"]}
    assert {"Verify", "Identify", "GetIdentity", "WatchEvents"} <= retried
    assert not retried & {"Enroll", "VerifyAccess", "CreateGallery", "DeleteIdentity", "BeginAccess"}
    assert policy["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    detection = json.loads(
        upstream.service_config(detection_pb2.DESCRIPTOR.services_by_name["DetectionService"])
    )
    assert {m["method"] for m in detection["methodConfig"][0]["name"]} == {"Detect", "ListDetectors"}
