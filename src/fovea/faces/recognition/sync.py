"""This replica's in-memory copy of every gallery, kept in step with Redis through the change stream.

Start (and after any Redis failure): read the stream position and change counter, load every gallery and its
templates, then follow the stream from that position (``XREAD BLOCK``); an ``add`` change names template ids,
whose records are read then (a template deleted since is skipped). Changes are idempotent (adding a present
template or removing an absent one changes nothing; changes of a gallery's old uid are ignored), so changes
already visible in the loaded data can be replayed safely. A change whose number is not the next one
means the stream was trimmed past this replica: it loads everything again.

A write through this replica waits (:meth:`GallerySync.wait_for`) until the follower has applied the change it
made, so the caller reads its own write; other replicas see it as soon as their ``XREAD`` returns.
While the follower is not connected, :attr:`GallerySync.in_sync` is False and searches are refused
(a deleted identity must never match).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from fovea.common import redis_client
from fovea.common.errors import FoveaError, NotFound, UpstreamUnavailable
from fovea.faces.metrics import GALLERIES, SYNC_RELOADS, TEMPLATES
from fovea.faces.recognition.core.matching import GalleryIndex
from fovea.faces.recognition.store import CHANGES, Change, FaceStore, GalleryInfo

log = logging.getLogger(__name__)

BLOCK_MS = 1000


@dataclass
class CachedGallery:
    info: GalleryInfo
    index: GalleryIndex = field(default_factory=GalleryIndex)


class GallerySync:
    def __init__(self, store: FaceStore, *, dim: int = 128) -> None:
        self.store = store
        self.dim = dim
        self.galleries: dict[str, CachedGallery] = {}
        self.in_sync = False
        self.last_error = "not loaded yet"
        self._seq = 0
        self._last_id = "0-0"
        self._applied = asyncio.Condition()
        # XREAD BLOCK needs a socket timeout longer than the block time.
        self._reader = redis_client.connect(store.url, socket_timeout=BLOCK_MS / 1000 + 5)

    async def close(self) -> None:
        await self._reader.aclose()

    # ------------------------------------------------------------------------------------------ reads
    def gallery(self, gallery_id: str) -> CachedGallery:
        """The gallery as this replica has it; ``UpstreamUnavailable`` while out of sync with Redis."""
        if not self.in_sync:
            raise UpstreamUnavailable(f"gallery data is not in sync with Redis ({self.last_error})")
        cached = self.galleries.get(gallery_id)
        if cached is None:
            raise NotFound(f"gallery {gallery_id} does not exist")
        return cached

    async def wait_for(self, seq: int, timeout_s: float) -> bool:
        """Wait until the change numbered ``seq`` has been applied here; False after ``timeout_s``."""
        async with self._applied:
            try:
                async with asyncio.timeout(timeout_s):
                    await self._applied.wait_for(lambda: self._seq >= seq)
            except TimeoutError:
                log.warning(
                    "change %d not applied within %.1fs (applied up to %d)", seq, timeout_s, self._seq
                )
                return False
        return True

    # ------------------------------------------------------------------------------------------ follow
    async def run(self, retry_s: float = 0.5) -> None:
        """Load, then follow the change stream; on any failure mark out of sync and start over."""
        while True:
            try:
                await self._load()
                await self._follow()
            except asyncio.CancelledError:
                raise
            except (RedisError, FoveaError, OSError) as exc:
                self._lost(str(exc))
            except Exception as exc:  # noqa: BLE001 - a bad change must not stop the follower for good
                log.exception("gallery sync failed")
                self._lost(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(retry_s)

    def _lost(self, why: str) -> None:
        if self.in_sync:
            log.warning("gallery sync lost: %s", why)
        self.in_sync = False
        self.last_error = f"Redis is unavailable: {why}" if "Redis" not in why else why

    async def _load(self) -> None:
        start = time.perf_counter()
        last_id, seq = await self.store.position()  # first: later changes are replayed over the snapshot
        galleries: dict[str, CachedGallery] = {}
        for info in await self.store.list_galleries():
            galleries[info.gallery_id] = await self._load_gallery(info)
        async with self._applied:
            self.galleries, self._last_id, self._seq = galleries, last_id, seq
            self._applied.notify_all()
        self.in_sync = True
        self.last_error = ""
        self._update_metrics()
        SYNC_RELOADS.inc()
        log.info(
            "loaded %d galleries, %d templates in %.2fs (changes up to #%d)",
            len(galleries),
            sum(len(g.index) for g in galleries.values()),
            time.perf_counter() - start,
            seq,
        )

    async def _load_gallery(self, info: GalleryInfo) -> CachedGallery:
        cached = CachedGallery(info, GalleryIndex(self.dim))
        async for batch in self.store.templates(info):
            items = [(r.template_id, r.identity_id, r.embedding) for r in batch]
            await asyncio.to_thread(cached.index.add_many, items)
        return cached

    async def _follow(self) -> None:
        while True:
            reply: Any = await self._reader.xread({CHANGES: self._last_id}, count=500, block=BLOCK_MS)
            streams = reply.items() if isinstance(reply, dict) else (reply or [])  # RESP3 | RESP2
            for _stream, entries in streams:
                for stream_id, fields in entries:
                    change = Change.from_entry(stream_id, fields)
                    if change.seq != self._seq + 1:
                        raise UpstreamUnavailable(
                            f"change #{change.seq} follows #{self._seq}: changes were trimmed, reloading"
                        )
                    await self._apply(change)
                    async with self._applied:
                        self._last_id, self._seq = change.stream_id, change.seq
                        self._applied.notify_all()
            self._update_metrics()

    async def _apply(self, change: Change) -> None:
        cached = self.galleries.get(change.gallery_id)
        current = cached is not None and cached.info.uid == change.uid
        match change.op:
            case "put_gallery":
                if change.gallery is not None and not current:
                    self.galleries[change.gallery_id] = CachedGallery(change.gallery, GalleryIndex(self.dim))
            case "del_gallery":
                if current:
                    del self.galleries[change.gallery_id]
            case "add" if current and cached is not None:
                records = await self.store.fetch_templates(cached.info, change.template_ids)
                items = [(r.template_id, r.identity_id, r.embedding) for r in records]
                await asyncio.to_thread(cached.index.add_many, items)
            case "del_template" if current and cached is not None:
                await asyncio.to_thread(cached.index.remove_template, change.template_id)
            case "del_identity" if current and cached is not None:
                await asyncio.to_thread(cached.index.remove_identity, change.identity_id)
            case "reload" if current and cached is not None:
                self.galleries[change.gallery_id] = await self._load_gallery(cached.info)
            case "put_gallery" | "del_gallery" | "add" | "del_template" | "del_identity" | "reload":
                pass  # a gallery this replica does not hold (deleted, or replaced by a newer one)
            case _:
                log.warning("ignoring unknown change %r (#%d)", change.op, change.seq)

    def _update_metrics(self) -> None:
        GALLERIES.set(len(self.galleries))
        TEMPLATES.set(sum(len(g.index) for g in self.galleries.values()))


__all__ = ["CachedGallery", "GallerySync"]
