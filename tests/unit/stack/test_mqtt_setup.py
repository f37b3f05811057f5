"""mqtt_setup.py: `fovea up` uses a broker only when one answers (a real Mosquitto on a free port)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ports import free_port

from fovea.stack.config import StackSettings
from fovea.stack.mqtt_setup import mqtt_answers, plan_mqtt


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if exe is None:
        pytest.skip("mosquitto is not installed (Debian: apt-get install mosquitto)")
    port = free_port()
    conf = tmp_path_factory.mktemp("mosquitto") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    yield f"mqtt://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def test_a_broker_that_answers_is_used(broker: str) -> None:
    assert mqtt_answers(broker)
    assert plan_mqtt(broker) == broker


def test_no_broker_no_mqtt() -> None:
    nothing = f"mqtt://127.0.0.1:{free_port()}"
    assert not mqtt_answers(nothing, timeout_s=0.5)
    assert plan_mqtt(nothing) == "" and plan_mqtt("") == ""
    assert not mqtt_answers("http://127.0.0.1:1883")


def test_the_stack_looks_for_mosquitto_on_its_usual_port_by_default() -> None:
    assert StackSettings().mqtt_url == "mqtt://127.0.0.1:1883"
