"""The machine's Mosquitto (127.0.0.1:1883) as the integration tests use it: a subscriber that keeps what it
gets, and the clean-up of the retained messages a test stack left there.

The test stack publishes under a prefix of its own (``fovea/it-<hex>``: still under ``fovea/#``) and its Home
Assistant entities are ``fovea_it-<hex>_<door>_...``, so runs side by side (and a `make up` stack on the same
broker) never read or clear each other's messages."""

from __future__ import annotations

import threading
import time
import uuid

import paho.mqtt.client as mqtt

from fovea.stack.mqtt_setup import mqtt_answers

BROKER = "mqtt://127.0.0.1:1883"
HOST, PORT = "127.0.0.1", 1883


def broker_answers() -> bool:
    return mqtt_answers(BROKER)


def run_prefix() -> str:
    return f"fovea/it-{uuid.uuid4().hex[:8]}"


class Subscriber:
    """Every message under ``filters`` since it started, as (topic, payload, retain)."""

    def __init__(self, *filters: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"fovea-it-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.filters = filters

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def __enter__(self) -> Subscriber:
        self.client.connect(HOST, PORT, keepalive=30)
        self.client.loop_start()
        self.client.subscribe([(f, 1) for f in self.filters])
        if not self._subscribed.wait(10):
            raise TimeoutError("Mosquitto did not acknowledge the subscription")
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait(self, match: str, timeout_s: float = 10.0) -> list[tuple[str, bytes, bool]]:
        """The messages whose topic contains ``match``, once there is one (AssertionError after ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                got = [m for m in self.messages if match in m[0]]
            if got:
                return got
            if time.monotonic() > deadline:
                with self._lock:
                    topics = sorted({m[0] for m in self.messages})
                raise AssertionError(
                    f"no message on a topic with {match!r} in {timeout_s}s; got {topics[:20]}"
                )
            time.sleep(0.05)


def clear_retained(prefix: str, discovery_prefix: str = "homeassistant") -> int:
    """Remove the retained messages of a test stack (its topics and its discovery configs); how many."""
    node = prefix.replace("/", "_")
    with Subscriber(f"{prefix}/#", f"{discovery_prefix}/+/+/config") as sub:
        time.sleep(1.0)  # the broker sends what it retains at once
        mine = {
            t
            for t, payload, retained in sub.messages
            if retained and payload and (t.startswith(prefix + "/") or t.split("/")[2].startswith(node + "_"))
        }
        for topic in mine:
            sub.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    return len(mine)
