"""The event stream in Redis (``fovea:faces:events``, trimmed to about ``events_maxlen`` entries): events are
appended without anyone waiting on them, read back by WatchEvents (replay after an id, then live) and by the
webhook delivery (``webhooks.py``, through consumer groups).

Appending never holds up or fails the request that made the event: :meth:`EventLog.emit` puts the events
on a bounded queue and returns; one writer task appends what is queued, in order, a pipeline at a time (one
connection however many requests emit at once). A write that fails (Redis down) or a full queue drops the
events, logged and counted (``fovea_faces_events_dropped_total``). A door decision is only told once its audit record is written
(``door.py``): while Redis is down the door already answers DENY, and records kept in memory are told when
they are written.

A door whose policy asks for snapshots (``snapshot``) hands one frame of the burst along with the record's
events: the writer stores it as a JPEG under ``snapshot_key(audit id)`` for ``snapshot_ttl_s``, in the same
pipeline and before the events, so the MQTT publisher (``mqtt.py``) finds it when it reads the decision. The
event itself never carries it; without MQTT (``snapshots`` off) the frame is not kept at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fovea.common import redis_client
from fovea.common.errors import FoveaError, ResourceExhausted, UpstreamUnavailable
from fovea.faces.events.core.events import Event, EventFilter, door_events, id_key
from fovea.faces.events.core.mqtt import snapshot_jpeg
from fovea.faces.metrics import EVENTS_DROPPED, EVENTS_PUBLISHED
from fovea.faces.recognition.store import PREFIX
from fovea.faces.v1 import faces_pb2

log = logging.getLogger(__name__)

EVENTS = f"{PREFIX}:events"
READ_COUNT = 500  # entries per XRANGE / XREAD
LIVE_READ_RETRIES = 4
"""A watch reads again this many times in a row (0.2 .. 1.6 s apart) when Redis drops the connection."""
T = TypeVar("T")
DECISIONS = {"GRANT": faces_pb2.GRANT, "DENY": faces_pb2.DENY}


def snapshot_key(audit_id: str) -> str:
    """Where a door decision's snapshot (JPEG) waits for the MQTT publisher."""
    return f"{PREFIX}:snapshots:{audit_id}"


@dataclass(frozen=True)
class Snapshot:
    """A frame to keep beside the events queued after it (see the module docstring)."""

    audit_id: str
    frame: bytes  # as the door received it (JPEG, PNG, WebP)


class EventTooOld(FoveaError):
    """The events after the id asked for were trimmed from the stream (or the id was never given out)."""

    code = grpc.StatusCode.OUT_OF_RANGE


def entry_text(value: Any) -> str:
    """A Redis reply's bytes (or str) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _event(entry_id: Any, raw: Any) -> Event:
    return Event.from_fields(
        entry_text(entry_id), {entry_text(k): entry_text(v) for k, v in (raw or {}).items()}
    )


def pending_event(entry_id: Any, raw: Any) -> Event | None:
    """The event of a consumer group's pending entry; None for one trimmed while pending (no fields)."""
    return _event(entry_id, raw) if raw else None


def event_proto(event: Event) -> faces_pb2.Event:
    return faces_pb2.Event(
        event_id=event.event_id,
        kind=event.kind,
        unix_ms=event.unix_ms,
        door_id=event.door_id,
        gallery_id=event.gallery_id,
        identity_id=event.identity_id,
        decision=DECISIONS.get(event.decision, faces_pb2.ACCESS_DECISION_UNSPECIFIED),
        reason=event.reason,
        reason_kind=event.reason_kind,
        audit_id=event.audit_id,
        request_id=event.request_id,
    )


