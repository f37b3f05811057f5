"""The calls in flight through the gateway, by API key: a key's streams are counted and capped, and every
call ends when its key stops being valid, or when its client goes away.

A key is checked when a call starts (``auth.py``); a stream lives on after that, so it is looked at again:

- before each message the gateway passes on, either way (:meth:`OpenCalls.check`): the keys file is looked
  at first (one ``stat``, reloaded when it changed), so nothing the backend sends after ``fovea keys revoke``
  returned reaches the caller, whatever the reload interval;
- every ``keys_reload_interval_s`` (:meth:`OpenCalls.watch`), all of them: a stream with no traffic (a
  WatchEvents on a quiet door) ends within that interval too.

A call ended so has its backend call cancelled, and answers UNAUTHENTICATED (revoked, expired) or
PERMISSION_DENIED (its scope was taken away) saying so. The backend call is also cancelled the moment the
gateway's own call ends for any reason (:meth:`OpenCall.finish`, run by grpc when the call terminates): a
client that vanished (HTTP/2 reset, connection lost, keepalive unanswered) holds nothing behind the gateway,
whatever the state of the handler's generator (which grpc leaves for the garbage collector when the
cancellation lands while it is suspended at a ``yield``: the leak issue 24 found).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from prometheus_client import Counter, Gauge

from fovea.gateway.auth import ApiKey, Authenticator, AuthError

log = logging.getLogger(__name__)

OPEN_STREAMS = Gauge("fovea_gateway_open_streams", "Streaming calls open through the gateway")
CALLS_ENDED = Counter(
    "fovea_gateway_calls_ended_total",
    "Calls the gateway ended because their API key stopped being valid, by status code",
    ["code"],
)
STREAMS_REFUSED = Counter(
    "fovea_gateway_streams_refused_total", "Streams refused because their key holds its most already"
)


@dataclass(eq=False)
class OpenCall:
    """One call through the gateway: its key, its backend call once made, and why the gateway ended it."""

    key: ApiKey
    method: str
    stream: bool
    on_finish: Callable[[OpenCall], None] = field(repr=False, default=lambda _call: None)
    upstream: Any = None  # the backend's grpc.aio call
    ended: AuthError | None = None
    finished: bool = False

    def attach(self, upstream: Any) -> None:
        """The backend call of this one (cancelled at once when the call was ended before it was made)."""
        self.upstream = upstream
        if self.ended is not None or self.finished:
            upstream.cancel()

    def end(self, why: AuthError) -> None:
        """End the call for ``why``: its backend call is cancelled, and the handler raises ``why``."""
        if self.ended is None:
            self.ended = why
            CALLS_ENDED.labels(why.code.name).inc()
        if self.upstream is not None:
            self.upstream.cancel()

    def finish(self, _context: Any = None) -> None:
        """The call is over (however it ended): cancel its backend call and free its slot. Idempotent."""
        if self.finished:
            return
        self.finished = True
        if self.upstream is not None:
            self.upstream.cancel()  # a no-op for a call that ended
        self.on_finish(self)


class OpenCalls:
    """Every open call of the gateway, by key: at most ``max_streams_per_key`` streams a key."""

    def __init__(self, auth: Authenticator, max_streams_per_key: int) -> None:
        if max_streams_per_key < 1:
            raise ValueError(f"max_streams_per_key must be >= 1, got {max_streams_per_key}")
        self.auth = auth
        self.max_streams_per_key = max_streams_per_key
        self._calls: dict[bytes, set[OpenCall]] = {}

    def __len__(self) -> int:
        return sum(len(calls) for calls in self._calls.values())

    def streams_of(self, key: ApiKey) -> int:
        return sum(call.stream for call in self._calls.get(key.sha256, ()))

    def open(self, key: ApiKey, method: str, *, stream: bool, context: grpc.aio.ServicerContext) -> OpenCall:
        """Register a call of ``key`` (freed when grpc ends ``context``'s call, whatever ends it).

        Raises:
            AuthError: RESOURCE_EXHAUSTED for a stream beyond the key's ``max_streams_per_key``.
        """
        if stream and self.streams_of(key) >= self.max_streams_per_key:
            STREAMS_REFUSED.inc()
            raise AuthError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"API key {key.name!r} has {self.max_streams_per_key} streams open, the most one key may hold "
                "(the gateway's FOVEA_GATEWAY_MAX_STREAMS_PER_KEY): end one of them, or retry when one ends "
                "(a stream whose client went away is freed within seconds)",
            )
        call = OpenCall(key, method, stream, on_finish=self._forget)
        self._calls.setdefault(key.sha256, set()).add(call)
        if stream:
            OPEN_STREAMS.inc()
        context.add_done_callback(call.finish)
        return call

    def _forget(self, call: OpenCall) -> None:
        calls = self._calls.get(call.key.sha256)
        if calls is None or call not in calls:
            return
        calls.discard(call)
        if not calls:
            del self._calls[call.key.sha256]
        if call.stream:
            OPEN_STREAMS.dec()

    def check(self, call: OpenCall) -> None:
        """Before a message is passed on: the keys file as it is now (reloaded when it changed) still lets
        ``call``'s key call its method.

        Raises:
            AuthError: why not (the call is ended: its backend call cancelled).
        """
        self.auth.reload_if_changed()
        if call.ended is None and (why := self.auth.recheck(call.key, call.method)) is not None:
            call.end(why)
        if call.ended is not None:
            raise call.ended

    def sweep(self) -> int:
        """End every open call whose key is no longer valid for it; returns how many were ended."""
        self.auth.reload_if_changed()
        ended = 0
        for calls in list(self._calls.values()):
            for call in list(calls):
                if call.ended is None and (why := self.auth.recheck(call.key, call.method)) is not None:
                    log.info("ending %s of key %r: %s", call.method, call.key.name, why)
                    call.end(why)
                    ended += 1
        return ended

    async def watch(self, interval_s: float) -> None:
        """:meth:`sweep` every ``interval_s`` until cancelled."""
        while True:
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - the loop must outlive any one failure
                log.exception("checking the keys of open calls failed")
            await asyncio.sleep(interval_s)


__all__ = ["OPEN_STREAMS", "OpenCall", "OpenCalls"]
