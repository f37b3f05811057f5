"""Events: what happened at the doors and in the galleries, as small records (no images, no embeddings).

A door decision is told from its audit record (``door_events``): one ``access_granted`` or
``access_denied`` event per VerifyAccess, plus ``pad_failed`` when a presentation-attack defence said no
(the geometry check found an attack, or could not tell where the door requires it; a liveness spoof; a
replayed burst; a challenge not met, expired, reused, invalid or missing) and ``unknown_face`` when the face
matched no enrolled identity (or the claimed identity is not enrolled: both read alike, see below); all of
them carry the record's audit id. Identify tells ``unknown_face`` for a photo
with faces that matched nobody; Enroll, DeleteIdentity and DeleteTemplate tell ``enrolled``,
``identity_deleted`` and ``template_deleted``.

The stream keeps the full record. A watcher without ``faces:admin`` sees the events through
:func:`without_enrollment`, as VerifyAccess answers such a caller (``core.access.without_enrollment``): a
claimed identity that is not enrolled reads like one that did not match ("no match", kind ``no_match``),
so watching events tells no more about who is enrolled than asking the door does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace

from fovea.faces.access.core.access import ENROLLMENT_KINDS

ACCESS_GRANTED = "access_granted"
ACCESS_DENIED = "access_denied"
PAD_FAILED = "pad_failed"
UNKNOWN_FACE = "unknown_face"
ENROLLED = "enrolled"
IDENTITY_DELETED = "identity_deleted"
TEMPLATE_DELETED = "template_deleted"
KINDS = (
    ACCESS_GRANTED,
    ACCESS_DENIED,
    PAD_FAILED,
    UNKNOWN_FACE,
    ENROLLED,
    IDENTITY_DELETED,
    TEMPLATE_DELETED,
)
MAX_REASON_CHARS = 1000
"""Reasons longer than this are cut (an event's body stays small whatever a reason says)."""

EVENT_ID = re.compile(r"\d{1,20}-\d{1,20}")
"""A Redis stream id, as events are numbered (``<unix ms>-<n>``); ``0`` stands for "the beginning"."""

# Audit-record reason kinds (``core.access``) that mean the face matched nobody it was compared with (an
# identity that is not enrolled has nothing to match: both tell unknown_face, so the events of the two read
# the same once their reasons are hidden), and those of the presentation-attack defences (besides every
# ``challenge_*`` kind).
_UNKNOWN_KINDS = ENROLLMENT_KINDS
_PAD_KINDS = frozenset({"pad", "liveness", "replay"})


def is_pad_failure(reason_kind: str, pad_verdict: str = "") -> bool:
    """A door decision whose presentation-attack defences said no (or a recorded ATTACK verdict)."""
    return reason_kind in _PAD_KINDS or reason_kind.startswith("challenge_") or pad_verdict == "ATTACK"


@dataclass(frozen=True)
class Event:
    kind: str  # one of KINDS
    unix_ms: int
    door_id: str = ""
    gallery_id: str = ""
    identity_id: str = ""  # the claimed identity at a door; the enrolled or deleted one
    decision: str = ""  # GRANT | DENY for door events, '' otherwise
    reason: str = ""
    reason_kind: str = ""  # the door decision's reason kind (match, no_match, pad, ...)
    audit_id: str = ""
    request_id: str = ""
    event_id: str = ""  # given by the stream when appended

    def fields(self) -> dict[str, str]:
        """The stream entry's fields (every field but the id, which is the entry's)."""
        out = {k: str(v) for k, v in asdict(self).items() if k != "event_id"}
        out["reason"] = out["reason"][:MAX_REASON_CHARS]
        return out

    @classmethod
    def from_fields(cls, event_id: str, fields: Mapping[str, str]) -> Event:
        """The event of a stream entry; fields it does not know are ignored, missing ones are empty."""
        return cls(
            kind=fields.get("kind", ""),
            unix_ms=int(fields.get("unix_ms") or 0),
            door_id=fields.get("door_id", ""),
            gallery_id=fields.get("gallery_id", ""),
            identity_id=fields.get("identity_id", ""),
            decision=fields.get("decision", ""),
            reason=fields.get("reason", ""),
            reason_kind=fields.get("reason_kind", ""),
            audit_id=fields.get("audit_id", ""),
            request_id=fields.get("request_id", ""),
            event_id=event_id,
        )

    def body(self) -> bytes:
        """The webhook body: compact JSON, keys sorted (what the signature covers, byte for byte)."""
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True).encode()


