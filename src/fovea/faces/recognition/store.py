"""Galleries, identities, templates and the door audit trail in Redis (``redis.asyncio``).

Keys (``fovea:faces`` prefix; ``<uid>`` is a random id given to a gallery when it is created, so a gallery
deleted and created again under the same name never meets the old one's keys):

* ``galleries``: hash gallery id -> JSON ``{uid, threshold, embedding_model, metadata, created_ms}``
* ``g:<uid>:identities``: sorted set of identity ids (score 0: lexicographic order, for paging)
* ``g:<uid>:i:<identity>``: hash ``meta`` (JSON metadata), ``created_ms``, ``t:<template id>`` (JSON info)
* ``g:<uid>:templates``: hash template id -> template record (``core.records``: header + float32 embedding)
* ``changes``: stream of every change, ``seq``: the change counter (each change has the next number)
* ``audit`` and ``audit:door:<door>``: streams of door access records
* ``deleted``: set of uids of deleted galleries whose keys are still being removed

Every write that touches several keys is one Lua script: it checks its preconditions (gallery still the same,
identity present or absent, same embedding model), writes, and appends the change event with the next
sequence number, all or nothing. Replicas follow ``changes`` to keep their search matrices current
(``sync.py``); the sequence number lets them notice a gap (a trimmed stream) and reload. Change events carry
template ids, never embeddings: a replica reads the templates it is told about, so a deleted template's
embedding is gone from Redis at once (biometric data is not left behind in the stream).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from redis.exceptions import RedisError, ResponseError

from fovea.common import redis_client
from fovea.common.errors import AlreadyExists, FailedPrecondition, FoveaError, NotFound, UpstreamUnavailable
from fovea.faces.recognition.core.records import TemplateRecord, decode_template, encode_template

log = logging.getLogger(__name__)

PREFIX = "fovea:faces"
GALLERIES = f"{PREFIX}:galleries"
CHANGES = f"{PREFIX}:changes"
SEQ = f"{PREFIX}:seq"
AUDIT = f"{PREFIX}:audit"
DELETED = f"{PREFIX}:deleted"


def identities_key(uid: str) -> str:
    return f"{PREFIX}:g:{uid}:identities"


def identity_key(uid: str, identity_id: str) -> str:
    return f"{PREFIX}:g:{uid}:i:{identity_id}"


def templates_key(uid: str) -> str:
    return f"{PREFIX}:g:{uid}:templates"


def audit_door_key(door_id: str) -> str:
    return f"{AUDIT}:door:{door_id}"


def now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------------------------------------- scripts
# Errors are replies "FOVEA_<CODE> message"; ``_raise`` turns them into the domain error of that code.

_GALLERY_CHECK = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return redis.error_reply('FOVEA_NOT_FOUND gallery ' .. ARGV[1] .. ' does not exist') end
local gallery = cjson.decode(raw)
if gallery['uid'] ~= ARGV[2] then
  return redis.error_reply('FOVEA_NOT_FOUND gallery ' .. ARGV[1] .. ' was deleted during the request')
end
"""

# KEYS: galleries, identities, identity, templates, changes, seq
# ARGV: gallery, uid, identity, model, create_only, metadata JSON ('' = keep), now, maxlen, template ids
#       (comma-separated), then (template id, record, info JSON) triples
_ENROLL = (
    _GALLERY_CHECK
    + """
if gallery['embedding_model'] ~= ARGV[4] then
  return redis.error_reply('FOVEA_FAILED_PRECONDITION gallery ' .. ARGV[1] .. ' holds templates of model '
    .. gallery['embedding_model'] .. ', the service embeds with ' .. ARGV[4])
end
local exists = redis.call('EXISTS', KEYS[3]) == 1
if exists and ARGV[5] == '1' then
  return redis.error_reply('FOVEA_ALREADY_EXISTS identity ' .. ARGV[3] .. ' already exists in gallery ' .. ARGV[1])
end
if not exists then
  redis.call('HSET', KEYS[3], 'meta', (ARGV[6] ~= '' and ARGV[6]) or '{}', 'created_ms', ARGV[7])
  redis.call('ZADD', KEYS[2], 0, ARGV[3])
elseif ARGV[6] ~= '' then
  redis.call('HSET', KEYS[3], 'meta', ARGV[6])
end
for i = 10, #ARGV, 3 do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[3], 't:' .. ARGV[i], ARGV[i + 2])
end
local seq = redis.call('INCR', KEYS[6])
local id = redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[8], '*', 'seq', seq, 'op', 'add',
  'gallery', ARGV[1], 'uid', ARGV[2], 'identity', ARGV[3], 'template_ids', ARGV[9])
return {id, seq}
"""
)

