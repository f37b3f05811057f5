"""mqtt.py against a real ``redis-server`` and a real Mosquitto (started for this module on a free port): events
published once, in order, with Home Assistant discovery and availability; snapshots; one replica at a time, the
next taking over what the first left pending; the last will when a publisher's process is killed. The whole
stack's version is tests/integration/test_faces_mqtt.py."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import pytest
from PIL import Image
from ports import free_port

from fovea.faces.access.core.access import DoorPolicies
from fovea.faces.config import FacesSettings
from fovea.faces.events.core.events import Event
from fovea.faces.events.mqtt import GROUP, LEASE, MqttPublisher, load_broker
from fovea.faces.events.stream import EVENTS, EventLog, snapshot_key


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Mosquitto of this module alone: its URL."""
    exe = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if exe is None:
        pytest.skip("mosquitto is not installed (Debian: apt-get install mosquitto)")
    port = free_port()
    conf = tmp_path_factory.mktemp("mosquitto") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with contextlib.closing(__import__("socket").create_connection(("127.0.0.1", port), 0.2)):
                break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    yield f"mqtt://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


class Inbox:
    """A subscriber: every message under ``topics``, as (topic, payload, retain)."""

    def __init__(self, url: str, *topics: str) -> None:
        b = load_broker(FacesSettings(mqtt_url=url))
        assert b is not None
        self.client = aiomqtt.Client(b.host, b.port)
        self.topics = topics
        self.messages: list[tuple[str, bytes, bool]] = []
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Inbox:
        await self.client.__aenter__()
        for topic in self.topics:
            await self.client.subscribe(topic, qos=1)
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for m in self.client.messages:
            self.messages.append((str(m.topic), bytes(m.payload), bool(m.retain)))  # type: ignore[arg-type]

    async def __aexit__(self, *exc: object) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.client.__aexit__(None, None, None)

    async def wait(
        self, topic: str, count: int = 1, timeout_s: float = 10.0
    ) -> list[tuple[str, bytes, bool]]:
        deadline = time.monotonic() + timeout_s
        while True:
            got = [m for m in self.messages if m[0] == topic]
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{count} message(s) on {topic} expected, got {got}; all: {self.messages}"
                )
            await asyncio.sleep(0.05)


def settings(url: str, prefix: str, **more: object) -> FacesSettings:
    return FacesSettings(
        mqtt_url=url,
        mqtt_topic_prefix=prefix,
        mqtt_discovery_prefix=f"{prefix}-ha",
        mqtt_lease_s=1.5,
        mqtt_keepalive_s=5,
        **more,  # type: ignore[arg-type]
    )


@pytest.fixture
async def log(redis_url: str) -> AsyncIterator[EventLog]:
    events = EventLog(redis_url, maxlen=1000, block_ms=100, snapshots=True, snapshot_max_side=64)
    await events.redis.flushdb()
    yield events
    await events.close()


