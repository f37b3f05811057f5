"""The pure parts of webhooks: the headers of a delivery, its signature, how a receiver verifies it, and the
retry schedule.

Each delivery is a POST of one event as JSON (``core.events.Event.body``) with these headers:

* ``X-Fovea-Delivery``: the delivery id, one per event and endpoint, the same on every retry (a receiver
  that has seen it already answers 2xx and does nothing);
* ``X-Fovea-Timestamp``: when this attempt was signed, in unix seconds;
* ``X-Fovea-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed with the endpoint's secret, of
  ``<timestamp>.<body>`` (the timestamp header's text, a dot, the body's bytes as received);
* ``X-Fovea-Event`` (the kind) and ``X-Fovea-Event-Id``, for routing without parsing the body.

A receiver calls :func:`verify_webhook`: it recomputes the signature, compares it in constant time, and
refuses a timestamp further than ``tolerance_s`` from its own clock, so a captured delivery cannot be
replayed later (each retry is signed anew with the time of that attempt).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

DELIVERY_HEADER = "X-Fovea-Delivery"
TIMESTAMP_HEADER = "X-Fovea-Timestamp"
SIGNATURE_HEADER = "X-Fovea-Signature"
EVENT_HEADER = "X-Fovea-Event"
EVENT_ID_HEADER = "X-Fovea-Event-Id"
SIGNATURE_PREFIX = "sha256="
DEFAULT_TOLERANCE_S = 300.0


class WebhookRejected(ValueError):
    """A delivery that does not verify; the message says why."""


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``<timestamp>.<body>`` keyed with ``secret``."""
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def delivery_id(event_id: str, endpoint: str) -> str:
    """One per event and endpoint, stable across retries and redrives."""
    return f"{event_id}.{endpoint}"


def signed_headers(
    secret: bytes, body: bytes, *, delivery: str, kind: str, event_id: str, now_s: float
) -> dict[str, str]:
    timestamp = str(int(now_s))
    return {
        "Content-Type": "application/json",
        "User-Agent": "fovea-webhooks/1",
        DELIVERY_HEADER: delivery,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: SIGNATURE_PREFIX + signature(secret, timestamp, body),
        EVENT_HEADER: kind,
        EVENT_ID_HEADER: event_id,
    }


def verify_webhook(
    secret: bytes | str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    *,
    now_s: float | None = None,
) -> dict[str, Any]:
    """The event of a delivery whose signature is right and whose timestamp is within ``tolerance_s`` of
    ``now_s`` (default: this clock); ``WebhookRejected`` saying why otherwise. ``headers``: any mapping of
    the request's headers (names compared without case), e.g. ``http.server``'s ``self.headers`` items."""
    key = secret.encode() if isinstance(secret, str) else secret
    lower = {k.lower(): v for k, v in headers.items()}
    timestamp = lower.get(TIMESTAMP_HEADER.lower(), "")
    sent = lower.get(SIGNATURE_HEADER.lower(), "")
    if not timestamp or not sent:
        raise WebhookRejected(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    try:
        moment = int(timestamp)
    except ValueError:
        raise WebhookRejected(f"{TIMESTAMP_HEADER} is not unix seconds") from None
    if not sent.startswith(SIGNATURE_PREFIX):
        raise WebhookRejected(f"{SIGNATURE_HEADER} does not start with {SIGNATURE_PREFIX}")
    expected = signature(key, timestamp, body)
    if not hmac.compare_digest(sent[len(SIGNATURE_PREFIX) :].encode(), expected.encode()):
        raise WebhookRejected("signature does not match")
    now = time.time() if now_s is None else now_s
    if abs(now - moment) > tolerance_s:  # checked after the signature: a forged time is not news
        raise WebhookRejected(f"timestamp is {now - moment:.0f}s from now (tolerance {tolerance_s:.0f}s)")
    try:
        event = json.loads(body)
    except ValueError:
        raise WebhookRejected("body is not JSON") from None
    if not isinstance(event, dict):
        raise WebhookRejected("body is not a JSON object")
    return event


def backoff_s(retry: int, base_s: float, cap_s: float, jitter: float) -> float:
    """Seconds to wait before retry number ``retry`` (1 = the second attempt): ``base_s * 2**(retry-1)``
    capped at ``cap_s``, then scaled into its upper half by ``jitter`` in [0, 1] (0 -> half, 1 -> all),
    so receivers coming back are not hit by every sender at once."""
    if retry < 1:
        raise ValueError(f"retry must be >= 1, got {retry}")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter must be within [0, 1], got {jitter}")
    full = min(cap_s, base_s * 2.0 ** min(retry - 1, 60))
    return full * (0.5 + 0.5 * jitter)


def retryable(status: int) -> bool:
    """Whether an HTTP answer is worth another attempt: 5xx, 408 and 429 are; other 4xx (a receiver that
    refuses the delivery) and 3xx (redirects are not followed) are final."""
    return status >= 500 or status in (408, 429)


__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "EVENT_ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookRejected",
    "backoff_s",
    "delivery_id",
    "retryable",
    "signature",
    "signed_headers",
    "verify_webhook",
]
