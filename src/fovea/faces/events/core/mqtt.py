"""MQTT: the broker URL, the topic tree, each event's messages and Home Assistant's discovery messages.

Pure: what is published where, as :class:`Message` values; ``fovea.faces.events.mqtt`` sends them.

The topic tree under the prefix (``fovea`` by default; ``FOVEA_FACES_MQTT_TOPIC_PREFIX``)::

    fovea/status                            online / offline (retained; the last will says offline)
    fovea/doors/<door>/decision             each door decision, JSON (retained: the door's last decision)
    fovea/doors/<door>/person               who the door last let in, JSON (retained)
    fovea/doors/<door>/pad_failed           a presentation-attack defence said no, JSON
    fovea/doors/<door>/unknown_face         the face matched nobody (or the claimed identity is not enrolled)
    fovea/doors/<door>/snapshot             a JPEG of the burst, only where the door's policy asks for one
    fovea/galleries/<gallery>/<kind>        enrolled, identity_deleted, template_deleted, unknown_face
                                            (Identify's), JSON

Doors and galleries have a level of their own (``doors/``, ``galleries/``) so that no door id can collide
with ``status`` or a gallery. Ids are 1-64 letters, digits, ``.``, ``_``, ``-``: never an MQTT wildcard or a
level separator. Payloads carry what an event carries (ids, decision, reasons; never an embedding, never an
image but on the snapshot topic).
"""

from __future__ import annotations

import datetime
import io
import json
import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from PIL import Image, ImageOps, UnidentifiedImageError

from fovea.faces.events.core.events import (
    ACCESS_DENIED,
    ACCESS_GRANTED,
    ENROLLED,
    IDENTITY_DELETED,
    PAD_FAILED,
    TEMPLATE_DELETED,
    UNKNOWN_FACE,
    Event,
)
from fovea.faces.recognition.core.records import GALLERY_ID

ONLINE = b"online"
OFFLINE = b"offline"
SCHEMES = {"mqtt": (1883, False), "mqtts": (8883, True)}
PREFIX = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")
"""A topic prefix (and a discovery prefix): levels of letters, digits, '.', '_', '-' (no wildcards)."""
_OBJECT_ID = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass(frozen=True)
class Broker:
    """Where to connect: ``mqtt://[user[:password]@]host[:port]`` or ``mqtts://`` (TLS, port 8883)."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never the password
        return f"Broker({self.origin!r})"

    @property
    def origin(self) -> str:
        """``mqtt://user@host:port``: what logs and messages show (no password)."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}"


def parse_broker(url: str) -> Broker:
    """The broker of ``url``; ``ValueError`` saying what is wrong (never quoting a password)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in SCHEMES:
        raise ValueError(
            f"the MQTT URL must start with mqtt:// or mqtts://, not {parts.scheme or '(none)'}://"
        )
    if not parts.hostname:
        raise ValueError("the MQTT URL names no host (mqtt://host:1883)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("the MQTT URL takes no path, query or fragment (topics are set apart)")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("the MQTT URL's port is not a number in 1-65535") from exc
    default_port, tls = SCHEMES[parts.scheme]
    return Broker(
        host=parts.hostname,
        port=port or default_port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def check_prefix(prefix: str, what: str = "topic prefix") -> str:
    if not PREFIX.fullmatch(prefix) or len(prefix) > 128:
        raise ValueError(
            f"MQTT {what} {prefix[:40]!r} is not valid: levels of letters, digits, '.', '_', '-' "
            "separated by '/', at most 128 characters"
        )
    return prefix


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 1


@dataclass(frozen=True)
class Topics:
    """The topic tree (module docstring) under ``prefix``; Home Assistant's under ``discovery_prefix`` ('' =
    no discovery)."""

    prefix: str = "fovea"
    discovery_prefix: str = "homeassistant"

    def __post_init__(self) -> None:
        check_prefix(self.prefix)
        if self.discovery_prefix:
            check_prefix(self.discovery_prefix, "discovery prefix")

    @property
    def status(self) -> str:
        return f"{self.prefix}/status"

    def door(self, door_id: str, what: str) -> str:
        return f"{self.prefix}/doors/{door_id}/{what}"

    def gallery(self, gallery_id: str, what: str) -> str:
        return f"{self.prefix}/galleries/{gallery_id}/{what}"

    @property
    def node(self) -> str:
        """The prefix as Home Assistant's ids take it (``fovea``; ``site/fovea`` -> ``site_fovea``)."""
        return _OBJECT_ID.sub("_", self.prefix)

    def object_id(self, door_id: str, what: str) -> str:
        """``fovea_<door>_<what>``: the entity's id (a door's '.' becomes '_')."""
        return f"{self.node}_{_OBJECT_ID.sub('_', door_id)}_{what}"

    def discovery(self, component: str, door_id: str, what: str) -> str:
        return f"{self.discovery_prefix}/{component}/{self.object_id(door_id, what)}/config"


def iso_time(unix_ms: int) -> str:
    """``2026-05-01T12:00:00.123+00:00``."""
    return datetime.datetime.fromtimestamp(unix_ms / 1000, datetime.UTC).isoformat(timespec="milliseconds")


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def event_payload(event: Event) -> dict[str, Any]:
    """An event as its MQTT messages carry it: its fields (as webhooks send them) and ``time`` (ISO 8601)."""
    return {**asdict(event), "time": iso_time(event.unix_ms)}


