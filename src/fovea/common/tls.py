"""What the gateway and its clients both need to know about TLS: which hosts are loopback (the plaintext
rule: plaintext is the default only there) and how a PEM file is read. Standard library only: the client
imports it (``fovea[client]`` has no server packages)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


def is_loopback(host: str) -> bool:
    """True for ``127.0.0.0/8``, ``::1`` (bracketed or not) and ``localhost``; False for ``0.0.0.0``,
    ``[::]`` and every other name or address."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def read_pem(path: Path, what: str) -> bytes:
    """The bytes of a PEM file; ``ValueError`` naming ``what`` and the file when it cannot be read or holds
    no ``-----BEGIN`` line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{what} {path}: {exc.strerror or exc}") from exc
    if b"-----BEGIN" not in data:
        raise ValueError(f"{what} {path} is not PEM (no -----BEGIN line)")
    return data
