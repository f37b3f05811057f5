"""API keys: stored as SHA-256 hashes with scopes, checked in constant time, one scope per method.

The keys file is JSON: ``{"keys": [{"name": "ci", "sha256": "<hex>", "scopes": ["detect", "style"]}]}``.
``fovea keys create`` writes it. The scope ``*`` grants every method.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import grpc

SCOPES = ("detect", "faces:enroll", "faces:verify", "faces:identify", "faces:admin", "style", "models:read")
ALL_SCOPES = "*"

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
    "/fovea.style.v1.StyleService/SubmitJob": "style",
    "/fovea.style.v1.StyleService/GetJob": "style",
    "/fovea.style.v1.StyleService/WatchJob": "style",
    "/fovea.style.v1.StyleService/CancelJob": "style",
    "/fovea.style.v1.StyleService/ListStyles": "style",
    "/fovea.models.v1.ModelsService/ListModels": "models:read",
}


class AuthError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ApiKey:
    name: str
    sha256: bytes
    scopes: frozenset[str]


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
    keys = []
    for i, entry in enumerate(raw.get("keys", [])):
        digest = str(entry.get("sha256", ""))
        if len(digest) != 64:
            raise ValueError(f"{path}: key #{i} needs a 64-hex-digit sha256")
        scopes = frozenset(entry.get("scopes", []))
        unknown = scopes - set(SCOPES) - {ALL_SCOPES}
        if unknown:
            raise ValueError(
                f"{path}: key {entry.get('name')!r} has unknown scopes {sorted(unknown)}; known: {SCOPES}"
            )
        keys.append(
            ApiKey(name=str(entry.get("name", f"key{i}")), sha256=bytes.fromhex(digest), scopes=scopes)
        )
    return keys


def add_key(path: Path, name: str, scopes: list[str]) -> str:
    """Create a key, store its hash in ``path`` (created 0600 if missing), return the key (shown once)."""
    unknown = set(scopes) - set(SCOPES) - {ALL_SCOPES}
    if unknown:
        raise ValueError(f"unknown scopes {sorted(unknown)}; known: {', '.join(SCOPES)} or *")
    data = json.loads(path.read_text()) if path.exists() else {"keys": []}
    if any(k.get("name") == name for k in data["keys"]):
        raise ValueError(f"a key named {name!r} already exists in {path}")
    key = new_key()
    data["keys"].append({"name": name, "sha256": hash_key(key), "scopes": sorted(scopes)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)
    return key


class Authenticator:
    def __init__(self, keys: list[ApiKey]) -> None:
        self._keys = keys

    def _find(self, presented: str) -> ApiKey | None:
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for key in self._keys:  # compare against every key, in constant time each
            if hmac.compare_digest(digest, key.sha256):
                found = key
        return found

    def authorize(self, method: str, metadata: tuple[tuple[str, str | bytes], ...] | None) -> ApiKey:
        """The key that may call ``method``; raises ``AuthError`` (UNAUTHENTICATED / PERMISSION_DENIED)."""
        presented = _presented_key(metadata)
        if not presented:
            raise AuthError(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing API key: send metadata 'authorization: Bearer <key>' (or set FOVEA_API_KEY)",
            )
        key = self._find(presented)
        if key is None:
            raise AuthError(grpc.StatusCode.UNAUTHENTICATED, "unknown API key")
        scope = METHOD_SCOPES.get(method)
        if scope is None:
            raise AuthError(grpc.StatusCode.PERMISSION_DENIED, f"method {method} is not open to API keys")
        if ALL_SCOPES not in key.scopes and scope not in key.scopes:
            raise AuthError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"API key {key.name!r} lacks scope {scope!r} needed for {method.lstrip('/')}",
            )
        return key


def _presented_key(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str:
    for name, value in metadata or ():
        text = value.decode() if isinstance(value, bytes) else value
        if name == "authorization" and text.lower().startswith("bearer "):
            return text[7:].strip()
        if name == "x-api-key":
            return text.strip()
    return ""
