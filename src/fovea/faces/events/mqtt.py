"""MQTT: the event stream published to a broker, with Home Assistant discovery (the topics and payloads are
``core/mqtt.py``'s).

Another consumer of the event stream, as the webhooks are (``webhooks.py``): one consumer group, ``mqtt``, so
each event is published once across the faces replicas, and what was read but not acknowledged stays pending
in Redis. Unlike webhook deliveries a door's messages must keep their order (the retained ``decision`` and
``person`` are the door's state), so one replica publishes at a time: the one holding the lease
(``fovea:faces:mqtt:lease``, ``mqtt_lease_s``, renewed every third of it). The others wait and take it over when
the holder is gone; the new holder first publishes what the old one had read but not acknowledged, then goes on
with new events. An entry is acknowledged once the broker acknowledged its messages (QoS 1): at least once.

Availability: the holder connects with a last will, ``<prefix>/status`` = ``offline`` (retained), says
``online`` (retained) once connected and again every ``mqtt_availability_interval_s``, and ``offline`` itself
when the service stops. Every discovered entity names that topic, so Home Assistant shows the doors
unavailable while no faces replica publishes (the will fires after 1.5 keepalives).

Discovery: retained config messages for every door of the policy file and the default policy's snapshot
setting once connected, and for any other door the first time the holder publishes one of its events.

A snapshot (a door policy's ``snapshot``) is a JPEG the event writer stored under ``snapshot_key(audit id)``
(``stream.py``); it is published to ``<prefix>/doors/<door>/snapshot`` after the decision and deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import ssl
import time
from typing import Any

import aiomqtt
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from fovea.faces.access.core.access import DoorPolicies
from fovea.faces.config import FacesSettings
from fovea.faces.events.core.events import ACCESS_DENIED, ACCESS_GRANTED, Event
from fovea.faces.events.core.mqtt import (
    OFFLINE,
    ONLINE,
    Broker,
    Message,
    Topics,
    discovery_messages,
    event_messages,
    parse_broker,
    snapshot_message,
)
from fovea.faces.events.stream import EVENTS, entry_text, pending_event, snapshot_key
from fovea.faces.events.webhooks import forget_gone_consumers
from fovea.faces.metrics import MQTT_CONNECTED, MQTT_EVENTS
from fovea.faces.recognition.core.records import GALLERY_ID
from fovea.faces.recognition.store import PREFIX

log = logging.getLogger(__name__)

LEASE = f"{PREFIX}:mqtt:lease"
GROUP = "mqtt"
READ_COUNT = 100
# Renew / release the lease only while this replica holds it. KEYS: the lease. ARGV: holder, ttl ms.
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class LeaseLost(Exception):
    """Another replica holds the lease now (this one stalled past it): stop publishing."""


def tls_context(broker: Broker, ca_file: Any = None) -> ssl.SSLContext | None:
    """TLS for an ``mqtts://`` broker: the system's CAs, or those of ``ca_file``; None for ``mqtt://``."""
    if not broker.tls:
        return None
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def load_broker(settings: FacesSettings) -> Broker | None:
    """The broker of the settings (None: MQTT off); the password file, when set, is read here: a file that
    cannot be read stops the start."""
    if not settings.mqtt_url:
        return None
    broker = parse_broker(settings.mqtt_url)
    if settings.mqtt_password_file is not None:
        try:
            password = settings.mqtt_password_file.read_text().strip()
        except OSError as exc:
            raise SystemExit(f"FOVEA_FACES_MQTT_PASSWORD_FILE: {exc}") from exc
        broker = Broker(broker.host, broker.port, broker.tls, broker.username, password)
    if broker.tls:
        try:
            tls_context(broker, settings.mqtt_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise SystemExit(f"FOVEA_FACES_MQTT_CA_FILE {settings.mqtt_ca_file}: {exc}") from exc
    return broker


class MqttPublisher:
    """Publishes the event stream to ``broker`` while this replica holds the lease (module docstring)."""

    def __init__(
        self,
        settings: FacesSettings,
        broker: Broker | None,
        redis: aioredis.Redis,
        policies: DoorPolicies,
        consumer: str,
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.redis = redis
        self.policies = policies
        self.consumer = consumer
        self.topics = Topics(settings.mqtt_topic_prefix, settings.mqtt_discovery_prefix)
        self.lease_ms = int(settings.mqtt_lease_s * 1000)
        self.announced: set[str] = set()
        self._renew_at = 0.0
        try:
            self.version = importlib.metadata.version("fovea")
        except importlib.metadata.PackageNotFoundError:
            self.version = ""
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def run(self) -> None:
        """Until cancelled: wait for the lease, publish while holding it; a broker or Redis failure waits
        (1 s, doubling to 30 s) and starts over, nothing acknowledged is lost."""
        if self.broker is None:
            return
        log.info("MQTT: events to %s under %s/ as %s", self.broker.origin, self.topics.prefix, self.consumer)
        backoff = 1.0
        while True:
            started = time.monotonic()
            try:
                await self._wait_for_lease()
                started = time.monotonic()
                try:
                    await self._publish_while_holding()
                finally:
                    MQTT_CONNECTED.set(0)
                    with contextlib.suppress(RedisError):
                        await self._release(keys=[LEASE], args=[self.consumer])
            except asyncio.CancelledError:
                raise
            except LeaseLost:
                log.warning("MQTT: the lease went to another replica; standing by")
                continue
            except (aiomqtt.MqttError, RedisError, OSError) as exc:
                if time.monotonic() - started > 60:
                    backoff = 1.0
                log.warning("MQTT: %s (%s); again in %.0fs", exc, type(exc).__name__, backoff)
            except Exception:  # a bug must not end the publishing for good
                log.exception("MQTT: publisher failed; again in %.0fs", backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def _wait_for_lease(self) -> None:
        while not await self.redis.set(LEASE, self.consumer, nx=True, px=self.lease_ms):
            if (
                entry_text(await self.redis.get(LEASE) or b"") == self.consumer
            ):  # ours still (a quick restart)
                return
            await asyncio.sleep(self.settings.mqtt_lease_s / 3)

    def _client(self) -> aiomqtt.Client:
        broker = self.broker
        if broker is None:
            raise RuntimeError("MQTT is off")
        return aiomqtt.Client(
            broker.host,
            broker.port,
            username=broker.username,
            password=broker.password,
            identifier=f"fovea-faces-{self.consumer}"[:128],
            will=aiomqtt.Will(self.topics.status, OFFLINE, qos=1, retain=True),
            keepalive=self.settings.mqtt_keepalive_s,
            tls_context=tls_context(broker, self.settings.mqtt_ca_file),
            timeout=10.0,
        )

    async def _publish_while_holding(self) -> None:
        async with self._client() as client:
            try:
                await self._hold(client)
            except asyncio.CancelledError:  # the service stops: say so (a clean disconnect sends no will)
                with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                    await client.publish(self.topics.status, OFFLINE, qos=1, retain=True, timeout=1.0)
                raise

    async def _hold(self, client: aiomqtt.Client) -> None:
        await self._send(client, Message(self.topics.status, ONLINE, retain=True))
        MQTT_CONNECTED.set(1)
        log.info("MQTT: connected to %s, publishing", self.broker.origin if self.broker else "?")
        self.announced.clear()
        for door in self.policies.doors:
            await self._announce(client, door)
        try:
            await self.redis.xgroup_create(EVENTS, GROUP, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        with contextlib.suppress(RedisError):
            await forget_gone_consumers(
                self.redis, GROUP, self.consumer, self.settings.webhook_forget_consumer_idle_s
            )
        self._renew_at = time.monotonic() + self.settings.mqtt_lease_s / 3
        online_at = time.monotonic() + self.settings.mqtt_availability_interval_s
        await self._pending(client, "0")  # this consumer's own, from before a restart
        await self._claim(client)  # the previous holder's
        claim_at = time.monotonic() + self.settings.mqtt_lease_s
        block_ms = max(50, min(1000, self.lease_ms // 3))
        while True:
            await self._keep_lease()
            if time.monotonic() >= claim_at:  # what a holder stopped mid-way left, once it is a lease old
                await self._claim(client)
                claim_at = time.monotonic() + self.settings.mqtt_lease_s
            if time.monotonic() >= online_at:
                await self._send(client, Message(self.topics.status, ONLINE, retain=True))
                online_at = time.monotonic() + self.settings.mqtt_availability_interval_s
            reply: Any = await self.redis.xreadgroup(
                GROUP, self.consumer, {EVENTS: ">"}, count=READ_COUNT, block=block_ms
            )
            for _, entries in reply or []:
                for entry_id, raw in entries:
                    await self._publish(client, entry_text(entry_id), pending_event(entry_id, raw))

    async def _keep_lease(self) -> None:
        """Renew the lease when a third of it has passed; ``LeaseLost`` when another replica holds it."""
        now = time.monotonic()
        if now < self._renew_at:
            return
        if not await self._renew(keys=[LEASE], args=[self.consumer, self.lease_ms]):
            raise LeaseLost
        self._renew_at = now + self.settings.mqtt_lease_s / 3

    async def _pending(self, client: aiomqtt.Client, after: str) -> None:
        while True:
            reply: Any = await self.redis.xreadgroup(GROUP, self.consumer, {EVENTS: after}, count=READ_COUNT)
            entries = [e for _, es in (reply or []) for e in es]
            if not entries:
                return
            for entry_id, raw in entries:
                await self._publish(client, entry_text(entry_id), pending_event(entry_id, raw))
            after = entry_text(entries[-1][0])

    async def _claim(self, client: aiomqtt.Client) -> None:
        """Publish the entries another consumer read and left pending for a lease or more (a holder that
        is gone), oldest first."""
        start = "0-0"
        while True:
            reply = await self.redis.xautoclaim(
                EVENTS, GROUP, self.consumer, min_idle_time=self.lease_ms, start_id=start, count=READ_COUNT
            )
            for entry_id, raw in reply[1] if len(reply) > 1 else []:
                log.info("MQTT: publishing event %s left pending by another replica", entry_text(entry_id))
                await self._publish(client, entry_text(entry_id), pending_event(entry_id, raw))
            start = entry_text(reply[0])
            if start == "0-0":
                return

    async def _publish(self, client: aiomqtt.Client, entry_id: str, event: Event | None) -> None:
        """Publish one entry's messages (discovery first for a door not yet announced, the snapshot after
        the decision), then acknowledge it."""
        await self._keep_lease()
        if event is not None:
            if event.door_id and GALLERY_ID.fullmatch(event.door_id):
                await self._announce(client, event.door_id)
            for message in event_messages(event, self.topics):
                await self._send(client, message)
            if event.kind in (ACCESS_GRANTED, ACCESS_DENIED) and event.audit_id:
                jpeg: Any = await self.redis.getdel(snapshot_key(event.audit_id))
                if jpeg and GALLERY_ID.fullmatch(event.door_id):
                    await self._send(client, snapshot_message(event.door_id, bytes(jpeg), self.topics))
            MQTT_EVENTS.labels(event.kind).inc()
        await self.redis.xack(EVENTS, GROUP, entry_id)

    async def _announce(self, client: aiomqtt.Client, door_id: str) -> None:
        if door_id in self.announced:
            return
        snapshot = self.policies.for_door(door_id).snapshot != "off"
        for message in discovery_messages(door_id, self.topics, snapshot=snapshot, version=self.version):
            await self._send(client, message)
        self.announced.add(door_id)

    async def _send(self, client: aiomqtt.Client, message: Message) -> None:
        await client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)


__all__ = ["GROUP", "LEASE", "LeaseLost", "MqttPublisher", "load_broker", "tls_context"]
