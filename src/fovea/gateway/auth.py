"""API keys: stored as SHA-256 hashes with scopes, checked in constant time, one scope per method.

The keys file is JSON: ``{"keys": [{"name": "ci", "sha256": "<hex>", "scopes": ["detect", "style"],
"created": "2026-11-30T08:00:00Z", "expires": "2027-01-01T00:00:00Z"}]}`` (``created`` and ``expires``
optional). ``fovea keys create|revoke`` rewrite it atomically (a new file renamed over the old one, under a
lock); the gateway reloads it when it changes, without a restart (``Authenticator.watch``): a file that does
not parse keeps the keys loaded before, and the log says why. The scope ``*`` grants every method.
When each key was last used is kept beside it (``<name>.usage.json``, written by the gateway), never in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc

from fovea.common.errors import Relayed

SCOPES = (
    "detect",
    "faces:enroll",
    "faces:verify",
    "faces:identify",
    "faces:admin",
    "faces:events",
    "style",
    "classify",
    "classify:train",
    "models:read",
)
ALL_SCOPES = "*"
log = logging.getLogger(__name__)

# Every public method and the scope it needs. A method missing here is refused (fail closed).
METHOD_SCOPES: dict[str, str] = {
    "/fovea.detection.v1.DetectionService/Detect": "detect",
    "/fovea.detection.v1.DetectionService/DetectStream": "detect",
    "/fovea.detection.v1.DetectionService/ListDetectors": "detect",
    "/fovea.faces.v1.FacesService/CreateGallery": "faces:admin",
    "/fovea.faces.v1.FacesService/GetGallery": "faces:admin",
    "/fovea.faces.v1.FacesService/ListGalleries": "faces:admin",
    "/fovea.faces.v1.FacesService/DeleteGallery": "faces:admin",
    "/fovea.faces.v1.FacesService/Enroll": "faces:enroll",
    "/fovea.faces.v1.FacesService/GetIdentity": "faces:admin",
    "/fovea.faces.v1.FacesService/ListIdentities": "faces:admin",
    "/fovea.faces.v1.FacesService/DeleteIdentity": "faces:admin",
    "/fovea.faces.v1.FacesService/DeleteTemplate": "faces:admin",
    "/fovea.faces.v1.FacesService/Verify": "faces:verify",
    "/fovea.faces.v1.FacesService/Identify": "faces:identify",
    "/fovea.faces.v1.FacesService/VerifyAccess": "faces:verify",
    "/fovea.faces.v1.FacesService/ListAuditRecords": "faces:admin",
    "/fovea.faces.v1.FacesService/BeginAccess": "faces:verify",
    "/fovea.faces.v1.FacesService/WatchEvents": "faces:events",
    "/fovea.faces.v1.FacesService/ListWebhookDeadLetters": "faces:admin",
    "/fovea.faces.v1.FacesService/RedriveWebhookDeadLetters": "faces:admin",
    "/fovea.style.v1.StyleService/SubmitJob": "style",
    "/fovea.style.v1.StyleService/GetJob": "style",
    "/fovea.style.v1.StyleService/WatchJob": "style",
    "/fovea.style.v1.StyleService/CancelJob": "style",
    "/fovea.style.v1.StyleService/ListStyles": "style",
    "/fovea.classify.v1.ClassifyService/Classify": "classify",
    "/fovea.classify.v1.ClassifyService/ListClassifiers": "classify",
    "/fovea.classify.v1.ClassifyService/TrainClassifier": "classify:train",
    "/fovea.classify.v1.ClassifyService/GetTrainingJob": "classify:train",
    "/fovea.classify.v1.ClassifyService/WatchTrainingJob": "classify:train",
    "/fovea.classify.v1.ClassifyService/RollbackClassifier": "classify:train",
    "/fovea.classify.v1.ClassifyService/DeleteClassifier": "classify:train",
    "/fovea.classify.v1.ClassifyService/Explain": "classify",
    "/fovea.models.v1.ModelsService/ListModels": "models:read",
}


class AuthError(Relayed):
    """A key refused (UNAUTHENTICATED, PERMISSION_DENIED) or at its limit (RESOURCE_EXHAUSTED): a domain error
    with the status of its case, translated like every other (``fovea.common.interceptors``)."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    sha256: bytes
    scopes: frozenset[str]
    created: datetime | None = None
    expires: datetime | None = None  # refused from this instant on; None = never


