"""The stack's faces service publishes to the machine's Mosquitto (127.0.0.1:1883): Home Assistant discovery
retained under homeassistant/#, a door decision under fovea/# within seconds of a VerifyAccess, and the
availability topic online. The stack publishes under a prefix of its own run (``fovea/it-<hex>``)."""

from __future__ import annotations

import base64
import io
import json
import time
import urllib.request
from typing import Any

import pytest
from PIL import Image

from fovea.convert.samples import sample

from .conftest import PAD_DOOR, SNAPSHOT_DOOR, Stack
from .faces_photos import new_id
from .mqtt_broker import Subscriber

pytestmark = pytest.mark.integration
FACES = "/fovea.faces.v1.FacesService/"


def call(stack: Stack, method: str, body: dict[str, Any]) -> dict[str, Any]:
    """A Connect JSON call with the admin key (the HTTP API: independent of the Python client)."""
    url = f"http://{stack.settings.host}:{stack.settings.gateway_http_port}{FACES}{method}"
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {stack.admin_key}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.fixture
def prefix(stack: Stack) -> str:
    if not stack.mqtt_prefix:
        pytest.skip("no MQTT broker answers at 127.0.0.1:1883 (Debian: apt-get install mosquitto)")
    return stack.mqtt_prefix


def test_home_assistant_discovery_is_retained_for_the_policy_files_doors(stack: Stack, prefix: str) -> None:
    node = prefix.replace("/", "_")
    with Subscriber("homeassistant/#", f"{prefix}/status") as sub:
        configs = sub.wait(f"/{node}_{PAD_DOOR}_decision/config", timeout_s=30)
        topic, payload, retained = configs[0]
        assert topic == f"homeassistant/sensor/{node}_{PAD_DOOR}_decision/config" and retained
        config = json.loads(payload)
        assert config["state_topic"] == f"{prefix}/doors/{PAD_DOOR}/decision"
        assert config["availability_topic"] == f"{prefix}/status"
        sub.wait(f"/{node}_{PAD_DOOR}_person/config")
        assert sub.wait(f"{prefix}/status")[-1][1] == b"online"


def test_a_door_decision_arrives_within_seconds_of_verify_access(stack: Stack, prefix: str) -> None:
    gallery, door = new_id("mqtt"), new_id("mqtt-door")
    photo = base64.b64encode(sample("obama").read_bytes()).decode()
    call(stack, "CreateGallery", {"galleryId": gallery})
    with Subscriber("fovea/#", "homeassistant/#") as sub:
        call(stack, "Enroll", {"galleryId": gallery, "identityId": "barack", "photos": [{"data": photo}]})
        enrolled = sub.wait(f"{prefix}/galleries/{gallery}/enrolled")
        assert json.loads(enrolled[0][1])["identity_id"] == "barack"
        frame = base64.b64encode(sample("obama2").read_bytes()).decode()
        started = time.monotonic()
        answer = call(
            stack,
            "VerifyAccess",
            {
                "doorId": door,
                "galleryId": gallery,
                "claimedIdentityId": "barack",
                "frames": [{"data": frame}],
            },
        )
        assert answer["decision"] == "GRANT", answer
        decision = sub.wait(f"{prefix}/doors/{door}/decision", timeout_s=5)
        elapsed = time.monotonic() - started
        body = json.loads(decision[0][1])
        assert body["decision"] == "GRANT" and body["audit_id"] == answer["auditId"]
        assert body["identity_id"] == "barack" and "embedding" not in json.dumps(body)
        assert json.loads(sub.wait(f"{prefix}/doors/{door}/person")[0][1])["identity_id"] == "barack"
        # a door the policy file does not name is discovered with its first event
        node = prefix.replace("/", "_")
        sub.wait(f"homeassistant/sensor/{node}_{door}_decision/config")
        print(f"VerifyAccess -> MQTT decision in {elapsed:.2f}s (the call included)")
    call(stack, "DeleteGallery", {"galleryId": gallery})


def test_a_door_with_snapshots_publishes_a_jpeg_of_the_burst(stack: Stack, prefix: str) -> None:
    frame = base64.b64encode(sample("biden").read_bytes()).decode()
    with Subscriber(f"{prefix}/doors/{SNAPSHOT_DOOR}/#") as sub:
        answer = call(
            stack,
            "VerifyAccess",
            {
                "doorId": SNAPSHOT_DOOR,
                "galleryId": new_id("none"),
                "claimedIdentityId": "x",
                "frames": [{"data": frame}],
            },
        )
        assert answer["decision"] == "DENY"  # no such gallery: a DENY is a decision like any other
        (shot,) = sub.wait(f"{prefix}/doors/{SNAPSHOT_DOOR}/snapshot", timeout_s=5)
        with Image.open(io.BytesIO(shot[1])) as img:
            assert img.format == "JPEG" and max(img.size) <= 640
        decision = json.loads(sub.wait(f"{prefix}/doors/{SNAPSHOT_DOOR}/decision")[0][1])
        assert decision["audit_id"] == answer["auditId"] and "snapshot" not in decision
