"""Prometheus metrics of the faces service (besides the per-RPC ones every service has)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from fovea.common.metrics import LATENCY_BUCKETS

GALLERIES = Gauge("fovea_faces_galleries_count", "Galleries held in this replica's memory")
TEMPLATES = Gauge("fovea_faces_templates_count", "Templates held in this replica's search matrices")
SYNC_RELOADS = Counter(
    "fovea_faces_sync_reloads_total", "Full loads of every gallery from Redis (start, reconnect, gap)"
)
TEMPLATES_ENROLLED = Counter("fovea_faces_enrolled_templates_total", "Templates added by Enroll")
SEARCH_DURATION = Histogram(
    "fovea_faces_search_duration_seconds",
    "Exact search of one photo's faces over a gallery matrix (Identify)",
    buckets=LATENCY_BUCKETS,
)
DOOR_DECISIONS = Counter(
    "fovea_faces_door_decisions_total",
    "VerifyAccess decisions, by decision and reason kind (fovea.faces.access.core.access.REASON_KINDS)",
    ["decision", "kind"],
)
AUDIT_BACKLOG = Gauge(
    "fovea_faces_audit_backlog_records", "Audit records waiting in memory for Redis to come back"
)
AUDIT_DROPPED = Counter(
    "fovea_faces_audit_dropped_total", "Audit records lost because the in-memory backlog was full"
)
EVENTS_PUBLISHED = Counter(
    "fovea_faces_events_total", "Events appended to the event stream, by kind", ["kind"]
)
EVENTS_DROPPED = Counter(
    "fovea_faces_events_dropped_total", "Events not appended (Redis down, or too many appends waiting)"
)
WEBHOOK_ATTEMPTS = Counter(
    "fovea_faces_webhook_attempts_total",
    "Webhook POSTs, by endpoint and result (delivered, retry, failed)",
    ["endpoint", "result"],
)
WEBHOOK_DEAD_LETTERS = Counter(
    "fovea_faces_webhook_dead_letters_total",
    "Deliveries moved to the dead-letter list, by endpoint",
    ["endpoint"],
)
WEBHOOK_DURATION = Histogram(
    "fovea_faces_webhook_duration_seconds",
    "One webhook POST, until its answer's status",
    buckets=LATENCY_BUCKETS,
)
MQTT_EVENTS = Counter(
    "fovea_faces_mqtt_events_total",
    "Events published to the MQTT broker (their messages acknowledged), by kind",
    ["kind"],
)
MQTT_CONNECTED = Gauge(
    "fovea_faces_mqtt_connected", "1 while this replica holds the MQTT lease and is connected to the broker"
)
