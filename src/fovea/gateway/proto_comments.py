"""The ``//`` comments of the ``.proto`` files, by the full name of what they describe, for ``/openapi.json``.

The generated ``_pb2`` modules carry no comments (protoc drops source info), so the sources are read when
they are at hand (``protos/`` of a checkout); without them the OpenAPI document simply has no descriptions.
A small line scanner, not a parser: it knows the layout ``protos/`` is written in (one declaration a line,
comments on the lines above it or after it on the same line).
"""

from __future__ import annotations

import re
from pathlib import Path

_BLOCK = re.compile(r"^(message|enum|service|oneof)\s+(\w+)\s*\{")
_RPC = re.compile(r"^rpc\s+(\w+)\s*\(")
_FIELD = re.compile(r"^(?:(?:repeated|optional)\s+)?(?:map\s*<[^>]*>|[\w.]+)\s+(\w+)\s*=\s*\d+")
_ENUM_VALUE = re.compile(r"^([A-Za-z]\w*)\s*=\s*-?\d+")


def find_proto_root(start: Path) -> Path | None:
    """The nearest ``protos/`` folder holding ``fovea/`` above ``start`` (a checkout), or None."""
    for parent in [start, *start.parents]:
        candidate = parent / "protos"
        if (candidate / "fovea").is_dir():
            return candidate
    return None


def scan(text: str) -> dict[str, str]:
    """Full name -> comment of every commented declaration in one ``.proto`` file's text.

    Names: ``pkg.Message``, ``pkg.Message.field``, ``pkg.Enum``, ``pkg.Enum.VALUE`` (under its enum, unlike
    protobuf's own scoping, so values of two enums never collide), ``pkg.Service``, ``pkg.Service.Method``.
    Fields of a ``oneof`` belong to its message."""
    package = ""
    scope: list[tuple[str, str]] = []  # (kind, name); kind "" for a block we do not name
    pending: list[str] = []
    found: dict[str, str] = {}

    def full(name: str) -> str:
        parts = [package] if package else []
        parts += [n for kind, n in scope if kind in ("message", "enum", "service")]
        return ".".join([*parts, name])

    for raw in text.splitlines():
        line, _, trailing = raw.strip().partition("//")
        line = line.strip()
        if not line:
            if raw.strip().startswith("//"):
                pending.append(trailing.strip())
            else:
                pending = []  # a blank line ends a comment block
            continue
        comment = " ".join(p for p in [*pending, trailing.strip()] if p)
        pending = []
        inner = scope[-1][0] if scope else ""
        name = None
        if line.startswith("package "):
            package = line.removeprefix("package ").rstrip(";").strip()
        elif block := _BLOCK.match(line):
            name = full(block.group(2))
            scope.append((block.group(1), block.group(2)))
            line = line[block.end() :]
        elif rpc := _RPC.match(line):
            name = full(rpc.group(1))
        elif inner == "enum" and (value := _ENUM_VALUE.match(line)):
            name = full(value.group(1))
        elif inner in ("message", "oneof") and (fld := _FIELD.match(line)):
            name = full(fld.group(1))
        if name is not None and comment:
            found[name] = comment
        for char in line:
            if char == "{":
                scope.append(("", ""))
            elif char == "}" and scope:
                scope.pop()
    return found


def load_comments(root: Path | None) -> dict[str, str]:
    """:func:`scan` of every ``.proto`` under ``root`` (none when ``root`` is None), by full name."""
    if root is None:
        return {}
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*.proto")):
        try:
            found.update(scan(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            continue
    return found
