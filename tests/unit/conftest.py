"""Unit tests see every setting's default.

``pytest tests`` runs the integration tests first, and their stack fixture sets the stack's ``FOVEA_*``
variables in this process (door policies, webhook endpoints, short retry timings...). A unit test that builds
a settings class must not inherit them, so each unit test runs with every ``FOVEA_*`` variable hidden; a
test that wants one sets it with ``monkeypatch.setenv``.

Tests that need Redis get a real ``redis-server`` (no persistence), started once per session on a free port
(:func:`redis_server`); each test module gets its own empty database of it (:func:`redis_url`).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from face_models import dlib_reference, in_process, mtcnn, photos, repository, resnet  # noqa: F401 (fixtures)
from ports import free_port

REDIS_DATABASES = 64  # one per test module that asks for redis_url


@pytest.fixture(autouse=True)
def _default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("FOVEA_")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``redis-server`` on a free port for the whole session, its files in a temporary folder, nothing
    persisted: yields its URL without a database (``redis://127.0.0.1:<port>``). Skips the tests that ask
    for it when ``redis-server`` is not installed."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (make setup installs it)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    args += ["--dir", str(folder), "--databases", str(REDIS_DATABASES)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    client.close()
    yield f"redis://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


_databases = itertools.count()


@pytest.fixture(scope="module")
def redis_url(redis_server: str) -> str:
    """An empty database of :func:`redis_server` for this test module alone (as if it had its own server)."""
    db = next(_databases)
    if db >= REDIS_DATABASES:
        raise RuntimeError(f"more than {REDIS_DATABASES} test modules use redis_url: raise REDIS_DATABASES")
    url = f"{redis_server}/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url