# KEYS: galleries, identity, templates, changes, seq.  ARGV: gallery, uid, identity, template, maxlen
_DELETE_TEMPLATE = (
    _GALLERY_CHECK
    + """
if redis.call('HDEL', KEYS[2], 't:' .. ARGV[4]) == 0 then
  return redis.error_reply('FOVEA_NOT_FOUND identity ' .. ARGV[3] .. ' in gallery ' .. ARGV[1]
    .. ' has no template ' .. ARGV[4])
end
redis.call('HDEL', KEYS[3], ARGV[4])
local seq = redis.call('INCR', KEYS[5])
local id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'seq', seq, 'op', 'del_template',
  'gallery', ARGV[1], 'uid', ARGV[2], 'identity', ARGV[3], 'template', ARGV[4])
return {id, seq}
"""
)

# KEYS: galleries, identities, identity, templates, changes, seq.  ARGV: gallery, uid, identity, maxlen
_DELETE_IDENTITY = (
    _GALLERY_CHECK
    + """
if redis.call('EXISTS', KEYS[3]) == 0 then
  return redis.error_reply('FOVEA_NOT_FOUND no identity ' .. ARGV[3] .. ' in gallery ' .. ARGV[1])
end
for _, f in ipairs(redis.call('HKEYS', KEYS[3])) do
  if string.sub(f, 1, 2) == 't:' then redis.call('HDEL', KEYS[4], string.sub(f, 3)) end
end
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[2], ARGV[3])
local seq = redis.call('INCR', KEYS[6])
local id = redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', 'seq', seq, 'op', 'del_identity',
  'gallery', ARGV[1], 'uid', ARGV[2], 'identity', ARGV[3])
return {id, seq}
"""
)

# KEYS: galleries, changes, seq.  ARGV: gallery, gallery JSON, uid, maxlen
_CREATE_GALLERY = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return redis.error_reply('FOVEA_ALREADY_EXISTS gallery ' .. ARGV[1] .. ' already exists')
end
local seq = redis.call('INCR', KEYS[3])
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'seq', seq, 'op', 'put_gallery',
  'gallery', ARGV[1], 'uid', ARGV[3], 'info', ARGV[2])
return {id, seq}
"""

# KEYS: galleries, changes, seq, deleted.  ARGV: gallery, maxlen
_DELETE_GALLERY = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return redis.error_reply('FOVEA_NOT_FOUND gallery ' .. ARGV[1] .. ' does not exist') end
local uid = cjson.decode(raw)['uid']
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[4], uid)
local seq = redis.call('INCR', KEYS[3])
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'seq', seq, 'op', 'del_gallery',
  'gallery', ARGV[1], 'uid', uid)
return {id, seq, uid}
"""

# KEYS: galleries, changes, seq.  ARGV: gallery, uid, maxlen
_RELOAD = (
    _GALLERY_CHECK
    + """
local seq = redis.call('INCR', KEYS[3])
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'seq', seq, 'op', 'reload',
  'gallery', ARGV[1], 'uid', ARGV[2])
return {id, seq}
"""
)

# KEYS: audit, audit of the door.  ARGV: maxlen, then field, value pairs
_AUDIT = """
local fields = {}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'audit_id', id, unpack(fields))
return id
"""

_CODES: dict[str, type[FoveaError]] = {
    "FOVEA_NOT_FOUND": NotFound,
    "FOVEA_ALREADY_EXISTS": AlreadyExists,
    "FOVEA_FAILED_PRECONDITION": FailedPrecondition,
}


