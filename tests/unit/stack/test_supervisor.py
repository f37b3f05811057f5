"""The local stack's processes (src/fovea/stack/supervisor.py, control.py): the internal token reaches the
gateway and every service, Triton and the stack's own Redis stay on loopback, Redis requires a password
that no command line shows, and the files that hold secrets are private."""

from __future__ import annotations

from pathlib import Path

import pytest

from fovea.stack.config import StackSettings
from fovea.stack.control import ensure_secret, redacted
from fovea.stack.redis_setup import RedisPlan, plan_redis
from fovea.stack.supervisor import Supervisor, programs, render_config


@pytest.fixture()
def settings(tmp_path: Path) -> StackSettings:
    settings = StackSettings(data_dir=tmp_path, host="0.0.0.0", redis_url="")
    ensure_secret(settings.internal_token_file)
    ensure_secret(settings.redis_password_file)
    return settings


def test_secrets_are_private_and_kept(settings: StackSettings) -> None:
    for path in (settings.internal_token_file, settings.redis_password_file):
        assert path.stat().st_mode & 0o777 == 0o600
        assert len(path.read_text().strip()) >= 32
    before = settings.internal_token_file.read_text()
    ensure_secret(settings.internal_token_file)
    assert settings.internal_token_file.read_text() == before


def test_the_token_reaches_the_gateway_and_every_service(settings: StackSettings) -> None:
    progs = {
        p.name: p for p in programs(settings, RedisPlan("redis://:pw@127.0.0.1:6390/0", start_own=False))
    }
    token = str(settings.internal_token_file)
    for name in ("detection", "faces", "style", "gateway"):
        assert progs[name].env[f"FOVEA_{name.upper()}_INTERNAL_TOKEN_FILE"] == token
    assert progs["triton"].env["FOVEA_TRITON_HOST"] == "127.0.0.1"  # whatever FOVEA_HOST says
    assert settings.triton_grpc_url.startswith("127.0.0.1:")
    assert progs["detection"].env["FOVEA_DETECTION_TRITON_URL"] == settings.triton_grpc_url


def test_own_redis_has_a_password_on_loopback(
    settings: StackSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shutil.which", lambda _name: "/usr/bin/redis-server")
    password = settings.redis_password_file.read_text().strip()
    plan = plan_redis("", settings.redis_port, password)
    assert plan.start_own and plan.url == f"redis://:{password}@127.0.0.1:{settings.redis_port}/0"
    progs = {p.name: p for p in programs(settings, plan)}
    command = progs["redis"].command
    assert password not in " ".join(command)  # `ps` shows command lines
    conf = Path(command[-1])
    assert conf.stat().st_mode & 0o777 == 0o600
    lines = conf.read_text().splitlines()
    assert f"requirepass {password}" in lines and "bind 127.0.0.1" in lines
    assert progs["faces"].env["FOVEA_FACES_REDIS_URL"] == plan.url


def test_supervisor_config_is_private(
    settings: StackSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    progs = programs(settings, RedisPlan("redis://:secret@127.0.0.1:6390/0", start_own=False))
    text = render_config(settings, progs)
    assert "secret@" in text  # the Redis URL with its password: hence 0600
    sup = Supervisor(tmp_path)
    monkeypatch.setattr("subprocess.run", lambda *a, **k: None)
    monkeypatch.setattr(Supervisor, "running", lambda self: True)
    sup.start(text)
    assert sup.config.stat().st_mode & 0o777 == 0o600


def test_status_hides_the_redis_password() -> None:
    assert redacted("redis://:s3cret@127.0.0.1:6390/0") == "redis://:***@127.0.0.1:6390/0"
    assert redacted("redis://fovea:s3cret@redis:6379/0") == "redis://fovea:***@redis:6379/0"
    assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_the_faces_service_gets_the_mqtt_broker_only_when_one_answered(settings: StackSettings) -> None:
    plan = RedisPlan("redis://127.0.0.1:6379/0", start_own=False)
    with_broker = {p.name: p for p in programs(settings, plan, "mqtt://127.0.0.1:1883")}
    assert with_broker["faces"].env["FOVEA_FACES_MQTT_URL"] == "mqtt://127.0.0.1:1883"
    without = {p.name: p for p in programs(settings, plan)}
    assert "FOVEA_FACES_MQTT_URL" not in without["faces"].env
