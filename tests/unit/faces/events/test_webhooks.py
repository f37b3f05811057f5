"""core/webhooks.py: the signature a receiver checks, the replay window, and the retry schedule."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from fovea.faces.events.core.events import Event
from fovea.faces.events.core.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookRejected,
    backoff_s,
    delivery_id,
    retryable,
    signature,
    signed_headers,
    verify_webhook,
)

SECRET = b"0123456789abcdef-secret"
NOW = 1_780_000_000.0


def delivery(now_s: float = NOW) -> tuple[dict[str, str], bytes]:
    event = Event("access_granted", 1_780_000_000_123, door_id="d1", decision="GRANT", event_id="1-0")
    body = event.body()
    headers = signed_headers(
        SECRET, body, delivery=delivery_id("1-0", "ops"), kind=event.kind, event_id="1-0", now_s=now_s
    )
    return headers, body


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    headers, body = delivery()
    assert headers[TIMESTAMP_HEADER] == "1780000000"
    expected = hmac.new(SECRET, b"1780000000." + body, hashlib.sha256).hexdigest()  # by hand
    assert (
        headers[SIGNATURE_HEADER] == "sha256=" + expected == "sha256=" + signature(SECRET, "1780000000", body)
    )
    assert headers[DELIVERY_HEADER] == "1-0.ops"


def test_a_receiver_verifies_and_gets_the_event() -> None:
    headers, body = delivery()
    lowered = {k.lower(): v for k, v in headers.items()}  # header names are compared without case
    event = verify_webhook(SECRET.decode(), lowered, body, 300, now_s=NOW + 299)
    assert event["kind"] == "access_granted" and event["door_id"] == "d1" and event["event_id"] == "1-0"
    assert json.loads(body) == event


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda h, b: (h, b + b" "), "signature does not match"),  # body changed
        (lambda h, b: ({**h, TIMESTAMP_HEADER: str(int(NOW) + 1)}, b), "signature does not match"),
        (lambda h, b: ({**h, SIGNATURE_HEADER: h[SIGNATURE_HEADER][7:]}, b), "sha256="),
        (lambda h, b: ({k: v for k, v in h.items() if k != SIGNATURE_HEADER}, b), "missing"),
        (lambda h, b: ({**h, TIMESTAMP_HEADER: "soon"}, b), "unix seconds"),
    ],
)
def test_tampered_deliveries_are_rejected(change: object, why: str) -> None:
    headers, body = change(*delivery())  # type: ignore[operator]
    with pytest.raises(WebhookRejected, match=why):
        verify_webhook(SECRET, headers, body, 300, now_s=NOW)


def test_another_secret_is_rejected() -> None:
    headers, body = delivery()
    with pytest.raises(WebhookRejected, match="signature"):
        verify_webhook(b"another-secret-of-16+", headers, body, 300, now_s=NOW)


def test_old_and_future_timestamps_are_replays() -> None:
    headers, body = delivery()
    with pytest.raises(WebhookRejected, match="301s from now"):
        verify_webhook(SECRET, headers, body, 300, now_s=NOW + 301)
    with pytest.raises(WebhookRejected, match="-301s from now"):
        verify_webhook(SECRET, headers, body, 300, now_s=NOW - 301)


def test_backoff_doubles_up_to_the_cap_within_its_upper_half() -> None:
    # base 1 s, cap 60 s: 1, 2, 4, 8, 16, 32, 60, 60 (jitter 1 = all of it, 0 = half)
    assert [backoff_s(r, 1.0, 60.0, 1.0) for r in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert [backoff_s(r, 1.0, 60.0, 0.0) for r in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff_s(3, 0.2, 10.0, 0.5) == pytest.approx(0.8 * 0.75)
    assert backoff_s(10_000, 1.0, 60.0, 1.0) == 60  # no overflow
    with pytest.raises(ValueError):
        backoff_s(0, 1.0, 60.0, 0.5)
    with pytest.raises(ValueError):
        backoff_s(1, 1.0, 60.0, 1.5)


def test_which_answers_are_retried() -> None:
    assert [s for s in (200, 301, 400, 401, 404, 408, 410, 429, 500, 502, 503) if retryable(s)] == [
        408,
        429,
        500,
        502,
        503,
    ]
