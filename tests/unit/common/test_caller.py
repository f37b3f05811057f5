"""The caller's scopes as the gateway passes them on to the services."""

from __future__ import annotations

from fovea.common.caller import CALLER_SCOPES_HEADER, caller_scopes, has_scope, scopes_header


def test_scopes_round_trip_and_fail_closed() -> None:
    header = scopes_header(frozenset({"faces:verify", "detect"}))
    assert header == (CALLER_SCOPES_HEADER, "detect,faces:verify")
    scopes = caller_scopes([("x-request-id", "r"), header])
    assert scopes == {"detect", "faces:verify"}
    assert has_scope(scopes, "faces:verify") and not has_scope(scopes, "faces:admin")
    assert has_scope(caller_scopes([scopes_header(["*"])]), "faces:admin")
    assert caller_scopes([]) == frozenset() and caller_scopes(None) == frozenset()  # no word: no scope
    assert caller_scopes([(CALLER_SCOPES_HEADER, "")]) == frozenset()
