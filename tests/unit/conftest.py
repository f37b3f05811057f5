"""Unit tests see every setting's default.

``pytest tests`` runs the integration tests first, and their stack fixture sets the stack's ``FOVEA_*``
variables in this process (door policies, webhook endpoints, short retry timings...). A unit test that builds
a settings class must not inherit them, so each unit test runs with every ``FOVEA_*`` variable hidden; a
test that wants one sets it with ``monkeypatch.setenv``.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("FOVEA_")]:
        monkeypatch.delenv(name)