def format_time(moment: datetime | None) -> str:
    """``2026-11-30T08:00:00Z`` (UTC, seconds), or '' for None."""
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or time; naive ones are UTC. Raises ``ValueError``."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_expiry(text: str, now: datetime) -> datetime:
    """``30d``, ``12h``, ``90m``, ``2w`` from ``now``, or an ISO 8601 date/time; must lie in the future."""
    match = _DURATION.match(text.strip())
    try:
        moment = (
            now + timedelta(**{_UNITS[match.group(2)]: int(match.group(1))}) if match else parse_time(text)
        )
    except ValueError as exc:
        raise ValueError(f"expiry {text!r}: give a duration (30d, 12h, 90m, 2w) or an ISO date/time") from exc
    if moment <= now:
        raise ValueError(f"expiry {text!r} is not in the future")
    return moment


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "fv_" + secrets.token_urlsafe(32)


def load_keys(path: Path) -> list[ApiKey]:
    """Read and validate the keys file; raises ``ValueError`` naming the problem (checked at start-up)."""
    if not path.exists():
        raise ValueError(f"API keys file {path} does not exist: create one with `fovea keys create`")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"API keys file {path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("keys", []), list):
        raise ValueError(f'API keys file {path}: expected {{"keys": [...]}}')
    keys = []
    for i, entry in enumerate(raw.get("keys", [])):
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: key #{i} is not an object")
        digest = str(entry.get("sha256", ""))
        if len(digest) != 64:
            raise ValueError(f"{path}: key #{i} needs a 64-hex-digit sha256")
        scopes = frozenset(entry.get("scopes", []))
        unknown = scopes - set(SCOPES) - {ALL_SCOPES}
        if unknown:
            raise ValueError(
                f"{path}: key {entry.get('name')!r} has unknown scopes {sorted(unknown)}; known: {SCOPES}"
            )
        try:
            sha256 = bytes.fromhex(digest)
            created = parse_time(entry["created"]) if entry.get("created") else None
            expires = parse_time(entry["expires"]) if entry.get("expires") else None
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: key {entry.get('name')!r}: {exc}") from exc
        keys.append(
            ApiKey(
                name=str(entry.get("name", f"key{i}")),
                sha256=sha256,
                scopes=scopes,
                created=created,
                expires=expires,
            )
        )
    return keys


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialises read-modify-write of the keys file between `fovea keys` commands."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to a 0600 file beside ``path``, then rename it over ``path`` (a reader sees
    the old file or the new one, never half of one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(data, indent=2) + "\n")
        out.flush()
        os.fsync(out.fileno())
    tmp.chmod(0o600)
    tmp.replace(path)


def add_key(path: Path, name: str, scopes: list[str], expires: datetime | None = None) -> str:
    """Create a key, store its hash in ``path`` (created 0600 if missing), return the key (shown once)."""
    unknown = set(scopes) - set(SCOPES) - {ALL_SCOPES}
    if unknown:
        raise ValueError(f"unknown scopes {sorted(unknown)}; known: {', '.join(SCOPES)} or *")
    if not name.strip():
        raise ValueError("a key needs a name")
    with _locked(path):
        data = json.loads(path.read_text()) if path.exists() else {"keys": []}
        if any(k.get("name") == name for k in data["keys"]):
            raise ValueError(f"a key named {name!r} already exists in {path}")
        key = new_key()
        entry: dict[str, Any] = {
            "name": name,
            "sha256": hash_key(key),
            "scopes": sorted(scopes),
            "created": format_time(datetime.now(UTC)),
        }
        if expires is not None:
            entry["expires"] = format_time(expires)
        data["keys"].append(entry)
        _write_atomically(path, data)
    return key