def _raise(exc: RedisError) -> NoReturn:
    """Re-raise a Redis error as the domain error it stands for."""
    if isinstance(exc, ResponseError):
        code, _, message = str(exc).partition(" ")
        if code in _CODES:
            raise _CODES[code](message) from None
    raise UpstreamUnavailable(f"Redis is unavailable: {exc}") from exc


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class GalleryInfo:
    gallery_id: str
    uid: str
    threshold: float
    embedding_model: str
    metadata: dict[str, str]
    created_ms: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "uid": self.uid,
                "threshold": self.threshold,
                "embedding_model": self.embedding_model,
                "metadata": self.metadata,
                "created_ms": self.created_ms,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, gallery_id: str, raw: bytes | str) -> GalleryInfo:
        data = json.loads(raw)
        return cls(
            gallery_id,
            str(data["uid"]),
            float(data["threshold"]),
            str(data["embedding_model"]),
            {str(k): str(v) for k, v in data.get("metadata", {}).items()},
            int(data.get("created_ms", 0)),
        )


@dataclass(frozen=True)
class TemplateInfo:
    template_id: str
    embedding_model: str
    created_ms: int


@dataclass(frozen=True)
class IdentityInfo:
    gallery_id: str
    identity_id: str
    metadata: dict[str, str]
    created_ms: int
    templates: list[TemplateInfo]


@dataclass(frozen=True)
class Change:
    """One entry of the change stream."""

    stream_id: str
    seq: int
    op: str  # put_gallery | del_gallery | add | del_template | del_identity | reload
    gallery_id: str
    uid: str
    identity_id: str = ""
    template_id: str = ""  # del_template
    template_ids: list[str] = field(default_factory=list)  # add
    gallery: GalleryInfo | None = None  # put_gallery

    @classmethod
    def from_entry(cls, stream_id: Any, fields: Mapping[Any, Any]) -> Change:
        f = {_text(k): v for k, v in fields.items()}
        gallery_id = _text(f["gallery"])
        info = f.get("info")
        return cls(
            stream_id=_text(stream_id),
            seq=int(f["seq"]),
            op=_text(f["op"]),
            gallery_id=gallery_id,
            uid=_text(f["uid"]),
            identity_id=_text(f.get("identity", b"")),
            template_id=_text(f.get("template", b"")),
            template_ids=[t for t in _text(f.get("template_ids", b"")).split(",") if t],
            gallery=GalleryInfo.from_json(gallery_id, info) if info is not None else None,
        )


@dataclass(frozen=True)
class Written:
    """Where a write landed in the change stream."""

    stream_id: str
    seq: int


@dataclass(frozen=True)
class AuditEntry:
    audit_id: str
    fields: dict[str, str]


def _bytes(value: bytes | str) -> bytes:
    """A Redis reply as bytes (the store's clients do not decode responses; a str would be a bug)."""
    return value if isinstance(value, bytes) else value.encode()


