"""Whether the stack's faces service publishes to MQTT: ``FOVEA_MQTT_URL`` when a broker answers there (as
``redis_setup`` probes Redis), else no MQTT."""

from __future__ import annotations

import ssl
import time

import paho.mqtt.client as mqtt

from fovea.faces.events.core.mqtt import parse_broker


def mqtt_answers(url: str, timeout_s: float = 1.0) -> bool:
    """A broker at ``url`` accepts a connection (CONNACK 0) within ``timeout_s``."""
    try:
        broker = parse_broker(url)
    except ValueError:
        return False
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fovea-up-probe-{time.time_ns()}")
    if broker.username:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set_context(ssl.create_default_context())
    try:
        client.connect(broker.host, broker.port, keepalive=5)
        deadline = time.monotonic() + timeout_s
        while not client.is_connected() and time.monotonic() < deadline:
            client.loop(timeout=0.05)
        return client.is_connected()
    except (OSError, ValueError, ssl.SSLError):
        return False
    finally:
        client.disconnect()


def plan_mqtt(url: str) -> str:
    """``url`` when a broker answers there, else '' (the faces service then publishes nothing)."""
    return url if url and mqtt_answers(url) else ""
