"""core/events.py: which events an audit record tells, filters, event ids."""

from __future__ import annotations

import json

import pytest

from fovea.faces.events.core.events import (
    Event,
    EventFilter,
    check_event_id,
    door_events,
    id_key,
    without_enrollment,
)


def record(decision: str, kind: str, pad_verdict: str = "NOT_CHECKED") -> dict[str, str]:
    """The fields ``door.py`` writes to the audit stream (the ones events read)."""
    return {
        "unix_ms": "1780000000123",
        "door_id": "door-7",
        "gallery_id": "office",
        "claimed_identity_id": "obama",
        "decision": decision,
        "reason": "reason text",
        "kind": kind,
        "distance": "0.300000",
        "request_id": "r1",
        "pad_verdict": pad_verdict,
    }


def test_a_grant_is_one_event_with_the_audit_id() -> None:
    [event] = door_events(record("GRANT", "match"), "5-0")
    assert event == Event(
        "access_granted",
        1780000000123,
        door_id="door-7",
        gallery_id="office",
        identity_id="obama",
        decision="GRANT",
        reason="reason text",
        reason_kind="match",
        audit_id="5-0",
        request_id="r1",
    )


@pytest.mark.parametrize(
    ("decision", "kind", "pad", "kinds"),
    [
        ("DENY", "no_match", "NOT_CHECKED", ["access_denied", "unknown_face"]),
        ("DENY", "unknown_identity", "NOT_CHECKED", ["access_denied", "unknown_face"]),  # as no_match
        ("DENY", "pad", "ATTACK", ["access_denied", "pad_failed"]),
        ("DENY", "pad", "UNDECIDED", ["access_denied", "pad_failed"]),  # required and could not tell
        ("GRANT", "match", "ATTACK", ["access_granted", "pad_failed"]),  # policy "record"
        ("DENY", "replay", "NOT_CHECKED", ["access_denied", "pad_failed"]),
        ("DENY", "challenge_expired", "NOT_CHECKED", ["access_denied", "pad_failed"]),
        ("DENY", "liveness", "NOT_CHECKED", ["access_denied", "pad_failed"]),
        ("DENY", "no_face", "NOT_CHECKED", ["access_denied"]),
        ("DENY", "unavailable", "NOT_CHECKED", ["access_denied"]),
    ],
)
def test_denials_tell_what_failed(decision: str, kind: str, pad: str, kinds: list[str]) -> None:
    events = door_events(record(decision, kind, pad), "6-1")
    assert [e.kind for e in events] == kinds
    assert {e.audit_id for e in events} == {"6-1"} and {e.decision for e in events} == {decision}


def test_without_admin_an_identity_not_enrolled_reads_like_no_match() -> None:
    """Before: a watcher with faces:events alone saw reason kind unknown_identity and "identity X has no
    templates in gallery G" (and no unknown_face event for it), which VerifyAccess hides from it."""
    not_enrolled = {
        **record("DENY", "unknown_identity"),
        "reason": "identity obama has no templates in gallery office",
    }
    no_match = {**record("DENY", "no_match"), "reason": "no match: best distance 0.812 >= threshold 0.600"}
    hidden = [[without_enrollment(e) for e in door_events(r, "6-1")] for r in (not_enrolled, no_match)]
    assert hidden[0] and hidden[0] == hidden[1]  # the two read the same, event for event
    assert {(e.reason, e.reason_kind) for e in hidden[0]} == {("no match", "no_match")}
    full = door_events(not_enrolled, "6-1")  # what the stream keeps (admins, webhooks): the full record
    assert {e.reason_kind for e in full} == {"unknown_identity"} and "no templates" in full[0].reason
    for kind in ("match", "pad", "challenge_invalid", "no_face"):  # other reasons are not enrollment
        [event] = door_events(record("DENY", kind), "6-2")[:1]
        assert without_enrollment(event) == event
    enrolled = Event("enrolled", 5, gallery_id="g", identity_id="i", reason="1 template(s) added")
    assert without_enrollment(enrolled) == enrolled


def test_fields_round_trip_and_long_reasons_are_cut() -> None:
    event = Event("enrolled", 5, gallery_id="g", identity_id="i", reason="x" * 5000)
    back = Event.from_fields("9-2", event.fields())
    assert back.event_id == "9-2" and back.kind == "enrolled" and len(back.reason) == 1000
    assert "event_id" not in event.fields()
    assert Event.from_fields("1-1", {"kind": "enrolled", "new_field": "x"}).unix_ms == 0  # tolerant


def test_the_body_is_compact_sorted_json() -> None:
    body = Event("enrolled", 5, event_id="1-0").body()
    assert body.startswith(b'{"audit_id":"","decision":""') and b" " not in body
    assert json.loads(body)["event_id"] == "1-0"


def test_filters() -> None:
    event = Event("access_denied", 1, door_id="d1", gallery_id="g1")
    assert EventFilter().matches(event)
    assert EventFilter.of(door_ids=["d1", "d2"], kinds=["access_denied"]).matches(event)
    assert not EventFilter.of(door_ids=["d2"]).matches(event)
    assert not EventFilter.of(gallery_ids=["g2"]).matches(event)
    assert not EventFilter.of(kinds=["pad_failed"]).matches(event)
    with pytest.raises(ValueError, match="unknown event kinds \\['granted'\\]"):
        EventFilter.of(kinds=["granted"])


def test_event_ids() -> None:
    assert check_event_id("1780000000123-0") == "1780000000123-0" and check_event_id("0") == "0"
    for bad in ("", "abc", "1-", "-1", "1-2-3", "1780000000123-0\n"):
        with pytest.raises(ValueError, match="not an event id"):
            check_event_id(bad)
    assert id_key("0") == (0, 0) and id_key("10-2") > id_key("9-99")
