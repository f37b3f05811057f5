"""Signed webhooks: every event of the stream (``events.py``) POSTed to each configured endpoint that wants
its kind, with retries, then a dead-letter list.

It runs as a task in the faces service (``WebhookDelivery.run``) rather than a process of its own: the
service already holds the Redis connection and the settings, and a consumer group per endpoint spreads the
work over replicas and keeps what is not yet delivered in Redis, so nothing here needs a process to be
alone or to survive the service. The door never waits on it: it only reads what was already appended.

Per endpoint one consumer group ``webhook:<name>`` on the event stream (created at the endpoint's first
start, from then on). A replica reads new entries, delivers each (``max_in_flight`` at once), and
acknowledges it once it was answered 2xx or moved to the dead-letter list: an entry read but not
acknowledged when a replica stops stays pending in Redis. A replica restarted under the same consumer
name (``<host>:<port>`` by default) resumes its own pending entries at start; entries of a consumer that
went away are taken over after ``webhook_claim_idle_s``, and its name is deleted from the group once it owns
nothing and was idle for ``webhook_forget_consumer_idle_s`` (:func:`forget_gone_consumers`, in the same pass,
at most ``FORGET_PER_PASS`` names a pass). Delivery is at least once: the delivery id is the
same on every attempt, so a receiver drops the repeats (one is possible only when a replica stops between
a receiver's answer and the acknowledgement).

Attempts: a POST answered 2xx is delivered; 5xx, 408, 429, a timeout or a refused connection is retried
after ``backoff_s`` (doubling from ``webhook_backoff_s`` up to ``webhook_backoff_max_s``, jittered) until
``max_attempts``; any other answer (4xx: the receiver refuses it, 3xx: redirects are not followed) is final.
The dead-letter list (``fovea:faces:webhooks:dead``, newest first, at most ``webhook_dead_letters_max``)
keeps the event, the endpoint, the attempts and the last error; a redrive moves entries back to their
endpoint's queue (``fovea:faces:webhooks:redrive:<name>``), which is delivered like new events. A delivery
taken from the queue is marked as under way (``fovea:faces:webhooks:redriving:<name>``, until its attempts
must be over): a redrive of a delivery that is queued or under way leaves the dead letter where it is and
reports it as skipped, and one that reaches the queue all the same goes back to the dead list, never
dropped. A redrive under way when a replica stops is lost from the queue: it is in neither list; redrive it
again from the receiver's own log, or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from redis.exceptions import RedisError, ResponseError

from fovea.common.errors import NotFound, UpstreamUnavailable
from fovea.faces.config import FacesSettings
from fovea.faces.events.core.events import KINDS, Event, EventFilter
from fovea.faces.events.core.webhooks import backoff_s, delivery_id, retryable, signed_headers
from fovea.faces.events.stream import EVENTS, entry_text, pending_event
from fovea.faces.metrics import WEBHOOK_ATTEMPTS, WEBHOOK_DEAD_LETTERS, WEBHOOK_DURATION
from fovea.faces.recognition.store import PREFIX

log = logging.getLogger(__name__)

DEAD = f"{PREFIX}:webhooks:dead"
MAX_ENDPOINTS = 16
MAX_BODY_BYTES = 64 * 1024
MIN_SECRET_BYTES = 16
MAX_SECRET_BYTES = 1024


def redrive_key(endpoint: str) -> str:
    return f"{PREFIX}:webhooks:redrive:{endpoint}"


def redriving_key(endpoint: str) -> str:
    """A sorted set: the delivery ids of the endpoint's redrives being delivered, scored by the unix ms
    after which a delivery is surely over (its replica stopped, say)."""
    return f"{PREFIX}:webhooks:redriving:{endpoint}"


def group_name(endpoint: str) -> str:
    return f"webhook:{endpoint}"


# ---------------------------------------------------------------------------------------------- endpoints


def url_origin(url: str) -> str:
    """``scheme://host:port`` of an endpoint's URL, the only part of it that is logged or shown: a URL's
    user info, path and query can carry a secret (``https://h/hook/<token>``, ``?token=``)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: aiohttp refuses the URL, this only names it
        port = None
    return f"{parts.scheme}://{host}:{port or {'https': 443, 'http': 80}.get(parts.scheme, '?')}"


class EndpointSpec(BaseModel):
    """One endpoint of the webhooks file (its errors never quote what was given: a URL or a secret)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="Stable: names its queue")
    url: str = Field(max_length=2048)
    secret: str | None = Field(None, description="The HMAC key (or secret_file)")
    secret_file: Path | None = Field(None, description="File holding the key (relative: to the JSON file)")
    kinds: list[str] = Field(default_factory=list, max_length=len(KINDS), description="Empty = every kind")
    max_attempts: int | None = Field(None, ge=1, le=50, description="Overrides webhook_max_attempts")

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url {url_origin(url)!r} is not an http(s) URL with a host")
        return url

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, kinds: list[str]) -> list[str]:
        EventFilter.of(kinds=kinds)  # ValueError naming an unknown one
        return kinds

    @model_validator(mode="after")
    def _one_secret(self) -> EndpointSpec:
        if (self.secret is None) == (self.secret_file is None):
            raise ValueError(f"endpoint {self.name}: give one of secret and secret_file")
        return self


class WebhooksFile(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    endpoints: list[EndpointSpec] = Field(max_length=MAX_ENDPOINTS)

    @model_validator(mode="after")
    def _unique(self) -> WebhooksFile:
        names = [e.name for e in self.endpoints]
        if len(set(names)) != len(names):
            raise ValueError(f"endpoint names must be unique: {names}")
        return self


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    secret: bytes
    wanted: EventFilter
    max_attempts: int

    def __repr__(self) -> str:  # never the secret, nor the URL's user info, path or query
        return f"Endpoint({self.name!r}, {self.origin!r})"

    @property
    def origin(self) -> str:
        return url_origin(self.url)


def load_endpoints(path: Path, default_attempts: int) -> list[Endpoint]:
    """The endpoints of a webhooks file, secrets read; ``ValueError`` saying what is wrong."""
    try:
        spec = WebhooksFile.model_validate_json(path.read_text())
    except (OSError, ValidationError) as exc:
        raise ValueError(str(exc)) from exc
    out = []
    for e in spec.endpoints:
        if e.secret_file is not None:
            file = e.secret_file if e.secret_file.is_absolute() else path.parent / e.secret_file
            try:
                secret = file.read_text().strip().encode()
            except OSError as exc:
                raise ValueError(f"endpoint {e.name}: secret_file: {exc}") from exc
        else:
            secret = (e.secret or "").encode()
        if not MIN_SECRET_BYTES <= len(secret) <= MAX_SECRET_BYTES:
            raise ValueError(
                f"endpoint {e.name}: the secret must have {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes"
            )
        out.append(
            Endpoint(e.name, e.url, secret, EventFilter.of(kinds=e.kinds), e.max_attempts or default_attempts)
        )
    return out


def load_webhooks(settings: FacesSettings) -> list[Endpoint]:
    """The configured endpoints (none when ``webhooks_file`` is unset); a bad file stops the start."""
    if settings.webhooks_file is None:
        return []
    longest = settings.webhook_backoff_max_s + settings.webhook_timeout_s
    if settings.webhook_claim_idle_s <= longest:
        raise SystemExit(
            f"FOVEA_FACES_WEBHOOK_CLAIM_IDLE_S ({settings.webhook_claim_idle_s}) must be longer than the "
            f"longest wait plus one POST ({longest}): deliveries under way would be taken over"
        )
    try:
        return load_endpoints(settings.webhooks_file, settings.webhook_max_attempts)
    except ValueError as exc:
        raise SystemExit(f"FOVEA_FACES_WEBHOOKS_FILE {settings.webhooks_file}: {exc}") from exc


def consumer_name(settings: FacesSettings) -> str:
    if settings.webhook_consumer:
        return settings.webhook_consumer
    port = settings.port or os.getpid()  # port 0: no stable name
    return f"{socket.gethostname()}:{port}"


# ---------------------------------------------------------------------------------------------- dead letters


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class DeadLetter:
    delivery_id: str
    endpoint: str
    event: Event
    attempts: int
    last_error: str
    unix_ms: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeadLetter:
        data = json.loads(raw)
        return cls(
            str(data["delivery_id"]),
            str(data["endpoint"]),
            Event(**data["event"]),
            int(data["attempts"]),
            str(data["last_error"]),
            int(data["unix_ms"]),
        )


# A dead letter named for a redrive is skipped (kept in the dead list, its id returned) when its delivery is
# already queued or being delivered, or named twice (the list can hold one delivery twice: an event sent
# again after a replica stopped, or dead again after a redrive).
# KEYS: dead list, the endpoint's redrive queue, its redriving set.
# ARGV: endpoint, now (unix ms), then delivery ids (none = all of them).  Returns {moved, {skipped ids}}.
_REDRIVE = """
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[2])
local busy = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do busy[id] = true end
for _, raw in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do busy[cjson.decode(raw)['delivery_id']] = true end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local want = {}
for i = 3, #ARGV do want[ARGV[i]] = true end
local keep, moved, skipped = {}, 0, {}
for _, raw in ipairs(items) do
  local d = cjson.decode(raw)
  local id = d['delivery_id']
  if d['endpoint'] == ARGV[1] and (#ARGV == 2 or want[id]) and not busy[id] then
    redis.call('RPUSH', KEYS[2], raw)
    busy[id] = true
    moved = moved + 1
  else
    if d['endpoint'] == ARGV[1] and (#ARGV == 2 or want[id]) then skipped[#skipped + 1] = id end
    keep[#keep + 1] = raw
  end
end
if moved > 0 then
  redis.call('DEL', KEYS[1])
  for i = 1, #keep, 1000 do
    redis.call('RPUSH', KEYS[1], unpack(keep, i, math.min(i + 999, #keep)))
  end
end
return {moved, skipped}
"""

# Take up to ARGV[1] redrives from the queue and mark each being delivered until ARGV[2] (unix ms); one whose
# delivery is being delivered already (marked, not past its time ARGV[3]) goes back to the dead list
# (newest first, at most ARGV[4] kept) instead: never dropped.
# KEYS: the endpoint's redrive queue, its redriving set, the dead list.  Returns {{taken raws}, {skipped ids}}.
_TAKE = """
local raws = redis.call('LPOP', KEYS[1], ARGV[1])
local taken, skipped = {}, {}
if not raws then return {taken, skipped} end
for _, raw in ipairs(raws) do
  local id = cjson.decode(raw)['delivery_id']
  local until_ms = redis.call('ZSCORE', KEYS[2], id)
  if until_ms and tonumber(until_ms) > tonumber(ARGV[3]) then
    redis.call('LPUSH', KEYS[3], raw)
    skipped[#skipped + 1] = id
  else
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    taken[#taken + 1] = raw
  end
end
if #skipped > 0 then redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1) end
return {taken, skipped}
"""


@dataclass(frozen=True)
class Redrive:
    """What a redrive did: ``moved`` dead letters back to the queue; ``skipped`` (delivery ids) left in
    the dead list because that delivery is already queued or being delivered."""

    moved: int
    skipped: list[str]


class DeadLetters:
    """The dead-letter list: listed and redriven through the RPCs (any replica), added to by deliveries."""

    def __init__(self, redis: aioredis.Redis, max_kept: int, endpoints: list[str]) -> None:
        self.redis = redis
        self.max_kept = max_kept
        self.endpoints = endpoints
        self._redrive = redis.register_script(_REDRIVE)
        self._take = redis.register_script(_TAKE)

    async def add(self, letter: DeadLetter) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(DEAD, letter.to_json())
            pipe.ltrim(DEAD, 0, self.max_kept - 1)
            await pipe.execute()

    async def recent(self, endpoint: str, limit: int) -> list[DeadLetter]:
        """Newest first; one endpoint's or all."""
        out: list[DeadLetter] = []
        try:
            start = 0
            while len(out) < limit:
                raws = await self.redis.lrange(DEAD, start, start + 499)
                if not raws:
                    break
                start += len(raws)
                for raw in raws:
                    letter = DeadLetter.from_json(raw)
                    if not endpoint or letter.endpoint == endpoint:
                        out.append(letter)
        except RedisError as exc:
            raise UpstreamUnavailable(f"Redis is unavailable: {exc}") from exc
        return out[:limit]

    async def redrive(self, endpoint: str, delivery_ids: list[str]) -> Redrive:
        """Move the endpoint's dead letters (those named, or all) back to its queue, but for those whose
        delivery is already queued or being delivered (or named twice): they stay in the dead list,
        reported as skipped."""
        if endpoint not in self.endpoints:
            raise NotFound(
                f"no webhook endpoint {endpoint!r} (configured: {', '.join(self.endpoints) or 'none'})"
            )
        keys = [DEAD, redrive_key(endpoint), redriving_key(endpoint)]
        try:
            moved, skipped = await self._redrive(keys=keys, args=[endpoint, _now_ms(), *delivery_ids])
        except RedisError as exc:
            raise UpstreamUnavailable(f"Redis is unavailable: {exc}") from exc
        return Redrive(int(moved), [entry_text(i) for i in skipped])

    async def take(self, endpoint: str, count: int, busy_ms: int) -> list[DeadLetter]:
        """Up to ``count`` redrives of the endpoint's queue, each marked as being delivered for ``busy_ms``
        (until :meth:`done`); one already being delivered goes back to the dead list (logged)."""
        keys = [redrive_key(endpoint), redriving_key(endpoint), DEAD]
        now = _now_ms()
        taken, skipped = await self._take(keys=keys, args=[count, now + busy_ms, now, self.max_kept])
        for delivery in skipped:
            log.warning(
                "webhook %s: redrive of %s skipped, that delivery is under way; kept in the dead letters",
                endpoint,
                entry_text(delivery),
            )
        return [DeadLetter.from_json(raw) for raw in taken]

    async def done(self, endpoint: str, delivery_id: str) -> None:
        """A redrive's delivery is over (delivered, or dead again)."""
        await self.redis.zrem(redriving_key(endpoint), delivery_id)


# Forget consumers of a group that are gone: idle for at least ARGV[3] ms and owning no pending entry
# (deleting a consumer drops its pending entries: one that still has some is left until they are taken
# over), never ARGV[2] (the caller), at most ARGV[4] of them. Checked and deleted in one script, so an entry
# read between the check and the delete cannot be lost. 'idle' is the time since the consumer last tried to
# read (Redis >= 7.2) or last read something (before: a live replica with nothing to read for that long is
# deleted too, and added again by its next read that returns an entry; nothing is lost, it owns nothing).
# KEYS: the event stream.  ARGV: group, own consumer name, idle ms, limit.  Returns the names deleted.
_FORGET_GONE = """
local forgotten = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  if #forgotten >= tonumber(ARGV[4]) then break end
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] ~= ARGV[2] and tonumber(f['pending']) == 0 and tonumber(f['idle']) >= tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    forgotten[#forgotten + 1] = f['name']
  end
end
return forgotten
"""
FORGET_PER_PASS = 100
"""Consumers deleted from a group per claim pass at most (a pass every few seconds: a backlog of names goes
within minutes)."""


async def forget_gone_consumers(
    redis: aioredis.Redis, group: str, own: str, idle_s: float, limit: int = FORGET_PER_PASS
) -> list[str]:
    """Delete from ``group`` (of the event stream) up to ``limit`` consumers other than ``own`` that have been
    idle for ``idle_s`` seconds or more and own no pending entry: the names of replicas that are gone, whose
    deliveries were taken over. Returns their names. ``ValueError`` for ``idle_s`` < 0 or ``limit`` < 1."""
    if idle_s < 0 or limit < 1:
        raise ValueError(f"need idle_s >= 0 and limit >= 1, got {idle_s} and {limit}")
    names = await redis.eval(_FORGET_GONE, 1, EVENTS, group, own, int(idle_s * 1000), limit)
    return [entry_text(n) for n in names]


# ---------------------------------------------------------------------------------------------- delivery


class EndpointWorker:
    """Delivers the event stream to one endpoint (see the module docstring)."""

    def __init__(
        self,
        settings: FacesSettings,
        endpoint: Endpoint,
        redis: aioredis.Redis,
        dead: DeadLetters,
        session: aiohttp.ClientSession,
        consumer: str,
        block_ms: int = 1000,
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.redis = redis
        self.dead = dead
        self.session = session
        self.consumer = consumer
        self.group = group_name(endpoint.name)
        self.block_ms = block_ms
        self.in_flight: dict[str, asyncio.Task[None]] = {}  # by stream id or delivery id (redrives)

    async def run(self) -> None:
        """Until cancelled; a Redis failure waits a second and starts over (pending entries are kept)."""
        try:
            while True:
                try:
                    await self._run_once()
                except RedisError as exc:
                    _stop_if_cancelled()
                    log.warning("webhook %s: Redis failed (%s); retrying in 1s", self.endpoint.name, exc)
                    await asyncio.sleep(1.0)
                except Exception:  # a bug must not end the deliveries for good
                    _stop_if_cancelled()
                    log.exception("webhook %s: delivery loop failed; restarting in 1s", self.endpoint.name)
                    await asyncio.sleep(1.0)
        finally:
            for task in self.in_flight.values():
                task.cancel()
            await asyncio.gather(*self.in_flight.values(), return_exceptions=True)

    async def _run_once(self) -> None:
        try:
            await self.redis.xgroup_create(EVENTS, self.group, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        await self._resume_own()
        next_claim = 0.0
        while True:
            free = self.settings.webhook_max_in_flight - len(self.in_flight)
            if free <= 0:
                await asyncio.wait(list(self.in_flight.values()), return_when=asyncio.FIRST_COMPLETED)
                continue
            if time.monotonic() >= next_claim:
                free -= await self._claim_abandoned(free)
                next_claim = time.monotonic() + min(30.0, self.settings.webhook_claim_idle_s / 4)
            free -= await self._take_redrives(free)
            if free <= 0:
                continue
            reply: Any = await self.redis.xreadgroup(
                self.group, self.consumer, {EVENTS: ">"}, count=free, block=self.block_ms
            )
            for _, entries in reply or []:
                for entry_id, raw in entries:
                    self._start(entry_text(entry_id), pending_event(entry_id, raw))

    async def _resume_own(self) -> None:
        """Entries this consumer read before a restart and never acknowledged."""
        last = "0"
        while True:
            reply: Any = await self.redis.xreadgroup(self.group, self.consumer, {EVENTS: last}, count=100)
            entries = [e for _, es in (reply or []) for e in es]
            if not entries:
                return
            for entry_id, raw in entries:
                stream_id = entry_text(entry_id)
                if stream_id not in self.in_flight:
                    self._start(stream_id, pending_event(entry_id, raw))
            last = entry_text(entries[-1][0])

    async def _claim_abandoned(self, count: int) -> int:
        """Take over entries another consumer has left pending for ``webhook_claim_idle_s`` (how many
        started), then delete consumers that are gone (:func:`forget_gone_consumers`)."""
        reply = await self.redis.xautoclaim(
            EVENTS,
            self.group,
            self.consumer,
            min_idle_time=int(self.settings.webhook_claim_idle_s * 1000),
            start_id="0-0",
            count=count,
        )
        claimed = reply[1] if len(reply) > 1 else []
        started = 0
        for entry_id, raw in claimed:
            stream_id = entry_text(entry_id)
            if stream_id not in self.in_flight:
                log.info("webhook %s: took over pending event %s", self.endpoint.name, stream_id)
                self._start(stream_id, pending_event(entry_id, raw))
                started += 1
        # The names of replicas that are gone, once their entries were taken over (here or by another).
        gone = await forget_gone_consumers(
            self.redis, self.group, self.consumer, self.settings.webhook_forget_consumer_idle_s
        )
        if gone:
            log.info(
                "webhook %s: deleted consumer(s) idle for %gs with nothing pending: %s",
                self.endpoint.name,
                self.settings.webhook_forget_consumer_idle_s,
                ", ".join(gone),
            )
        return started

    async def _take_redrives(self, count: int) -> int:
        """Start the queued redrives (at most ``count``); how many started. Each is marked in Redis as being
        delivered, for as long as its attempts can take, so a redrive of the same delivery meanwhile is
        skipped (RPC) or put back in the dead list (here), never dropped."""
        s, ep = self.settings, self.endpoint
        busy_ms = int(ep.max_attempts * (s.webhook_timeout_s + s.webhook_backoff_max_s) * 1000) + 60_000
        started = 0
        for letter in await self.dead.take(ep.name, count, busy_ms):
            if letter.delivery_id in self.in_flight:  # cannot be while it is marked; kept all the same
                log.warning("webhook %s: redrive of %s is under way; kept", ep.name, letter.delivery_id)
                await self.dead.add(letter)
                continue
            self._track(letter.delivery_id, self._redeliver(letter))
            started += 1
        return started

    async def _redeliver(self, letter: DeadLetter) -> None:
        try:
            await self._deliver(letter.event, None)
        finally:
            with contextlib.suppress(RedisError):  # else its mark expires
                await self.dead.done(self.endpoint.name, letter.delivery_id)

    def _start(self, stream_id: str, event: Event | None) -> None:
        if event is None or not self.endpoint.wanted.matches(
            event
        ):  # trimmed from the stream while pending: nothing left to deliver
            self._track(stream_id, self._ack(stream_id))
        else:
            self._track(stream_id, self._deliver(event, stream_id))

    def _track(self, key: str, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(self._logged(work))
        self.in_flight[key] = task
        task.add_done_callback(lambda _: self.in_flight.pop(key, None))

    async def _logged(self, work: Any) -> None:
        try:
            await work
        except RedisError as exc:  # not acknowledged: still pending, resumed after a restart or taken over
            log.warning("webhook %s: Redis failed during a delivery: %s", self.endpoint.name, exc)

    async def _ack(self, stream_id: str) -> None:
        await self.redis.xack(EVENTS, self.group, stream_id)

    async def _deliver(self, event: Event, stream_id: str | None) -> None:
        """POST ``event`` until it is answered 2xx or the attempts run out (then: dead letter); then ack."""
        ep = self.endpoint
        delivery = delivery_id(event.event_id, ep.name)
        body = event.body()
        attempts, error = 0, ""
        if len(body) > MAX_BODY_BYTES:
            error = f"body of {len(body)} bytes is over {MAX_BODY_BYTES}"
        else:
            for attempt in range(1, ep.max_attempts + 1):
                if attempt > 1:
                    s = self.settings
                    await asyncio.sleep(
                        backoff_s(attempt - 1, s.webhook_backoff_s, s.webhook_backoff_max_s, random.random())
                    )
                if stream_id is not None:  # still ours: not idle, not to be taken over
                    with contextlib.suppress(RedisError):
                        await self.redis.xclaim(
                            EVENTS, self.group, self.consumer, 0, [stream_id], justid=True
                        )
                _stop_if_cancelled()
                attempts = attempt
                status, error = await self._post(body, delivery, event)
                _stop_if_cancelled()
                if 200 <= status < 300:
                    WEBHOOK_ATTEMPTS.labels(ep.name, "delivered").inc()
                    error = ""
                    break
                final = status != 0 and not retryable(status)
                WEBHOOK_ATTEMPTS.labels(ep.name, "failed" if final else "retry").inc()
                if final:
                    break
        if error:
            log.warning("webhook %s: delivery %s failed %d time(s): %s", ep.name, delivery, attempts, error)
            await self.dead.add(
                DeadLetter(delivery, ep.name, event, attempts, error, int(time.time() * 1000))
            )
            WEBHOOK_DEAD_LETTERS.labels(ep.name).inc()
        if stream_id is not None:
            await self._ack(stream_id)

    async def _post(self, body: bytes, delivery: str, event: Event) -> tuple[int, str]:
        """The answer's status (0: none) and, when not 2xx, what went wrong."""
        headers = signed_headers(
            self.endpoint.secret,
            body,
            delivery=delivery,
            kind=event.kind,
            event_id=event.event_id,
            now_s=time.time(),
        )
        start = time.perf_counter()
        try:
            async with self.session.post(
                self.endpoint.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.settings.webhook_timeout_s),
            ) as resp:
                return resp.status, f"HTTP {resp.status}"
        except TimeoutError:
            return 0, f"no answer within {self.settings.webhook_timeout_s:g}s"
        except aiohttp.ClientError as exc:  # the text of some (InvalidURL) holds the URL: not its secrets
            return 0, f"{type(exc).__name__}: {exc}".replace(self.endpoint.url, self.endpoint.origin)[:300]
        finally:
            WEBHOOK_DURATION.observe(time.perf_counter() - start)


def _stop_if_cancelled() -> None:
    """Raise ``CancelledError`` when this task has been asked to stop.

    A cancellation that lands while aiohttp's or redis' own timeout fires can surface as their error
    (``TimeoutError``, ``ClientError``, ``RedisError``; Python 3.11's ``asyncio.timeout`` has that race too),
    which the retry loops would take for a failed attempt and go on: the service's stop, and the test that
    cancels a worker, would then wait out every retry. ``Task.cancelling()`` still counts the request."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class WebhookDelivery:
    """One worker per endpoint, over one Redis client and one HTTP session."""

    def __init__(self, settings: FacesSettings, endpoints: list[Endpoint], redis: aioredis.Redis) -> None:
        self.settings = settings
        self.endpoints = endpoints
        self.redis = redis
        self.dead = DeadLetters(redis, settings.webhook_dead_letters_max, [e.name for e in endpoints])
        self.consumer = consumer_name(settings)

    @property
    def dead_letters(self) -> DeadLetters | None:
        """What the dead-letter RPCs use: None when no endpoint is configured (they answer
        FAILED_PRECONDITION then, rather than an empty list that reads as "all delivered")."""
        return self.dead if self.endpoints else None

    async def run(self) -> None:
        """Until cancelled."""
        if not self.endpoints:
            return
        log.info(
            "webhooks: %s as consumer %s",
            ", ".join(f"{e.name} ({e.origin})" for e in self.endpoints),
            self.consumer,
        )
        connector = aiohttp.TCPConnector(limit=MAX_ENDPOINTS * self.settings.webhook_max_in_flight)
        async with aiohttp.ClientSession(connector=connector) as session:
            workers = [
                EndpointWorker(self.settings, e, self.redis, self.dead, session, self.consumer)
                for e in self.endpoints
            ]
            await asyncio.gather(*(w.run() for w in workers))


__all__ = [
    "DEAD",
    "DeadLetter",
    "DeadLetters",
    "Endpoint",
    "Redrive",
    "EndpointWorker",
    "WebhookDelivery",
    "consumer_name",
    "load_endpoints",
    "load_webhooks",
    "url_origin",
]
