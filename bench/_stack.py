"""A private local stack for a benchmark run (temporary data dir, free ports), like the tests use."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fovea.gateway.auth import add_key
from fovea.stack.config import StackSettings
from fovea.stack.control import down, up


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@contextmanager
def private_stack() -> Iterator[tuple[StackSettings, str]]:
    """Start the whole platform, yield (settings, admin key), stop it."""
    fields = [name for name in StackSettings.model_fields if name.endswith("_port")]
    with tempfile.TemporaryDirectory(prefix="fovea-bench-") as tmp:
        data = Path(tmp)
        settings = StackSettings(
            data_dir=data,
            redis_url="redis://127.0.0.1:6379/14",
            **dict(zip(fields, _free_ports(len(fields)), strict=True)),
        )
        key = add_key(data / "api-keys.json", "bench", ["*"])
        try:
            up(settings)
            yield settings, key
        finally:
            down(settings)