class FaceStore:
    """All Redis I/O of the faces service. Redis failures raise ``UpstreamUnavailable``."""

    def __init__(
        self,
        url: str,
        *,
        changes_maxlen: int = 100_000,
        audit_maxlen: int = 1_000_000,
        min_replicas: int = 0,
        replica_timeout_ms: int = 1000,
    ) -> None:
        """``min_replicas``: a write is answered only once that many Redis replicas hold it (``WAIT``), so a
        failover loses nothing that was acknowledged; 0 = as soon as the primary has it."""
        self.url = url
        self.redis = redis_client.connect(url, socket_timeout=3)
        self.changes_maxlen = changes_maxlen
        self.audit_maxlen = audit_maxlen
        self.min_replicas = min_replicas
        self.replica_timeout_ms = replica_timeout_ms
        self._enroll = self.redis.register_script(_ENROLL)
        self._delete_template = self.redis.register_script(_DELETE_TEMPLATE)
        self._delete_identity = self.redis.register_script(_DELETE_IDENTITY)
        self._create_gallery = self.redis.register_script(_CREATE_GALLERY)
        self._delete_gallery = self.redis.register_script(_DELETE_GALLERY)
        self._reload = self.redis.register_script(_RELOAD)
        self._audit = self.redis.register_script(_AUDIT)

    async def close(self) -> None:
        await self.redis.aclose()

    async def _write(self, script: Any, *, keys: list[Any], args: list[Any]) -> Any:
        """Run a write script; with ``min_replicas``, ``WAIT`` for them on the same connection (a pipeline)
        and raise ``NotReplicated`` (a ``RedisError``) when too few acknowledged it in time."""
        if not self.min_replicas:
            return await script(keys=keys, args=args)
        async with self.redis.pipeline(transaction=False) as pipe:
            await script(keys=keys, args=args, client=pipe)
            pipe.execute_command("WAIT", self.min_replicas, self.replica_timeout_ms)
            result, acknowledged = await pipe.execute()
        redis_client.check_replicas(int(acknowledged), self.min_replicas, self.replica_timeout_ms)
        return result

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except RedisError:
            return False

    # ------------------------------------------------------------------------------------------ galleries
    async def create_gallery(
        self, gallery_id: str, threshold: float, embedding_model: str, metadata: dict[str, str]
    ) -> tuple[GalleryInfo, Written]:
        info = GalleryInfo(gallery_id, uuid.uuid4().hex, threshold, embedding_model, metadata, now_ms())
        try:
            stream_id, seq = await self._write(
                self._create_gallery,
                keys=[GALLERIES, CHANGES, SEQ],
                args=[gallery_id, info.to_json(), info.uid, self.changes_maxlen],
            )
        except RedisError as exc:
            _raise(exc)
        return info, Written(_text(stream_id), int(seq))

    async def get_gallery(self, gallery_id: str) -> GalleryInfo:
        try:
            raw = await self.redis.hget(GALLERIES, gallery_id)
        except RedisError as exc:
            _raise(exc)
        if raw is None:
            raise NotFound(f"gallery {gallery_id} does not exist")
        return GalleryInfo.from_json(gallery_id, raw)

    async def list_galleries(self) -> list[GalleryInfo]:
        try:
            raw = await self.redis.hgetall(GALLERIES)
        except RedisError as exc:
            _raise(exc)
        return sorted(
            (GalleryInfo.from_json(_text(k), v) for k, v in raw.items()), key=lambda g: g.gallery_id
        )

    async def identity_count(self, uid: str) -> int:
        try:
            return int(await self.redis.zcard(identities_key(uid)))
        except RedisError as exc:
            _raise(exc)

    async def delete_gallery(self, gallery_id: str) -> tuple[str, Written]:
        """Remove the gallery at once (one script); returns its uid for :meth:`purge` of its keys."""
        try:
            stream_id, seq, uid = await self._write(
                self._delete_gallery,
                keys=[GALLERIES, CHANGES, SEQ, DELETED],
                args=[gallery_id, self.changes_maxlen],
            )
        except RedisError as exc:
            _raise(exc)
        return _text(uid), Written(_text(stream_id), int(seq))

    async def purge_deleted(self, chunk: int = 1000) -> int:
        """Remove the keys of deleted galleries (after :meth:`delete_gallery`, or left by a crash)."""
        done = 0
        try:
            for raw_uid in await self.redis.smembers(DELETED):
                uid = _text(raw_uid)
                key = identities_key(uid)
                while True:
                    ids = await self.redis.zrange(key, 0, chunk - 1)
                    if not ids:
                        break
                    async with self.redis.pipeline(transaction=True) as pipe:
                        pipe.unlink(*[identity_key(uid, _text(i)) for i in ids])
                        pipe.zrem(key, *ids)
                        await pipe.execute()
                await self.redis.unlink(templates_key(uid), key)
                await self.redis.srem(DELETED, uid)
                done += 1
        except RedisError as exc:
            _raise(exc)
        return done

    # ------------------------------------------------------------------------------------------ identities
    async def enroll(
        self,
        gallery: GalleryInfo,
        identity_id: str,
        records: list[TemplateRecord],
        metadata: dict[str, str] | None,
        create_only: bool,
    ) -> Written:
        """Create the identity if needed and add ``records`` as its templates, in one script."""
        args: list[Any] = [
            gallery.gallery_id,
            gallery.uid,
            identity_id,
            records[0].embedding_model if records else gallery.embedding_model,
            "1" if create_only else "0",
            json.dumps(metadata, separators=(",", ":")) if metadata else "",
            now_ms(),
            self.changes_maxlen,
            ",".join(r.template_id for r in records),
        ]
        for record in records:
            info = json.dumps({"model": record.embedding_model, "created_ms": record.created_ms})
            args += [record.template_id, encode_template(record), info]
        uid = gallery.uid
        try:
            stream_id, seq = await self._write(
                self._enroll,
                keys=[
                    GALLERIES,
                    identities_key(uid),
                    identity_key(uid, identity_id),
                    templates_key(uid),
                    CHANGES,
                    SEQ,
                ],
                args=args,
            )
        except RedisError as exc:
            _raise(exc)
        return Written(_text(stream_id), int(seq))

    async def get_identity(self, gallery: GalleryInfo, identity_id: str) -> IdentityInfo:
        try:
            raw = await self.redis.hgetall(identity_key(gallery.uid, identity_id))
        except RedisError as exc:
            _raise(exc)
        if not raw:
            raise NotFound(f"no identity {identity_id} in gallery {gallery.gallery_id}")
        return _identity(gallery.gallery_id, identity_id, raw)

    async def identity_exists(self, gallery: GalleryInfo, identity_id: str) -> bool:
        try:
            return bool(await self.redis.exists(identity_key(gallery.uid, identity_id)))
        except RedisError as exc:
            _raise(exc)

    async def list_identities(
        self, gallery: GalleryInfo, page_size: int, after: str
    ) -> tuple[list[IdentityInfo], str]:
        """Up to ``page_size`` identities with ids > ``after`` (in id order); returns them and the last id
        when there may be more ('' otherwise)."""
        start = f"({after}" if after else "-"
        try:
            raw_ids = await self.redis.zrangebylex(
                identities_key(gallery.uid), start, "+", start=0, num=page_size + 1
            )
            more = len(raw_ids) > page_size
            ids = [_text(i) for i in raw_ids[:page_size]]
            async with self.redis.pipeline(transaction=False) as pipe:
                for identity_id in ids:
                    pipe.hgetall(identity_key(gallery.uid, identity_id))
                hashes = await pipe.execute()
        except RedisError as exc:
            _raise(exc)
        found = [_identity(gallery.gallery_id, i, h) for i, h in zip(ids, hashes, strict=True) if h]
        return found, (ids[-1] if more and ids else "")

    async def delete_identity(self, gallery: GalleryInfo, identity_id: str) -> Written:
        uid = gallery.uid
        try:
            stream_id, seq = await self._write(
                self._delete_identity,
                keys=[
                    GALLERIES,
                    identities_key(uid),
                    identity_key(uid, identity_id),
                    templates_key(uid),
                    CHANGES,
                    SEQ,
                ],
                args=[gallery.gallery_id, uid, identity_id, self.changes_maxlen],
            )
        except RedisError as exc:
            _raise(exc)
        return Written(_text(stream_id), int(seq))

    async def delete_template(self, gallery: GalleryInfo, identity_id: str, template_id: str) -> Written:
        uid = gallery.uid
        try:
            stream_id, seq = await self._write(
                self._delete_template,
                keys=[GALLERIES, identity_key(uid, identity_id), templates_key(uid), CHANGES, SEQ],
                args=[gallery.gallery_id, uid, identity_id, template_id, self.changes_maxlen],
            )
        except RedisError as exc:
            _raise(exc)
        return Written(_text(stream_id), int(seq))

    async def bulk_enroll(
        self, gallery: GalleryInfo, records: Iterable[TemplateRecord], chunk: int = 5000
    ) -> Written:
        """Import many templates (new identities or not, no metadata) in transactions of ``chunk``
        templates, then one ``reload`` change: replicas re-read the whole gallery. For migrations and
        benchmarks; each chunk is all or nothing, the import as a whole is not."""
        uid = gallery.uid
        batch: list[TemplateRecord] = []

        async def flush() -> None:
            async with self.redis.pipeline(transaction=True) as pipe:
                created = str(now_ms())
                for record in batch:
                    key = identity_key(uid, record.identity_id)
                    info = json.dumps({"model": record.embedding_model, "created_ms": record.created_ms})
                    pipe.hsetnx(key, "meta", "{}")
                    pipe.hsetnx(key, "created_ms", created)
                    pipe.hset(key, f"t:{record.template_id}", info)
                    pipe.zadd(identities_key(uid), {record.identity_id: 0})
                    pipe.hset(templates_key(uid), record.template_id, encode_template(record))
                await pipe.execute()
            batch.clear()

        try:
            for record in records:
                if record.embedding_model != gallery.embedding_model:
                    raise FailedPrecondition(
                        f"template {record.template_id} is of model {record.embedding_model}, "
                        f"gallery {gallery.gallery_id} holds {gallery.embedding_model}"
                    )
                batch.append(record)
                if len(batch) >= chunk:
                    await flush()
            if batch:
                await flush()
            stream_id, seq = await self._write(
                self._reload,
                keys=[GALLERIES, CHANGES, SEQ],
                args=[gallery.gallery_id, uid, self.changes_maxlen],
            )
        except RedisError as exc:
            _raise(exc)
        return Written(_text(stream_id), int(seq))

    # ------------------------------------------------------------------------------------------ snapshot
    async def position(self) -> tuple[str, int]:
        """The id of the newest change and the change counter, read together."""
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xrevrange(CHANGES, "+", "-", count=1)
                pipe.get(SEQ)
                newest, seq = await pipe.execute()
        except RedisError as exc:
            _raise(exc)
        return (_text(newest[0][0]) if newest else "0-0"), int(seq or 0)

    async def fetch_templates(self, gallery: GalleryInfo, template_ids: list[str]) -> list[TemplateRecord]:
        """The records of these templates that still exist (a deleted one is skipped)."""
        if not template_ids:
            return []
        try:
            values = await self.redis.hmget(templates_key(gallery.uid), template_ids)
        except RedisError as exc:
            _raise(exc)
        return [decode_template(_bytes(v)) for v in values if v is not None]

    async def templates(self, gallery: GalleryInfo, count: int = 5000) -> AsyncIterator[list[TemplateRecord]]:
        """Every template record of the gallery, in batches (HSCAN: a consistent view is not promised;
        replaying the changes after :meth:`position` makes it so)."""
        cursor = 0
        try:
            while True:
                cursor, chunk = await self.redis.hscan(templates_key(gallery.uid), cursor, count=count)
                if chunk:
                    values = chunk.values() if isinstance(chunk, dict) else chunk[1::2]  # no_values=False
                    yield [decode_template(_bytes(v)) for v in values]
                if cursor == 0:
                    return
        except RedisError as exc:
            _raise(exc)

    # ------------------------------------------------------------------------------------------ audit
    async def append_audit(self, door_id: str, fields: Mapping[str, str]) -> str:
        args: list[Any] = [self.audit_maxlen]
        for key, value in fields.items():
            args += [key, value]
        try:
            # not _write: a door decides within its time bound also while a replica is being replaced (the
            # decision does not wait for one); a failover can lose the audit records of its last second
            audit_id = await self._audit(keys=[AUDIT, audit_door_key(door_id)], args=args)
        except RedisError as exc:
            _raise(exc)
        return _text(audit_id)

    async def audit_records(self, door_id: str, limit: int) -> list[AuditEntry]:
        """Newest first: every door's records, or one door's."""
        key = audit_door_key(door_id) if door_id else AUDIT
        try:
            entries = await self.redis.xrevrange(key, "+", "-", count=limit)
        except RedisError as exc:
            _raise(exc)
        out = []
        for stream_id, raw in entries or []:
            f = {_text(k): _text(v) for k, v in (raw or {}).items()}
            out.append(AuditEntry(f.pop("audit_id", _text(stream_id)), f))
        return out


def _identity(gallery_id: str, identity_id: str, raw: Mapping[Any, Any]) -> IdentityInfo:
    h = {_text(k): _text(v) for k, v in raw.items()}
    templates = []
    for key, value in h.items():
        if key.startswith("t:"):
            info = json.loads(value)
            templates.append(TemplateInfo(key[2:], str(info["model"]), int(info["created_ms"])))
    templates.sort(key=lambda t: (t.created_ms, t.template_id))
    return IdentityInfo(
        gallery_id,
        identity_id,
        {str(k): str(v) for k, v in json.loads(h.get("meta", "{}")).items()},
        int(h.get("created_ms", 0)),
        templates,
    )


__all__ = [
    "AuditEntry",
    "Change",
    "FaceStore",
    "GalleryInfo",
    "IdentityInfo",
    "TemplateInfo",
    "Written",
]
