"""Who is calling, as the gateway tells the services behind it.

The gateway authenticates the API key and passes the key's scopes on in ``x-fovea-caller-scopes`` (comma
separated; ``*`` = every scope). What a client sends under that name is never forwarded: the gateway builds
the metadata of each backend call itself. A call without the header (straight to a service port) has no
scopes, so what a scope unlocks inside a service fails closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CALLER_SCOPES_HEADER = "x-fovea-caller-scopes"
ALL_SCOPES = "*"


def scopes_header(scopes: Iterable[str]) -> tuple[str, str]:
    """The metadata entry that passes ``scopes`` on."""
    return CALLER_SCOPES_HEADER, ",".join(sorted(scopes))


def caller_scopes(metadata: Any) -> frozenset[str]:
    """The scopes in a call's invocation metadata; empty when the header is absent."""
    for key, value in metadata or ():
        if key == CALLER_SCOPES_HEADER and isinstance(value, str):
            return frozenset(s.strip() for s in value.split(",") if s.strip())
    return frozenset()


def has_scope(scopes: frozenset[str], scope: str) -> bool:
    return ALL_SCOPES in scopes or scope in scopes


__all__ = ["ALL_SCOPES", "CALLER_SCOPES_HEADER", "caller_scopes", "has_scope", "scopes_header"]