def revoke_key(path: Path, name: str) -> None:
    """Remove the key ``name`` from ``path``; a running gateway refuses it within its reload interval."""
    with _locked(path):
        data = json.loads(path.read_text()) if path.exists() else {"keys": []}
        kept = [k for k in data["keys"] if k.get("name") != name]
        if len(kept) == len(data["keys"]):
            known = ", ".join(str(k.get("name")) for k in data["keys"]) or "none"
            raise ValueError(f"no key named {name!r} in {path} (keys: {known})")
        data["keys"] = kept
        _write_atomically(path, data)


def usage_path(keys_path: Path) -> Path:
    """Where the gateway records when each key was last used: ``api-keys.json`` -> ``api-keys.usage.json``."""
    return keys_path.with_name(f"{keys_path.stem}.usage.json")


def read_usage(path: Path) -> dict[str, float]:
    """Key name -> unix time of its last use; empty when there is no (readable) record."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return (
        {str(k): float(v) for k, v in raw.items() if isinstance(v, int | float)}
        if isinstance(raw, dict)
        else {}
    )


def list_keys(path: Path) -> list[dict[str, Any]]:
    """Name, scopes, created, expires and last use of every key in ``path``: never the secret or its hash."""
    keys = load_keys(path)
    used = read_usage(usage_path(path))
    now = datetime.now(UTC)
    return [
        {
            "name": k.name,
            "scopes": sorted(k.scopes),
            "created": format_time(k.created),
            "expires": format_time(k.expires),
            "expired": k.expires is not None and k.expires <= now,
            "last_used": format_time(datetime.fromtimestamp(used[k.name], UTC)) if k.name in used else "",
        }
        for k in keys
    ]


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class Authenticator:
    """Checks the key of each call. Built from a file (``from_file``) it follows that file: ``watch`` reloads
    it when it changes and records when each key was last used beside it."""

    def __init__(self, keys: list[ApiKey], path: Path | None = None) -> None:
        self._keys = keys
        self._by_hash = {k.sha256: k for k in keys}
        self.path = path
        self._signature = _signature(path) if path is not None else None
        self.last_used: dict[str, float] = {}
        self._usage_dirty = False

    @classmethod
    def from_file(cls, path: Path) -> Authenticator:
        """Load ``path`` (raises ``ValueError`` naming the problem: checked at start-up)."""
        signature = _signature(path)
        auth = cls(load_keys(path), path)
        auth._signature = signature  # taken before the read: a change during it is seen next time
        return auth

    @property
    def names(self) -> list[str]:
        return [k.name for k in self._keys]

    def reload_if_changed(self) -> bool:
        """Reload the keys file when it changed since the last look; a file that does not load keeps the
        keys in use (logged once per change). True when new keys took effect."""
        if self.path is None:
            return False
        signature = _signature(self.path)
        if signature == self._signature:
            return False
        self._signature = signature
        try:
            keys = load_keys(self.path)
        except Exception as exc:  # noqa: BLE001 - whatever is wrong with the file, the old keys stay
            log.error(
                "API keys file changed but was not loaded; keeping the %d keys in use: %s",
                len(self._keys),
                exc,
            )
            return False
        self._keys = keys
        self._by_hash = {k.sha256: k for k in keys}
        log.info("API keys reloaded from %s: %s", self.path, ", ".join(self.names) or "none")
        return True

    def flush_usage(self, path: Path | None = None) -> None:
        """Merge the last-use times seen since the last flush into the usage file (atomically)."""
        target = path or (usage_path(self.path) if self.path is not None else None)
        if target is None or not self._usage_dirty:
            return
        self._usage_dirty = False
        merged = read_usage(target)
        for name, when in dict(self.last_used).items():
            merged[name] = max(when, merged.get(name, 0.0))
        try:
            _write_atomically(target, merged)
        except OSError as exc:  # e.g. a read-only secret mount: usage is then not recorded
            log.debug("could not record key usage in %s: %s", target, exc)

    async def watch(
        self, interval_s: float, usage_file: Path | None = None, usage_every_s: float = 10.0
    ) -> None:
        """Until cancelled: look for a changed keys file every ``interval_s``, record usage every
        ``usage_every_s``."""
        last_flush = time.monotonic()
        try:
            while True:
                self.reload_if_changed()
                if time.monotonic() - last_flush >= usage_every_s:
                    await asyncio.to_thread(self.flush_usage, usage_file)
                    last_flush = time.monotonic()
                await asyncio.sleep(interval_s)
        finally:
            self.flush_usage(usage_file)

    def _find(self, presented: str) -> ApiKey | None:
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for key in self._keys:  # compare against every key, in constant time each
            if hmac.compare_digest(digest, key.sha256):
                found = key
        return found

    def authorize(self, method: str, metadata: tuple[tuple[str, str | bytes], ...] | None) -> ApiKey:
        """The key that may call ``method``; raises ``AuthError`` (UNAUTHENTICATED / PERMISSION_DENIED).
        The keys file is looked at first (one ``stat``): a key created or revoked a moment ago is known."""
        self.reload_if_changed()
        presented = _presented_key(metadata)
        if not presented:
            raise AuthError(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing API key: send metadata 'authorization: Bearer <key>' (or set FOVEA_API_KEY)",
            )
        key = self._find(presented)
        if key is None:
            raise AuthError(grpc.StatusCode.UNAUTHENTICATED, "unknown API key")
        if key.expires is not None and datetime.now(UTC) >= key.expires:
            raise AuthError(
                grpc.StatusCode.UNAUTHENTICATED, f"API key {key.name!r} expired at {format_time(key.expires)}"
            )
        self.last_used[key.name] = time.time()
        self._usage_dirty = True
        scope = METHOD_SCOPES.get(method)
        if scope is None:
            raise AuthError(grpc.StatusCode.PERMISSION_DENIED, f"method {method} is not open to API keys")
        if ALL_SCOPES not in key.scopes and scope not in key.scopes:
            raise AuthError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"API key {key.name!r} lacks scope {scope!r} needed for {method.lstrip('/')}",
            )
        return key

    def recheck(self, key: ApiKey, method: str) -> AuthError | None:
        """Why ``key``, which :meth:`authorize` accepted for ``method``, may no longer call it: revoked (gone
        from the keys file, or given another secret), expired, or without the method's scope now; None while
        it still may. Open streams are checked with this (``fovea.gateway.streams``)."""
        current = self._by_hash.get(key.sha256)
        if current is None:
            return AuthError(
                grpc.StatusCode.UNAUTHENTICATED, f"API key {key.name!r} was revoked while this call was open"
            )
        if current.expires is not None and datetime.now(UTC) >= current.expires:
            return AuthError(
                grpc.StatusCode.UNAUTHENTICATED,
                f"API key {key.name!r} expired at {format_time(current.expires)} while this call was open",
            )
        scope = METHOD_SCOPES.get(method)
        if ALL_SCOPES not in current.scopes and scope not in current.scopes:
            return AuthError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"API key {key.name!r} lost scope {scope!r} (needed for {method.lstrip('/')}) while this call "
                "was open",
            )
        return None


def _presented_key(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str:
    for name, value in metadata or ():
        text = value.decode() if isinstance(value, bytes) else value
        if name == "authorization" and text.lower().startswith("bearer "):
            return text[7:].strip()
        if name == "x-api-key":
            return text.strip()
    return ""
