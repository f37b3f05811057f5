"""Running the ``fovea`` command line from integration tests, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping


def fovea_cli(
    *args: str,
    key: str = "",
    gateway: str | None = None,
    timeout: float = 120,
    environment: Mapping[str, str | None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m fovea ARGS`` with ``FOVEA_API_KEY=key`` and ``FOVEA_GATEWAY=gateway`` (None: unset, so the
    command uses its default or the address it is given), and ``environment``'s variables set (None: unset);
    output captured as text, never raises on failure."""
    env = {k: v for k, v in os.environ.items() if k not in ("FOVEA_GATEWAY", "FOVEA_API_KEY")}
    env["FOVEA_API_KEY"] = key
    if gateway is not None:
        env["FOVEA_GATEWAY"] = gateway
    for name, value in (environment or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "-m", "fovea", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=timeout,
    )