def door_events(fields: Mapping[str, str], audit_id: str) -> list[Event]:
    """The events of one door audit record (``fovea.faces.access.door``'s fields), in this order: the decision,
    then ``pad_failed`` and ``unknown_face`` where they apply."""
    decision = fields.get("decision", "")
    reason_kind = fields.get("kind", "")
    base = Event(
        kind=ACCESS_GRANTED if decision == "GRANT" else ACCESS_DENIED,
        unix_ms=int(fields.get("unix_ms") or 0),
        door_id=fields.get("door_id", ""),
        gallery_id=fields.get("gallery_id", ""),
        identity_id=fields.get("claimed_identity_id", ""),
        decision=decision,
        reason=fields.get("reason", ""),
        reason_kind=reason_kind,
        audit_id=audit_id,
        request_id=fields.get("request_id", ""),
    )
    out = [base]
    if is_pad_failure(reason_kind, fields.get("pad_verdict", "")):
        out.append(_with_kind(base, PAD_FAILED))
    if reason_kind in _UNKNOWN_KINDS:
        out.append(_with_kind(base, UNKNOWN_FACE))
    return out


def _with_kind(event: Event, kind: str) -> Event:
    return Event(**{**asdict(event), "kind": kind})


def without_enrollment(event: Event) -> Event:
    """``event`` as a watcher who may not learn who is enrolled sees it: the door events of a DENY for no
    match and of one for an identity that is not enrolled read the same (reason "no match", kind
    ``no_match``, as ``core.access.without_enrollment`` answers VerifyAccess); other events as they are."""
    if event.reason_kind not in ENROLLMENT_KINDS:
        return event
    return replace(event, reason="no match", reason_kind="no_match")


@dataclass(frozen=True)
class EventFilter:
    """Which events a watcher or a webhook endpoint wants; an empty set means any."""

    door_ids: frozenset[str] = frozenset()
    gallery_ids: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, door_ids: Iterable[str] = (), gallery_ids: Iterable[str] = (), kinds: Iterable[str] = ()
    ) -> EventFilter:
        """Raises ``ValueError`` naming an unknown kind."""
        wanted = frozenset(kinds)
        unknown = sorted(wanted - set(KINDS))
        if unknown:
            raise ValueError(f"unknown event kinds {unknown}; known: {', '.join(KINDS)}")
        return cls(frozenset(door_ids), frozenset(gallery_ids), wanted)

    def matches(self, event: Event) -> bool:
        return (
            (not self.door_ids or event.door_id in self.door_ids)
            and (not self.gallery_ids or event.gallery_id in self.gallery_ids)
            and (not self.kinds or event.kind in self.kinds)
        )


def check_event_id(event_id: str) -> str:
    """``event_id`` when it is ``0`` or a stream id; else ``ValueError``."""
    if event_id != "0" and not EVENT_ID.fullmatch(event_id):
        raise ValueError(f"after_event_id {event_id[:40]!r} is not an event id (<unix ms>-<n>, or 0)")
    return event_id


def id_key(event_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair (``0`` -> (0, 0))."""
    ms, _, n = event_id.partition("-")
    return int(ms), int(n or 0)


__all__ = [
    "ACCESS_DENIED",
    "ACCESS_GRANTED",
    "ENROLLED",
    "IDENTITY_DELETED",
    "KINDS",
    "PAD_FAILED",
    "TEMPLATE_DELETED",
    "UNKNOWN_FACE",
    "Event",
    "EventFilter",
    "check_event_id",
    "door_events",
    "id_key",
    "without_enrollment",
]