class EventLog:
    def __init__(
        self,
        url: str,
        *,
        maxlen: int = 100_000,
        max_watchers: int = 64,
        max_pending: int = 1000,
        block_ms: int = 1000,
        snapshots: bool = False,
        snapshot_ttl_s: float = 300.0,
        snapshot_max_side: int = 640,
    ) -> None:
        """``max_pending``: events queued for the writer (more are dropped and counted); ``block_ms``: how
        long one read of a live watch waits for news (under the client's socket timeout); ``snapshots``:
        keep the frames doors hand over (only the MQTT publisher reads them) for ``snapshot_ttl_s``."""
        self.redis = redis_client.connect(url, socket_timeout=5)
        self.maxlen = maxlen
        self.max_watchers = max_watchers
        self.max_pending = max_pending
        self.block_ms = block_ms
        self.watchers = 0
        self.snapshots = snapshots
        self.snapshot_ttl_s = snapshot_ttl_s
        self.snapshot_max_side = snapshot_max_side
        self._queue: asyncio.Queue[Event | Snapshot] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(TimeoutError):  # what was emitted just before a stop gets its chance
                async with asyncio.timeout(2.0):
                    await self._queue.join()
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        await self.redis.aclose()

    # ------------------------------------------------------------------------------------------ writing
    async def append(self, events: Sequence[Event], snapshots: Sequence[Snapshot] = ()) -> list[str]:
        """Append ``events`` in order, after storing ``snapshots`` (frames that do not decode are left out);
        the events' stream ids. ``UpstreamUnavailable`` when Redis fails."""
        jpegs = []
        for snap in snapshots:
            try:
                jpegs.append(
                    (
                        snap.audit_id,
                        await asyncio.to_thread(snapshot_jpeg, snap.frame, self.snapshot_max_side),
                    )
                )
            except ValueError as exc:
                log.info("no snapshot of audit record %s: %s", snap.audit_id, exc)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for audit_id, jpeg in jpegs:
                    pipe.set(snapshot_key(audit_id), jpeg, px=int(self.snapshot_ttl_s * 1000))
                for event in events:
                    pipe.xadd(EVENTS, event.fields(), maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
                ids = (await pipe.execute())[len(jpegs) :]
        except RedisError as exc:
            raise UpstreamUnavailable(f"Redis is unavailable: {exc}") from exc
        for event in events:
            EVENTS_PUBLISHED.labels(event.kind).inc()
        return [entry_text(i) for i in ids]

    def emit(self, events: Sequence[Event], snapshot: Snapshot | None = None) -> None:
        """Append ``events`` in the background (after storing ``snapshot``, when snapshots are kept):
        returns at once, never raises (call it in the loop)."""
        if not events:
            return
        if self._queue.qsize() + len(events) > self.max_pending:
            EVENTS_DROPPED.inc(len(events))
            log.warning("%d event(s) dropped: %d already wait for Redis", len(events), self._queue.qsize())
            return
        if snapshot is not None and self.snapshots:
            self._queue.put_nowait(snapshot)
        for event in events:
            self._queue.put_nowait(event)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    async def _write(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < READ_COUNT:
                batch.append(self._queue.get_nowait())
            events = [e for e in batch if isinstance(e, Event)]
            try:
                await self.append(events, [s for s in batch if isinstance(s, Snapshot)])
            except FoveaError as exc:
                EVENTS_DROPPED.inc(len(events))
                log.warning(
                    "%d event(s) not written (%s): %s", len(events), exc, [e.kind for e in events[:5]]
                )
            finally:
                for _ in batch:
                    self._queue.task_done()

    def audited(self, fields: Mapping[str, str], audit_id: str, frame: bytes | None = None) -> None:
        """Tell the events of a door audit record once it is written (see ``core.events.door_events``);
        ``frame``: the burst's snapshot, where the door's policy asks for one."""
        snapshot = None if frame is None else Snapshot(audit_id, frame)
        self.emit(door_events(fields, audit_id), snapshot)

    # ------------------------------------------------------------------------------------------ reading
    async def _start(self, after: str) -> str:
        """The id to read after: the newest one for live-only (``after`` empty), else ``after`` once it is
        known that nothing after it was trimmed (``EventTooOld`` otherwise)."""
        try:
            info = await self.redis.xinfo_stream(EVENTS)
        except ResponseError:  # no stream yet: nothing was ever told
            info = {}
        except RedisError as exc:
            raise UpstreamUnavailable(f"Redis is unavailable: {exc}") from exc
        newest = entry_text(info.get("last-generated-id", b"0-0"))
        if not after:
            return newest
        if after == "0":
            return "0-0"
        if id_key(after) > id_key(newest):
            raise EventTooOld(f"event {after} was never given out (the newest is {newest})")
        # Trimming removes the oldest entries: something after ``after`` is gone when ``after`` is older
        # than the oldest entry kept and entries were removed (Redis >= 7 counts them; older: assume so).
        # When ``after`` is itself the last entry trimmed nothing is lost, but that cannot be told apart.
        first = info.get("first-entry")
        added, length = info.get("entries-added"), info.get("length", 0)
        removed = added is None or int(added) > int(length)
        lost = removed and (first is None or id_key(after) < id_key(entry_text(first[0])))
        if lost:
            oldest = entry_text(first[0]) if first else newest
            raise EventTooOld(
                f"events after {after} were trimmed (the stream keeps about {self.maxlen}; the oldest kept "
                f"is {oldest}): resume with after_event_id 0 for every kept event, or empty for live ones"
            )
        return after

    async def watch(self, wanted: EventFilter, after: str = "") -> AsyncIterator[Event]:
        """Events matching ``wanted``: those after ``after`` that are kept (``0``: all of them; empty: none),
        then each new one as it comes, until cancelled. ``ResourceExhausted`` beyond ``max_watchers``;
        ``UpstreamUnavailable`` when Redis fails (resume from the last id seen)."""
        if self.watchers >= self.max_watchers:
            raise ResourceExhausted(
                f"{self.max_watchers} event watches are open on this replica already, the most it keeps "
                "(FOVEA_FACES_MAX_EVENT_WATCHERS): retry in a few seconds, when one ends (resume from the last "
                "event id seen with after_event_id)"
            )
        self.watchers += 1
        try:
            last = await _read_again(lambda: self._start(after))
            try:
                while True:  # replay
                    entries: Any = await _read_again(
                        functools.partial(self.redis.xrange, EVENTS, f"({last}", "+", count=READ_COUNT)
                    )
                    if not entries:
                        break
                    for entry_id, raw in entries:
                        event = _event(entry_id, raw)
                        if wanted.matches(event):
                            yield event
                    last = entry_text(entries[-1][0])
                while True:  # live
                    reply: Any = await _read_again(
                        functools.partial(
                            self.redis.xread, {EVENTS: last}, count=READ_COUNT, block=self.block_ms
                        )
                    )
                    for _, news in reply or []:
                        for entry_id, raw in news:
                            event = _event(entry_id, raw)
                            if wanted.matches(event):
                                yield event
                            last = event.event_id
            except RedisError as exc:
                raise UpstreamUnavailable(f"Redis is unavailable: {exc}") from exc
        finally:
            self.watchers -= 1


async def _read_again(read: Callable[[], Awaitable[T]]) -> T:
    """``read()``, again up to :data:`LIVE_READ_RETRIES` times when Redis drops the connection: a pooled
    connection Redis closed (a restart, an idle timeout) fails the next command once; a watch reads again
    from the last id it saw, on a new connection, so nothing is skipped or repeated."""
    for attempt in range(LIVE_READ_RETRIES + 1):
        try:
            return await read()
        except (RedisConnectionError, RedisTimeoutError):
            if attempt == LIVE_READ_RETRIES:
                raise
            await asyncio.sleep(0.1 * 2 ** (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["EVENTS", "EventLog", "EventTooOld", "Snapshot", "event_proto", "snapshot_key"]
