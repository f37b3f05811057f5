"""The real local stack (Triton, Redis, services, Celery worker, gateway), started once per test run."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from fovea.client import FoveaClient
from fovea.gateway.auth import add_key
from fovea.stack.config import StackSettings
from fovea.stack.control import StackError, down, log_tail, up
from fovea.stack.supervisor import Supervisor

from .mqtt_broker import BROKER, broker_answers, clear_retained, run_prefix

T = TypeVar("T")
PORT_FIELDS = [name for name in StackSettings.model_fields if name.endswith("_port")]


def free_ports(count: int) -> list[int]:
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@dataclass
class Stack:
    settings: StackSettings
    admin_key: str
    detect_key: str
    webhook_port: int = 0  # where the "receiver" webhook endpoint posts (tests serve on it)
    silent_port: int = 0  # where the "silent" endpoint posts (enrolled events, 2 attempts)
    mqtt_prefix: str = ""  # the faces service's MQTT topic prefix; '' = no broker answered, no MQTT

    @property
    def gateway(self) -> str:
        return f"{self.settings.host}:{self.settings.gateway_port}"

    def client(self, key: str | None = None, timeout_s: float = 60.0) -> FoveaClient:
        return FoveaClient(self.gateway, self.admin_key if key is None else key, timeout_s)

    @property
    def supervisor(self) -> Supervisor:
        return Supervisor(self.settings.data)


WEBHOOK_SECRET = "integration-webhook-secret"
"""The secret of the stack's webhook endpoints (issue 10)."""
PAD_DOOR = "pad-vault"
"""The stack's door whose policy requires presentation-attack detection."""
DENSE_DOOR = "dense-vault"
"""The stack's door whose PAD stage runs the 5-point and the dense (face mesh) checks together."""
CHALLENGE_DOOR = "challenge-gate"
"""The stack's door whose policy requires an active challenge (turn left or right; PAD off, so the
challenge's own check decides)."""
CLOSED_DOOR = "night-door"
"""A door whose opening hours are empty: always closed."""
STAFF_DOOR = "staff-door"
"""A door bound to the gallery ``STAFF_GALLERY``."""
STAFF_GALLERY = "staff-only"
SNAPSHOT_DOOR = "snap-door"
"""A door whose policy publishes a snapshot of every burst to MQTT (when the stack has a broker)."""
PASSIVE_CHECK_NAME = "door-pad"
"""The passive check ``tests/integration/test_door_passive.py`` trains (``classifier_door-pad``)."""
PASSIVE_DOOR = "passive-door"
"""The stack's door that requires PAD and hands what geometry cannot decide, and every live answer, to the passive
check ``trained:PASSIVE_CHECK_NAME`` (issue 21's office door)."""
CHALLENGE_TTL_S = 8.0
"""The test stack's challenge lifetime (FOVEA_FACES_CHALLENGE_TTL_S), short so expiry can be tested."""


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("stack")
    ports = dict(zip(PORT_FIELDS, free_ports(len(PORT_FIELDS)), strict=True))
    # Our own supervised Redis (append-only, in the data dir), so tests can stop and restart it.
    # The machine's Mosquitto when it answers, under a topic prefix of this run (still under fovea/#).
    mqtt_prefix = run_prefix() if broker_answers() else ""
    settings = StackSettings(data_dir=data, redis_url="", mqtt_url=BROKER if mqtt_prefix else "", **ports)
    if mqtt_prefix:
        os.environ["FOVEA_FACES_MQTT_TOPIC_PREFIX"] = mqtt_prefix
    # Short style-job limits. A job whose worker is killed is requeued by its stopped heartbeat (default
    # 15 s), not by the broker's visibility timeout, which stays at its default (600 s).
    os.environ.update(
        FOVEA_STYLE_SOFT_TIME_LIMIT_S="60",  # a Gatys test job takes 3-20 s; more on a loaded machine
        FOVEA_STYLE_HARD_TIME_LIMIT_S="75",
        FOVEA_STYLE_RETRY_BACKOFF_S="1",
    )
    # One door with presentation-attack detection required (issue 10); the others keep the default policy.
    policies = data / "door-policies.json"
    doors = {
        PAD_DOOR: {"pad": "require"},
        DENSE_DOOR: {"pad": "require", "pad_check": "dense"},
        CHALLENGE_DOOR: {"challenge": "require", "challenge_kinds": ["turn_left", "turn_right"]},
        CLOSED_DOOR: {"hours": {"tz": "Europe/Berlin", "open": []}},
        STAFF_DOOR: {"gallery": STAFF_GALLERY, "min_matching_frames": 1},
        SNAPSHOT_DOOR: {"snapshot": "always"},
        PASSIVE_DOOR: {
            "pad": "require",
            "pad_undetermined": "passive",
            "passive": "require",
            "passive_check": f"trained:{PASSIVE_CHECK_NAME}",
        },
    }
    policies.write_text(json.dumps({"doors": doors}))
    os.environ["FOVEA_FACES_DOOR_POLICIES_FILE"] = str(policies)
    os.environ["FOVEA_FACES_CHALLENGE_TTL_S"] = str(CHALLENGE_TTL_S)
    # Webhooks (issue 10): "receiver" gets every event, "silent" the enrolments; tests serve on their ports.
    webhook_port, silent_port = free_ports(2)
    (data / "webhook.secret").write_text(WEBHOOK_SECRET)
    endpoints = [
        {"name": "receiver", "url": f"http://127.0.0.1:{webhook_port}/hook", "secret_file": "webhook.secret"},
        {
            "name": "silent",
            "url": f"http://127.0.0.1:{silent_port}/hook",
            "secret": WEBHOOK_SECRET,
            "kinds": ["enrolled"],
            "max_attempts": 2,
        },
    ]
    (data / "webhooks.json").write_text(json.dumps({"endpoints": endpoints}))
    os.environ.update(
        FOVEA_FACES_WEBHOOKS_FILE=str(data / "webhooks.json"),
        FOVEA_FACES_WEBHOOK_TIMEOUT_S="1",
        FOVEA_FACES_WEBHOOK_BACKOFF_S="0.2",
        FOVEA_FACES_WEBHOOK_BACKOFF_MAX_S="1",
        FOVEA_FACES_WEBHOOK_MAX_ATTEMPTS="40",  # about 30 s of retries
        FOVEA_FACES_WEBHOOK_MAX_IN_FLIGHT="256",  # events of earlier tests retrying do not hold up later ones
        FOVEA_FACES_WEBHOOK_CLAIM_IDLE_S="10",
    )
    # Trained classifiers are loaded on every address "localhost" resolves to (one Triton here), as on every
    # replica behind a headless Service in Kubernetes.
    os.environ["FOVEA_CLASSIFY_TRITON_REPLICAS_DNS"] = "localhost"
    admin = add_key(data / "api-keys.json", "admin", ["*"])
    detect_only = add_key(data / "api-keys.json", "camera", ["detect"])
    try:
        up(settings)
    except StackError as exc:
        down(settings)
        pytest.fail(f"the stack did not start: {exc}")
    yield Stack(settings, admin, detect_only, webhook_port, silent_port, mqtt_prefix)
    if not down(settings):
        print(log_tail(settings, "supervisord"))
    if mqtt_prefix:
        clear_retained(mqtt_prefix)


def eventually(fn: Callable[[], T], timeout_s: float = 30.0, interval_s: float = 0.25) -> T:
    """Retry ``fn`` until it returns without raising (for recovery after a restart)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return fn()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval_s)


@pytest.fixture(scope="session")
def data_path(stack: Stack) -> Path:
    return stack.settings.data


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[FoveaClient]:
    """A client with the admin key, one per test module."""
    with stack.client() as c:
        yield c
