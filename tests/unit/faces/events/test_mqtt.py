"""core/mqtt.py: broker URLs, the topic tree, each event's messages, Home Assistant discovery, snapshots."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from fovea.faces.events.core.events import Event, door_events
from fovea.faces.events.core.mqtt import (
    Broker,
    Topics,
    discovery_messages,
    event_messages,
    forget_messages,
    iso_time,
    parse_broker,
    snapshot_jpeg,
    snapshot_message,
)


def test_broker_urls() -> None:
    assert parse_broker("mqtt://127.0.0.1") == Broker("127.0.0.1", 1883, False)
    assert parse_broker("mqtts://broker.example") == Broker("broker.example", 8883, True)
    b = parse_broker("mqtt://ha%40home:p%3Ass@10.0.0.2:1884/")
    assert (b.username, b.password, b.port) == ("ha@home", "p:ss", 1884)
    assert "p:ss" not in repr(b) and b.origin == "mqtt://ha@home@10.0.0.2:1884"
    assert parse_broker("mqtt://[::1]:1883").origin == "mqtt://[::1]:1883"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://h:1883", "mqtt:// or mqtts://"),
        ("mqtt://", "no host"),
        ("mqtt://h:99999", "port"),
        ("mqtt://u:secret@h/topic", "no path"),
    ],
)
def test_bad_broker_urls_say_why_without_the_password(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as info:
        parse_broker(url)
    assert "secret" not in str(info.value)


def test_topic_prefixes_are_checked() -> None:
    assert Topics("site/fovea").status == "site/fovea/status"
    for bad in ("", "a/+", "a/#", "/a", "a//b", "a b"):
        with pytest.raises(ValueError, match="not valid"):
            Topics(bad)
    assert Topics(discovery_prefix="").discovery_prefix == ""


def audit(decision: str, kind: str, door: str = "front", pad: str = "NOT_CHECKED") -> dict[str, str]:
    return {
        "unix_ms": "1780000000123",
        "door_id": door,
        "gallery_id": "staff",
        "claimed_identity_id": "alice",
        "decision": decision,
        "reason": "why",
        "kind": kind,
        "request_id": "r1",
        "pad_verdict": pad,
    }


def test_a_grant_sets_the_doors_retained_decision_and_person() -> None:
    topics = Topics()
    (grant,) = door_events(audit("GRANT", "match"), "a-1")
    messages = event_messages(grant, topics)
    assert [(m.topic, m.retain) for m in messages] == [
        ("fovea/doors/front/decision", True),
        ("fovea/doors/front/person", True),
    ]
    decision = json.loads(messages[0].payload)
    assert decision["decision"] == "GRANT" and decision["identity_id"] == "alice"
    assert decision["audit_id"] == "a-1" and decision["time"] == "2026-05-28T20:26:40.123+00:00"
    person = json.loads(messages[1].payload)
    assert person == {
        "identity_id": "alice",
        "gallery_id": "staff",
        "event_id": "",
        "unix_ms": 1780000000123,
        "time": iso_time(1780000000123),
    }


def test_a_deny_by_an_attack_tells_decision_and_pad_failed_but_no_person() -> None:
    topics = Topics("site")
    events = door_events(audit("DENY", "pad", pad="ATTACK"), "a-2")
    messages = [m for e in events for m in event_messages(e, topics)]
    assert [(m.topic, m.retain) for m in messages] == [
        ("site/doors/front/decision", True),
        ("site/doors/front/pad_failed", False),
    ]
    unknown = door_events(audit("DENY", "no_match"), "a-3")
    assert [m.topic for e in unknown for m in event_messages(e, topics)] == [
        "site/doors/front/decision",
        "site/doors/front/unknown_face",
    ]


def test_gallery_events_and_events_without_a_valid_id() -> None:
    topics = Topics()
    enrolled = Event("enrolled", 1, gallery_id="staff", identity_id="bob")
    assert [m.topic for m in event_messages(enrolled, topics)] == ["fovea/galleries/staff/enrolled"]
    identify = Event("unknown_face", 1, gallery_id="staff")
    assert [m.topic for m in event_messages(identify, topics)] == ["fovea/galleries/staff/unknown_face"]
    # a request refused for its door id still has events; its id must not become a topic
    for door in ("a/b", "x+", "#", ""):
        (deny,) = door_events({**audit("DENY", "bad_request"), "door_id": door}, "a-4")
        assert event_messages(deny, topics) == []
    assert event_messages(Event("identity_deleted", 1, gallery_id="bad/id"), topics) == []


def test_events_carry_no_image_or_embedding() -> None:
    (grant,) = door_events(audit("GRANT", "match"), "a-1")
    keys = set(json.loads(event_messages(grant, Topics())[0].payload))
    assert keys == {
        "kind",
        "unix_ms",
        "time",
        "door_id",
        "gallery_id",
        "identity_id",
        "decision",
        "reason",
        "reason_kind",
        "audit_id",
        "request_id",
        "event_id",
    }


def test_home_assistant_discovery_of_a_door() -> None:
    topics = Topics()
    messages = discovery_messages("front.door", topics, version="0.1.0")
    assert [m.topic for m in messages] == [
        "homeassistant/sensor/fovea_front_door_decision/config",
        "homeassistant/sensor/fovea_front_door_person/config",
    ]
    assert all(m.retain and m.qos == 1 for m in messages)
    decision, person = (json.loads(m.payload) for m in messages)
    assert decision["state_topic"] == decision["json_attributes_topic"] == "fovea/doors/front.door/decision"
    assert decision["value_template"] == "{{ value_json.decision }}"
    assert person["state_topic"] == "fovea/doors/front.door/person"
    assert person["value_template"] == "{{ value_json.identity_id }}"
    for config in (decision, person):
        assert config["availability_topic"] == "fovea/status"
        assert (config["payload_available"], config["payload_not_available"]) == ("online", "offline")
        assert config["device"]["identifiers"] == ["fovea_door_front_door"]
        assert config["origin"] == {"name": "Fovea", "sw_version": "0.1.0"}
    assert decision["unique_id"] == "fovea_front_door_decision" != person["unique_id"]

    with_camera = discovery_messages("front", topics, snapshot=True)
    camera = json.loads(with_camera[-1].payload)
    assert with_camera[-1].topic == "homeassistant/camera/fovea_front_snapshot/config"
    assert camera["topic"] == "fovea/doors/front/snapshot"
    assert discovery_messages("front", Topics(discovery_prefix="")) == []


def test_forgetting_a_door_clears_its_retained_messages() -> None:
    messages = forget_messages("front", Topics())
    assert messages and all(m.retain and m.payload == b"" for m in messages)
    assert {m.topic for m in messages} >= {
        "fovea/doors/front/decision",
        "homeassistant/sensor/fovea_front_decision/config",
    }


def test_snapshots_are_small_jpegs() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (1600, 1200), (200, 30, 30)).save(buf, format="PNG")
    jpeg = snapshot_jpeg(buf.getvalue(), max_side=320)
    with Image.open(io.BytesIO(jpeg)) as img:
        assert img.format == "JPEG" and img.size == (320, 240)
    assert snapshot_message("front", jpeg, Topics()).topic == "fovea/doors/front/snapshot"
    assert not snapshot_message("front", jpeg, Topics()).retain
    with pytest.raises(ValueError, match="does not decode"):
        snapshot_jpeg(b"not an image")