@contextlib.asynccontextmanager
async def running(publisher: MqttPublisher) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(publisher.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def door_audit(decision: str, kind: str, door: str = "front", identity: str = "alice") -> dict[str, str]:
    return {
        "unix_ms": str(int(time.time() * 1000)),
        "door_id": door,
        "gallery_id": "staff",
        "claimed_identity_id": identity,
        "decision": decision,
        "reason": kind,
        "kind": kind,
        "request_id": "r",
        "pad_verdict": "NOT_CHECKED",
    }


async def test_events_are_published_in_order_with_discovery_and_availability(
    broker: str, log: EventLog
) -> None:
    s = settings(broker, "t1")
    policies = DoorPolicies.from_dict({"doors": {"lobby": {"snapshot": "always"}}})
    publisher = MqttPublisher(s, load_broker(s), log.redis, policies, "replica-a")
    async with Inbox(broker, "t1/#", "t1-ha/#") as inbox, running(publisher):
        assert (await inbox.wait("t1/status"))[0][1:] == (b"online", False)  # live, not a replay
        # the policy file's doors are discovered before any event (a camera where snapshots are on)
        lobby = await inbox.wait("t1-ha/camera/t1_lobby_snapshot/config")
        assert json.loads(lobby[0][1])["topic"] == "t1/doors/lobby/snapshot"
        await inbox.wait("t1-ha/sensor/t1_lobby_decision/config")
        await asyncio.sleep(0.3)  # the group is made at "$": events from now on
        log.audited(door_audit("GRANT", "match"), "a-1")
        log.audited(door_audit("DENY", "no_match", identity="mallory"), "a-2")
        log.emit([Event("enrolled", 1, gallery_id="staff", identity_id="bob")])
        decisions = await inbox.wait("t1/doors/front/decision", 2)
        assert [json.loads(m[1])["audit_id"] for m in decisions] == ["a-1", "a-2"]  # in order
        person = await inbox.wait("t1/doors/front/person")
        assert json.loads(person[0][1])["identity_id"] == "alice" and len(person) == 1  # DENY: no person
        assert json.loads((await inbox.wait("t1/doors/front/unknown_face"))[0][1])["audit_id"] == "a-2"
        assert json.loads((await inbox.wait("t1/galleries/staff/enrolled"))[0][1])["identity_id"] == "bob"
        # a door that is not in the policy file is discovered with its first event, before it
        front = [m[0] for m in inbox.messages if "front" in m[0]]
        assert front.index("t1-ha/sensor/t1_front_decision/config") < front.index("t1/doors/front/decision")
        # nothing is left pending
        await asyncio.sleep(0.2)
        assert (await log.redis.xpending(EVENTS, GROUP))["pending"] == 0
    # retained: a subscriber that comes later reads the door's last state and the discovery
    async with Inbox(broker, "t1/doors/front/decision", "t1-ha/sensor/t1_front_person/config") as late:
        (last,) = await late.wait("t1/doors/front/decision")
        assert json.loads(last[1])["audit_id"] == "a-2" and last[2]
        await late.wait("t1-ha/sensor/t1_front_person/config")
    # the service stopped: offline (retained)
    async with Inbox(broker, "t1/status") as after:
        assert (await after.wait("t1/status"))[0][1] == b"offline"


async def test_a_snapshot_only_where_the_policy_asks_and_it_is_deleted(broker: str, log: EventLog) -> None:
    s = settings(broker, "t2")
    policies = DoorPolicies.from_dict({"doors": {"lobby": {"snapshot": "deny"}}})
    publisher = MqttPublisher(s, load_broker(s), log.redis, policies, "replica-a")
    png = io.BytesIO()
    Image.new("RGB", (320, 200), (0, 90, 200)).save(png, format="PNG")
    async with Inbox(broker, "t2/#") as inbox, running(publisher):
        await inbox.wait("t2/status")
        await asyncio.sleep(0.3)
        log.audited(door_audit("DENY", "no_match", door="lobby"), "a-9", frame=png.getvalue())
        log.audited(door_audit("GRANT", "match", door="front"), "a-10")  # no frame handed over
        (shot,) = await inbox.wait("t2/doors/lobby/snapshot")
        with Image.open(io.BytesIO(shot[1])) as img:
            assert img.format == "JPEG" and img.size == (64, 40)
        await inbox.wait("t2/doors/front/decision")
        assert not [m for m in inbox.messages if m[0] == "t2/doors/front/snapshot"]
        assert await log.redis.exists(snapshot_key("a-9")) == 0


async def test_snapshots_are_not_kept_without_mqtt(redis_url: str) -> None:
    events = EventLog(redis_url, snapshots=False)
    try:
        events.audited(door_audit("DENY", "no_match"), "a-11", frame=b"frame")
        await asyncio.sleep(0.3)
        assert await events.redis.exists(snapshot_key("a-11")) == 0
    finally:
        await events.close()


async def test_one_replica_publishes_and_the_next_takes_over_what_it_left(broker: str, log: EventLog) -> None:
    s = settings(broker, "t3")
    a = MqttPublisher(s, load_broker(s), log.redis, DoorPolicies(), "replica-a")
    b = MqttPublisher(s, load_broker(s), log.redis, DoorPolicies(), "replica-b")
    async with Inbox(broker, "t3/#") as inbox:
        async with running(a), running(b):
            await inbox.wait("t3/status")
            await asyncio.sleep(0.3)
            assert await log.redis.get(LEASE) == b"replica-a"  # b waits
            log.audited(door_audit("GRANT", "match"), "b-1")
            await inbox.wait("t3/doors/front/decision")
            assert not [m for m in inbox.messages if m[0] == "t3/status" and m[1] == b"offline"]
        # both stopped; replica-a had read an entry and stopped before publishing it: pending under its name
        await log.redis.xadd(EVENTS, Event("enrolled", 2, gallery_id="staff", identity_id="carol").fields())
        await log.redis.xreadgroup(GROUP, "replica-a", {EVENTS: ">"}, count=10)
        assert (await log.redis.xpending(EVENTS, GROUP))["pending"] == 1
        async with running(b):
            log.audited(door_audit("DENY", "no_match"), "b-2")
            # replica-b takes the lease, says online again, publishes the new decision, and the entry
            # replica-a left once it is a lease old
            decisions = await inbox.wait("t3/doors/front/decision", 2)
            assert [json.loads(m[1])["audit_id"] for m in decisions] == ["b-1", "b-2"]
            await inbox.wait("t3/galleries/staff/enrolled")
            assert await log.redis.get(LEASE) == b"replica-b"
            statuses = [m[1] for m in inbox.messages if m[0] == "t3/status"]
            assert statuses == [b"online", b"offline", b"online"]
            await asyncio.sleep(0.2)
            assert (await log.redis.xpending(EVENTS, GROUP))["pending"] == 0


async def test_the_broker_tells_offline_when_the_publisher_process_dies(
    broker: str, redis_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "publisher.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio
            from fovea.faces.access.core.access import DoorPolicies
            from fovea.faces.config import FacesSettings
            from fovea.faces.events.mqtt import MqttPublisher, load_broker
            from fovea.faces.events.stream import EventLog

            async def main():
                s = FacesSettings(mqtt_url={broker!r}, mqtt_topic_prefix="t4", mqtt_keepalive_s=5)
                log = EventLog({redis_url!r})
                await log.redis.delete("fovea:faces:mqtt:lease")
                await MqttPublisher(s, load_broker(s), log.redis, DoorPolicies(), "doomed").run()

            asyncio.run(main())
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOVEA_")}
    proc = subprocess.Popen([sys.executable, str(script)], env=env)  # noqa: ASYNC220 - killed, never awaited
    try:
        async with Inbox(broker, "t4/status") as inbox:
            assert (await inbox.wait("t4/status", timeout_s=20))[-1][1] == b"online"
            proc.send_signal(signal.SIGKILL)  # no clean disconnect: the broker sends the will
            started = time.monotonic()
            got = await inbox.wait("t4/status", 2, timeout_s=15)
            assert got[-1][1] == b"offline"
            assert time.monotonic() - started < 9  # 1.5 keepalives of 5 s
    finally:
        proc.kill()
        proc.wait()
