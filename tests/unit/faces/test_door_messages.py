"""A door's decision as v1 messages (``fovea.faces.door_messages``): what the door's checks said goes into the
response and, through the audit record's stored fields, back out of ListAuditRecords unchanged."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fovea.faces.access.core.access import deny
from fovea.faces.access.core.passive import PassiveResult
from fovea.faces.access.door import passive_fields
from fovea.faces.door_messages import audit_record, passive_check, recorded_passive
from fovea.faces.v1 import faces_pb2


def test_the_passive_check_in_a_response_and_its_audit_record() -> None:
    """What the door's passive check said goes into the response as it is, and into the audit record's
    fields, from which ListAuditRecords gives the same back; a door without one gives an empty message."""
    found = PassiveResult(
        "trained:lobby", 0.25, 0.5, True, "passive trained:lobby: burst score 0.250 < 0.500"
    )
    message = passive_check(found)
    assert (message.check, message.attack, message.reason) == ("trained:lobby", True, found.reason)
    assert (message.score, message.threshold) == (pytest.approx(0.25), pytest.approx(0.5))
    fields = passive_fields(replace(deny("passive", found.reason), passive=found))
    assert fields["passive_threshold"] == "0.500000" and fields["passive_attack"] == "true"
    assert recorded_passive(fields) == message
    assert passive_check(None) == faces_pb2.PassiveCheck() == recorded_passive({})
    assert recorded_passive(passive_fields(deny("no_face", "no face"))) == faces_pb2.PassiveCheck()
    # a record written before the field existed reads back without one
    old = audit_record("1-0", {"decision": "GRANT", "kind": "match", "pad_verdict": "NOT_CHECKED"})
    assert old.decision == faces_pb2.GRANT and old.passive == faces_pb2.PassiveCheck()