def event_messages(event: Event, topics: Topics) -> list[Message]:
    """The messages of one event (none for an event without the valid door or gallery id its topic needs). A door
    decision is retained on ``decision`` (and, a GRANT, on ``person``): a subscriber that comes later (Home
    Assistant after a restart) reads the door's last state."""
    body = _json(event_payload(event))
    kind = event.kind
    # A door's events carry the door id as sent: one that is not a valid id (a request refused for it)
    # would make a wrong topic ('+', '#', '/'), so it has none.
    door = event.door_id if GALLERY_ID.fullmatch(event.door_id) else ""
    gallery = event.gallery_id if GALLERY_ID.fullmatch(event.gallery_id) else ""
    if kind in (ACCESS_GRANTED, ACCESS_DENIED) and door:
        out = [Message(topics.door(door, "decision"), body, retain=True)]
        if event.decision == "GRANT":
            person = {
                "identity_id": event.identity_id,
                "gallery_id": gallery,
                "event_id": event.event_id,
                "unix_ms": event.unix_ms,
                "time": iso_time(event.unix_ms),
            }
            out.append(Message(topics.door(door, "person"), _json(person), retain=True))
        return out
    if kind in (PAD_FAILED, UNKNOWN_FACE) and door:
        return [Message(topics.door(door, kind), body)]
    if kind in (UNKNOWN_FACE, ENROLLED, IDENTITY_DELETED, TEMPLATE_DELETED) and gallery:
        return [Message(topics.gallery(gallery, kind), body)]
    return []


def snapshot_message(door_id: str, jpeg: bytes, topics: Topics) -> Message:
    """A door's snapshot: the JPEG itself (what Home Assistant's MQTT camera shows), not retained."""
    return Message(topics.door(door_id, "snapshot"), jpeg)


def discovery_messages(
    door_id: str, topics: Topics, *, snapshot: bool = False, version: str = ""
) -> list[Message]:
    """Home Assistant MQTT discovery for one door (retained): a sensor for its last decision, one for the
    last person it let in, and, when the door takes snapshots, a camera. Each names ``status`` as its
    availability, so Home Assistant shows the door unavailable while the faces service is gone. Empty when
    discovery is off."""
    if not topics.discovery_prefix:
        return []
    device = {
        "identifiers": [f"{topics.node}_door_{_OBJECT_ID.sub('_', door_id)}"],
        "name": f"Fovea door {door_id}",
        "manufacturer": "Fovea",
        "model": "Door access (faces service)",
    }
    common = {
        "availability_topic": topics.status,
        "payload_available": ONLINE.decode(),
        "payload_not_available": OFFLINE.decode(),
        "device": device,
        "origin": {"name": "Fovea", **({"sw_version": version} if version else {})},
    }
    decision = topics.door(door_id, "decision")
    person = topics.door(door_id, "person")
    configs = [
        (
            "sensor",
            "decision",
            {
                "name": "Last decision",
                "state_topic": decision,
                "value_template": "{{ value_json.decision }}",
                "json_attributes_topic": decision,
                "icon": "mdi:door-closed-lock",
            },
        ),
        (
            "sensor",
            "person",
            {
                "name": "Last person",
                "state_topic": person,
                "value_template": "{{ value_json.identity_id }}",
                "json_attributes_topic": person,
                "icon": "mdi:account-check",
            },
        ),
    ]
    if snapshot:
        configs.append(
            ("camera", "snapshot", {"name": "Snapshot", "topic": topics.door(door_id, "snapshot")})
        )
    out = []
    for component, what, config in configs:
        unique = topics.object_id(door_id, what)
        body = {**config, **common, "unique_id": unique, "object_id": unique}
        out.append(Message(topics.discovery(component, door_id, what), _json(body), retain=True))
    return out


def forget_messages(door_id: str, topics: Topics) -> list[Message]:
    """Empty retained messages that remove a door's discovery and its retained state from the broker."""
    topics_of = [
        topics.door(door_id, "decision"),
        topics.door(door_id, "person"),
    ]
    if topics.discovery_prefix:
        topics_of += [
            topics.discovery("sensor", door_id, "decision"),
            topics.discovery("sensor", door_id, "person"),
            topics.discovery("camera", door_id, "snapshot"),
        ]
    return [Message(t, b"", retain=True) for t in topics_of]


def snapshot_jpeg(data: bytes, max_side: int = 640, quality: int = 85) -> bytes:
    """An encoded frame (JPEG, PNG, WebP) as a JPEG whose longer side is at most ``max_side`` (EXIF
    orientation applied); ``ValueError`` when it does not decode."""
    if max_side < 16:
        raise ValueError(f"max_side must be >= 16, got {max_side}")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (max_side, max_side))  # a large JPEG is decoded at 1/2 .. 1/8 of its size
            out = ImageOps.exif_transpose(img).convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"the frame does not decode: {exc}") from exc
    out.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


__all__ = [
    "OFFLINE",
    "ONLINE",
    "Broker",
    "Message",
    "Topics",
    "check_prefix",
    "discovery_messages",
    "event_messages",
    "event_payload",
    "forget_messages",
    "iso_time",
    "parse_broker",
    "snapshot_jpeg",
    "snapshot_message",
]
