"""Request ids: made at the edge, the caller's own kept apart; behind the edge, the gateway's kept."""

from __future__ import annotations

from fovea.common.interceptors import request_ids_from


def test_the_edge_makes_its_own_request_id() -> None:
    request_id, client_id = request_ids_from([("x-request-id", "door-7-abc")], edge=True)
    assert len(request_id) == 32 and request_id != "door-7-abc" and client_id == "door-7-abc"
    request_id, client_id = request_ids_from([], edge=True)
    assert len(request_id) == 32 and client_id == ""
    # a caller's id is bounded and printable
    _, client_id = request_ids_from([("x-request-id", "a\x00b" + "c" * 500)], edge=True)
    assert client_id == "ab" + "c" * 125


def test_behind_the_edge_the_gateways_ids_are_kept() -> None:
    metadata = [("x-request-id", "0" * 32), ("x-client-request-id", "door-7-abc")]
    assert request_ids_from(metadata, edge=False) == ("0" * 32, "door-7-abc")
    request_id, client_id = request_ids_from([], edge=False)
    assert len(request_id) == 32 and client_id == ""
