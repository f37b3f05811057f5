"""webhooks.py and events.py against a real ``redis-server`` (started for this module) and real HTTP
receivers in this process (aiohttp): watching with replay and resume, signed deliveries retried through a
receiver that is down for a while, exactly once per delivery id, pending deliveries picked up after a
restart, dead letters and their redrive. The whole stack's version is tests/integration/test_faces_events.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from ports import free_port

from fovea.common.errors import UpstreamUnavailable
from fovea.faces.config import FacesSettings
from fovea.faces.events.core.events import Event, EventFilter
from fovea.faces.events.core.webhooks import DELIVERY_HEADER, verify_webhook
from fovea.faces.events.stream import EVENTS, EventLog, EventTooOld
from fovea.faces.events.webhooks import (
    DEAD,
    DeadLetter,
    Endpoint,
    Redrive,
    WebhookDelivery,
    forget_gone_consumers,
    load_endpoints,
    redrive_key,
    redriving_key,
    url_origin,
)

SECRET = b"a-test-secret-of-some-length"
REDRIVING = redriving_key("busy")


@pytest.fixture
async def log(redis_url: str) -> AsyncIterator[EventLog]:
    events = EventLog(redis_url, maxlen=100, block_ms=100)
    await events.redis.flushdb()
    yield events
    await events.close()


class Receiver:
    """An HTTP endpoint that answers ``status`` (a timeout when None) and keeps what it accepted."""

    def __init__(self) -> None:
        self.status: int | None = 200
        self.accepted: list[tuple[str, dict[str, object]]] = []  # (delivery id, event)
        self.refused = 0
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.status is None:
            await asyncio.sleep(3)  # past the sender's timeout: no answer it waits for
        if self.status != 200:
            self.refused += 1
            return web.Response(status=self.status or 504)
        event = verify_webhook(SECRET, dict(request.headers), body, 60)
        self.accepted.append((request.headers[DELIVERY_HEADER], event))
        return web.Response(status=200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


def settings(redis_url: str, **overrides: object) -> FacesSettings:
    values: dict[str, object] = {
        "redis_url": redis_url,
        "webhook_timeout_s": 0.5,
        "webhook_backoff_s": 0.05,
        "webhook_backoff_max_s": 0.2,
        "webhook_max_attempts": 30,
        "webhook_claim_idle_s": 2.0,
        "webhook_consumer": "test-1",
    }
    return FacesSettings(**(values | overrides))  # type: ignore[arg-type]


async def stopped(task: asyncio.Task[object], timeout_s: float = 15.0) -> None:
    """Cancel ``task`` and wait for it to end: a task that goes on after being cancelled fails the test
    (within ``timeout_s``) instead of hanging the run."""
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=timeout_s)
    assert done, f"the task did not stop within {timeout_s:g}s of being cancelled"


async def until(check: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def door_event(door: str, kind: str = "access_granted") -> Event:
    return Event(kind, int(time.time() * 1000), door_id=door, gallery_id="g", decision="GRANT")


async def test_watch_replays_after_an_id_then_goes_live(log: EventLog) -> None:
    ids = await log.append([door_event("d1"), door_event("d2"), door_event("d1", "access_denied")])
    seen: list[Event] = []

    async def watch(wanted: EventFilter, after: str) -> None:
        async for event in log.watch(wanted, after):
            seen.append(event)

    task = asyncio.create_task(watch(EventFilter.of(door_ids=["d1"]), ids[0]))
    await until(lambda: len(seen) == 1)
    assert seen[0].event_id == ids[2] and seen[0].kind == "access_denied"  # replayed, filtered
    [live] = await log.append([door_event("d1")])
    await log.append([door_event("d3")])
    await until(lambda: len(seen) == 2)
    assert seen[1].event_id == live
    assert log.watchers == 1
    await stopped(task)
    assert log.watchers == 0

    everything = [e async for e in _first(log.watch(EventFilter(), "0"), 5)]
    assert [e.event_id for e in everything] == [*ids, live, everything[-1].event_id]


async def _first(events: AsyncIterator[Event], n: int) -> AsyncIterator[Event]:
    got = 0
    async for event in events:
        yield event
        got += 1
        if got == n:
            return


async def test_an_id_whose_followers_were_trimmed_is_out_of_range(log: EventLog) -> None:
    first, second = await log.append([door_event("d1"), door_event("d2")])
    await log.redis.xtrim(EVENTS, maxlen=0)  # as MAXLEN ~ does to old events
    [third] = await log.append([door_event("d3")])
    with pytest.raises(EventTooOld, match="were trimmed"):
        await anext(log.watch(EventFilter(), first))
    with pytest.raises(EventTooOld, match="never given out"):
        await anext(log.watch(EventFilter(), "99999999999999-0"))
    assert log.watchers == 0


async def test_emit_never_raises_when_redis_is_down() -> None:
    down = EventLog(f"redis://127.0.0.1:{free_port()}/0")
    down.emit([door_event("d1")])  # returns at once
    await asyncio.sleep(0)
    with pytest.raises(UpstreamUnavailable):
        await down.append([door_event("d1")])
    await down.close()


async def test_every_event_once_per_delivery_id_after_the_receiver_was_down(
    log: EventLog, redis_url: str
) -> None:
    receiver = Receiver()
    receiver.status = 503  # up, but failing
    await receiver.start()
    endpoint = Endpoint("ops", receiver.url, SECRET, EventFilter.of(kinds=["access_denied"]), 30)
    delivery = WebhookDelivery(settings(redis_url), [endpoint], log.redis)
    running = asyncio.create_task(delivery.run())
    await asyncio.sleep(0.3)  # the group is created: events from now on
    ids = await log.append(
        [door_event(f"d{i}", "access_denied" if i % 2 else "access_granted") for i in range(10)]
    )
    await until(lambda: receiver.refused >= 5)
    await receiver.stop()  # then down altogether for a while
    await asyncio.sleep(0.5)
    receiver.status = 200
    await receiver.start()
    await until(lambda: len(receiver.accepted) == 5)
    await asyncio.sleep(0.5)  # nothing more comes
    counts = Counter(d for d, _ in receiver.accepted)
    assert counts and set(counts.values()) == {1}
    assert sorted(counts) == sorted(f"{i}.ops" for i in ids[1::2])  # only the kinds it asked for
    assert await log.redis.xpending(EVENTS, "webhook:ops") == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }
    await stopped(running)
    await receiver.stop()


async def test_pending_deliveries_resume_after_a_restart(log: EventLog, redis_url: str) -> None:
    receiver = Receiver()
    receiver.status = 503
    await receiver.start()
    endpoint = Endpoint("ops", receiver.url, SECRET, EventFilter(), 30)
    first = asyncio.create_task(WebhookDelivery(settings(redis_url), [endpoint], log.redis).run())
    await asyncio.sleep(0.3)
    [event_id] = await log.append([door_event("d1")])
    await until(lambda: receiver.refused >= 1)
    await stopped(first)  # the service stops mid-retry: the event stays pending in Redis
    pending = await log.redis.xpending(EVENTS, "webhook:ops")
    assert pending["pending"] == 1
    receiver.status = 200
    again = asyncio.create_task(WebhookDelivery(settings(redis_url), [endpoint], log.redis).run())
    await until(lambda: len(receiver.accepted) == 1, timeout_s=5)
    assert receiver.accepted[0][0] == f"{event_id}.ops"
    await stopped(again)

    # Another consumer (a replica that died) leaves one pending: taken over after claim_idle_s.
    await log.redis.xgroup_setid(EVENTS, "webhook:ops", "$")
    [orphan] = await log.append([door_event("d2")])
    await log.redis.xreadgroup("webhook:ops", "dead-replica", {EVENTS: ">"})
    other = asyncio.create_task(WebhookDelivery(settings(redis_url), [endpoint], log.redis).run())
    await until(lambda: len(receiver.accepted) == 2, timeout_s=10)
    assert receiver.accepted[1][0] == f"{orphan}.ops"
    await stopped(other)
    await receiver.stop()


async def consumers(log: EventLog, group: str) -> dict[str, int]:
    """Each consumer of ``group`` and how many entries it has pending."""
    return {_name(c["name"]): int(c["pending"]) for c in await log.redis.xinfo_consumers(EVENTS, group)}


def _name(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def test_forget_gone_consumers_deletes_idle_ones_without_pending_entries(log: EventLog) -> None:
    group = "webhook:ops"
    await log.redis.xgroup_create(EVENTS, group, id="$", mkstream=True)
    await log.append([door_event("d1")])
    await log.redis.xreadgroup(group, "holder", {EVENTS: ">"})  # gone, but its entry is not taken over yet
    for name in ("gone-1", "gone-2", "gone-3", "me"):
        await log.redis.xgroup_createconsumer(EVENTS, group, name)
    await asyncio.sleep(0.3)
    await log.redis.xgroup_createconsumer(EVENTS, group, "fresh")  # idle ~0 s: a live replica
    # At most 2 a pass (XINFO lists them by name); never "me", "fresh" (0.3 s short of idle) or "holder".
    assert await forget_gone_consumers(log.redis, group, "me", idle_s=0.25, limit=2) == ["gone-1", "gone-2"]
    assert await forget_gone_consumers(log.redis, group, "me", idle_s=0.25, limit=2) == ["gone-3"]
    assert await forget_gone_consumers(log.redis, group, "me", idle_s=0.25, limit=2) == []
    assert await consumers(log, group) == {"fresh": 0, "holder": 1, "me": 0}
    with pytest.raises(ValueError, match="limit"):
        await forget_gone_consumers(log.redis, group, "me", idle_s=1.0, limit=0)


async def test_a_gone_replicas_name_leaves_the_group_once_its_delivery_was_taken_over(
    log: EventLog, redis_url: str
) -> None:
    """Before: every replica name that ever read stayed in the endpoint's consumer group for good (a new
    name per pod restart on Kubernetes)."""
    receiver = Receiver()
    await receiver.start()
    endpoint = Endpoint("ops", receiver.url, SECRET, EventFilter(), 30)
    group = "webhook:ops"
    await log.redis.xgroup_create(EVENTS, group, id="$", mkstream=True)
    [orphan] = await log.append([door_event("d1")])
    await log.redis.xreadgroup(group, "dead-replica", {EVENTS: ">"})  # read, never acknowledged
    await log.redis.xgroup_createconsumer(EVENTS, group, "long-gone")
    s = settings(redis_url, webhook_claim_idle_s=1.0, webhook_forget_consumer_idle_s=1.5)
    running = asyncio.create_task(WebhookDelivery(s, [endpoint], log.redis).run())
    await until(lambda: len(receiver.accepted) == 1, timeout_s=10)  # taken over after 1 s idle
    assert receiver.accepted[0][0] == f"{orphan}.ops"
    deadline = time.monotonic() + 10
    while (names := await consumers(log, group)) != {"test-1": 0}:
        assert time.monotonic() < deadline, f"the gone consumers are still in the group: {names}"
        await asyncio.sleep(0.1)
    await stopped(running)
    await receiver.stop()


async def test_a_receiver_that_never_answers_ends_in_the_dead_letters(log: EventLog, redis_url: str) -> None:
    receiver = Receiver()
    receiver.status = None  # never answers
    await receiver.start()
    endpoint = Endpoint("slow", receiver.url, SECRET, EventFilter(), 2)
    delivery = WebhookDelivery(settings(redis_url), [endpoint], log.redis)
    running = asyncio.create_task(delivery.run())
    await asyncio.sleep(0.3)
    [event_id] = await log.append([door_event("d1")])
    deadline = time.monotonic() + 10
    while not (letters := await delivery.dead.recent("", 10)):
        assert time.monotonic() < deadline, "no dead letter"
        await asyncio.sleep(0.1)
    [letter] = letters
    assert letter.delivery_id == f"{event_id}.slow" and letter.attempts == 2
    assert "no answer within 0.5s" in letter.last_error and letter.event.door_id == "d1"
    assert json.loads(await log.redis.lindex(DEAD, 0))["endpoint"] == "slow"
    assert await delivery.dead.recent("other", 10) == []

    receiver.status = 200  # the receiver is fixed: the dead letter is sent again, same delivery id
    assert await delivery.dead.redrive("slow", []) == Redrive(1, [])
    await until(lambda: len(receiver.accepted) == 1)
    assert receiver.accepted[0][0] == f"{event_id}.slow"
    assert await delivery.dead.recent("", 10) == []
    await stopped(running)
    await receiver.stop()


def test_the_endpoints_file(tmp_path: Path) -> None:
    (tmp_path / "ops.secret").write_text("0123456789abcdef0123\n")
    path = tmp_path / "webhooks.json"
    path.write_text(
        json.dumps(
            {
                "endpoints": [
                    {"name": "ops", "url": "https://ops.example/hook", "secret_file": "ops.secret"},
                    {
                        "name": "siem",
                        "url": "http://10.0.0.5:8080/in",
                        "secret": "another-secret-16",
                        "kinds": ["pad_failed"],
                        "max_attempts": 3,
                    },
                ]
            }
        )
    )
    ops, siem = load_endpoints(path, 8)
    assert ops.secret == b"0123456789abcdef0123" and ops.max_attempts == 8 and ops.wanted == EventFilter()
    assert siem.wanted.kinds == {"pad_failed"} and siem.max_attempts == 3
    assert "secret" not in repr(ops).replace("Endpoint", "")
    for bad, why in [
        ({"name": "x", "url": "ftp://h/", "secret": "s" * 16}, "http"),
        ({"name": "x", "url": "http://h/", "secret": "short"}, "16-1024 bytes"),
        ({"name": "x", "url": "http://h/"}, "one of secret"),
        ({"name": "x", "url": "http://h/", "secret": "s" * 16, "kinds": ["nope"]}, "unknown event kinds"),
        ({"name": "../x", "url": "http://h/", "secret": "s" * 16}, "pattern"),
        ({"name": "x", "url": "http://h/", "secret": "s" * 16, "extra": 1}, "extra"),
    ]:
        path.write_text(json.dumps({"endpoints": [bad]}))
        with pytest.raises(ValueError, match=why):
            load_endpoints(path, 8)
    path.write_text(
        json.dumps(
            {"endpoints": [{"name": f"e{i}", "url": "http://h/", "secret": "s" * 16} for i in range(17)]}
        )
    )
    with pytest.raises(ValueError, match="16"):
        load_endpoints(path, 8)


SECRET_URL = "https://user:pw-s3cr3t@Hooks.example:8443/hook/path-s3cr3t?token=query-s3cr3t#frag-s3cr3t"


def test_an_endpoints_url_shows_only_scheme_host_and_port(tmp_path: Path) -> None:
    """Before: Endpoint.__repr__ (logged at INFO at start) held the whole URL, path tokens and query too."""
    endpoint = Endpoint("ops", SECRET_URL, SECRET, EventFilter(), 1)
    assert repr(endpoint) == "Endpoint('ops', 'https://hooks.example:8443')"
    assert url_origin("http://10.0.0.5/in?token=x") == "http://10.0.0.5:80"
    assert url_origin("https://h.example/p") == "https://h.example:443"
    assert url_origin("http://[::1]:9000/p") == "http://[::1]:9000"
    path = tmp_path / "webhooks.json"  # nor does a refused file quote the URL or a secret
    for bad in (
        {"name": "x", "url": "ftp://h/path-s3cr3t", "secret": "s" * 16},
        {"name": "x", "url": SECRET_URL, "secret": ["list-s3cr3t"]},
    ):
        path.write_text(json.dumps({"endpoints": [bad]}))
        with pytest.raises(ValueError) as info:
            load_endpoints(path, 8)
        assert "s3cr3t" not in str(info.value), info.value


async def test_the_start_log_names_endpoints_without_their_urls_secrets(
    log: EventLog, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fovea.faces.events.webhooks")
    endpoint = Endpoint("ops", SECRET_URL, SECRET, EventFilter(), 1)
    running = asyncio.create_task(WebhookDelivery(settings(redis_url), [endpoint], log.redis).run())
    await until(lambda: "webhooks: ops" in caplog.text)
    await stopped(running)
    assert "webhooks: ops (https://hooks.example:8443) as consumer test-1" in caplog.text, caplog.text
    assert "s3cr3t" not in caplog.text, caplog.text


async def test_a_redrive_of_a_delivery_under_way_is_skipped_and_kept(log: EventLog, redis_url: str) -> None:
    """Before: a redriven dead letter whose delivery was already under way was popped from the queue and
    dropped (in neither list), and the redrive counted it as redriven."""
    receiver = Receiver()
    receiver.status = None  # never answers: a redrive stays under way for its 2 attempts (about 2 s)
    await receiver.start()
    endpoint = Endpoint("busy", receiver.url, SECRET, EventFilter(), 2)
    delivery = WebhookDelivery(
        settings(redis_url, webhook_backoff_s=1.0, webhook_backoff_max_s=1.0), [endpoint], log.redis
    )
    dead = delivery.dead

    def letter(delivery_id: str) -> DeadLetter:
        event = Event("access_denied", 1, door_id="d1", event_id=delivery_id.split(".")[0])
        return DeadLetter(delivery_id, "busy", event, 2, "HTTP 500", 1)

    # One delivery twice in the dead list (sent again after a replica stopped): redriven once.
    for d in ("1-0.busy", "1-0.busy", "2-0.busy"):
        await dead.add(letter(d))
    assert await dead.redrive("busy", []) == Redrive(2, ["1-0.busy"])
    assert [d.delivery_id for d in await dead.recent("", 10)] == ["1-0.busy"]
    assert await dead.redrive("busy", ["1-0.busy"]) == Redrive(0, ["1-0.busy"])  # still queued
    assert len(await log.redis.lrange(redrive_key("busy"), 0, -1)) == 2

    running = asyncio.create_task(delivery.run())
    deadline = time.monotonic() + 10
    while await log.redis.zcard(REDRIVING) < 2:  # both under way
        assert time.monotonic() < deadline, "the redrives did not start"
        await asyncio.sleep(0.02)
    assert await dead.redrive("busy", ["1-0.busy"]) == Redrive(0, ["1-0.busy"])  # under way: kept
    assert [d.delivery_id for d in await dead.recent("", 10)] == ["1-0.busy"]
    # One that reaches the queue while its delivery is under way goes back to the dead list, not lost.
    await log.redis.rpush(redrive_key("busy"), letter("2-0.busy").to_json())
    deadline = time.monotonic() + 10
    while len(await dead.recent("", 10)) < 2:
        assert time.monotonic() < deadline, "the redrive under way was dropped"
        await asyncio.sleep(0.05)
    assert [d.delivery_id for d in await dead.recent("", 10)][:2] == ["2-0.busy", "1-0.busy"]
    # Once over (dead again: the receiver never answers), each can be redriven again.
    deadline = time.monotonic() + 10
    while len(await dead.recent("", 10)) < 4:
        assert time.monotonic() < deadline, "the redrives did not end in the dead letters"
        await asyncio.sleep(0.05)
    assert not await log.redis.zcard(REDRIVING)
    await stopped(running)
    moved = await dead.redrive("busy", [])
    assert moved.moved == 2 and sorted(moved.skipped) == ["1-0.busy", "2-0.busy"], moved
    await receiver.stop()
