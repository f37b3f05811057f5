"""A private local stack for a benchmark run (temporary data dir, free ports), like the tests use, and the
stack's processes as /proc shows them."""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fovea.gateway.auth import add_key
from fovea.stack.config import StackSettings
from fovea.stack.control import down, up


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@contextmanager
def private_stack(**overrides: Any) -> Iterator[tuple[StackSettings, str]]:
    """Start the whole platform, yield (settings, admin key), stop it; ``overrides`` are StackSettings
    fields (the default: the Redis on 6379, database 14)."""
    fields = [name for name in StackSettings.model_fields if name.endswith("_port")]
    with tempfile.TemporaryDirectory(prefix="fovea-bench-") as tmp:
        data = Path(tmp)
        ports = dict(zip(fields, free_ports(len(fields)), strict=True))
        settings = StackSettings(
            data_dir=data, **{"redis_url": "redis://127.0.0.1:6379/14", **overrides, **ports}
        )
        key = add_key(data / "api-keys.json", "bench", ["*"])
        try:
            up(settings)
            yield settings, key
        finally:
            down(settings)


def children() -> dict[int, list[int]]:
    """Every process's children, from /proc (pid -> child pids)."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                tree.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    return tree


def process_label(pid: int, program: str) -> str:
    """What process ``pid`` of the supervised ``program`` is: a Triton stub names its model."""
    try:
        words = [
            w.decode(errors="replace") for w in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if w
        ]
    except OSError:
        return program
    if any(w.endswith("triton_python_backend_stub") for w in words):
        model = next((Path(w).parts[-3] for w in words if w.endswith("model.py")), "?")
        return f"triton stub {model}"
    if any(w.endswith("tritonserver") for w in words):
        return "tritonserver"
    if any("resource_tracker" in w for w in words):
        return f"{program} (multiprocessing resource tracker)"
    return program
