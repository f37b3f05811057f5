"""Issue 24, through the real stack: a stream ends within seconds of `fovea keys revoke` and passes on nothing
made after it (gRPC and the HTTP port's server-sent events); the watch slots of 60 watches whose 5 client
processes were killed -9 are free again at once; a killed training worker's job is requeued within a minute
and completed once, a second job for the same classifier refused meanwhile; a training folder with a corrupt
file is refused naming the file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import skimage.data
from PIL import Image

from fovea.classify.store import TrainingStore
from fovea.client import FaceEvent, FoveaClient, FoveaClientError
from fovea.faces.v1 import faces_pb2
from fovea.gateway.auth import add_key

from .cli import fovea_cli
from .conftest import Stack, eventually
from .faces_photos import new_id, photo

pytestmark = pytest.mark.integration

WATCH = "/fovea.faces.v1.FacesService/WatchEvents"


@pytest.fixture(scope="module")
def gallery(client: FoveaClient) -> str:
    gallery = new_id("hardening")
    client.create_gallery(gallery)
    client.enroll(gallery, "obama", [photo("obama")])
    return gallery


def keys_file(stack: Stack) -> Path:
    return stack.settings.data / "api-keys.json"


class Watcher(threading.Thread):
    """Reads a watch until it ends, noting each event with when it came, and how the watch ended."""

    def __init__(self, client: FoveaClient, door: str) -> None:
        super().__init__(daemon=True)
        self.client, self.door = client, door
        self.events: list[tuple[float, FaceEvent]] = []
        self.error: FoveaClientError | None = None
        self.ended_at = 0.0

    def run(self) -> None:
        try:
            for event in self.client.watch_events(doors=[self.door], timeout_s=300):
                self.events.append((time.time(), event))
        except FoveaClientError as exc:
            self.error = exc
        finally:
            self.ended_at = time.monotonic()


class SseWatcher(threading.Thread):
    """The same watch over the HTTP port (server-sent events): every line, and when the response ended."""

    def __init__(self, stack: Stack, key: str, door: str) -> None:
        super().__init__(daemon=True)
        url = f"http://{stack.settings.host}:{stack.settings.gateway_http_port}{WATCH}"
        self.request = urllib.request.Request(
            url,
            data=json.dumps({"doorIds": [door]}).encode(),
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/json",
                "Accept": "text/event-stream",
            },
        )
        self.lines: list[str] = []
        self.ended_at = 0.0

    def run(self) -> None:
        try:
            with urllib.request.urlopen(self.request, timeout=300) as response:
                for raw in response:
                    self.lines.append(raw.decode().rstrip("\n"))
        finally:
            self.ended_at = time.monotonic()


def test_streams_end_within_10_s_of_fovea_keys_revoke_and_get_nothing_made_after(
    stack: Stack, client: FoveaClient, gallery: str
) -> None:
    door = new_id("door")
    name = new_id("door-panel")
    key = add_key(keys_file(stack), name, ["faces:events"])
    with stack.client(key) as panel:
        grpc_watch, sse_watch = Watcher(panel, door), SseWatcher(stack, key, door)
        grpc_watch.start()
        sse_watch.start()
        time.sleep(2.0)  # both watches are open (live: events from now on)
        before = client.verify_access(door, gallery, "obama", [photo("obama2")])
        eventually(lambda: _seen(grpc_watch, before.audit_id), timeout_s=30)
        eventually(lambda: _sse_seen(sse_watch, before.audit_id), timeout_s=30)
        revoked = fovea_cli("keys", "revoke", name, "--file", str(keys_file(stack)))
        assert revoked.returncode == 0, revoked.stderr
        revoked_at, revoked_unix = time.monotonic(), time.time()
        after = client.verify_access(door, gallery, "obama", [photo("obama2")])  # made after the revocation
        grpc_watch.join(timeout=10)
        sse_watch.join(timeout=10)
        assert not grpc_watch.is_alive() and not sse_watch.is_alive(), "a stream outlived its revoked key"
        grpc_s, sse_s = grpc_watch.ended_at - revoked_at, sse_watch.ended_at - revoked_at
        print(f"revoked: the gRPC stream ended {grpc_s:.2f} s after, the SSE stream {sse_s:.2f} s after")
        assert grpc_s < 10 and sse_s < 10
        time.sleep(1.0)
    assert grpc_watch.error is not None and grpc_watch.error.code == "UNAUTHENTICATED"
    assert f"API key {name!r} was revoked while this call was open" in grpc_watch.error.message
    assert [e.audit_id for _, e in grpc_watch.events if e.audit_id == after.audit_id] == []
    assert all(e.unix_ms / 1000 <= revoked_unix for _, e in grpc_watch.events)
    assert after.audit_id not in "\n".join(sse_watch.lines)
    error_lines = [line for line in sse_watch.lines if line.startswith("data:") and "unauthenticated" in line]
    assert error_lines and "was revoked" in error_lines[-1], sse_watch.lines[-4:]
    refused = pytest.raises(FoveaClientError, stack.client(key).verify, gallery, "obama", photo("obama2"))
    assert refused.value.code == "UNAUTHENTICATED"


def _seen(watcher: Watcher, audit_id: str) -> None:
    assert any(e.audit_id == audit_id for _, e in watcher.events), "event not seen yet"


def _sse_seen(watcher: SseWatcher, audit_id: str) -> None:
    assert any(audit_id in line for line in watcher.lines), "event not seen yet"


HOLDER = """
import sys, time, grpc
from fovea.faces.v1 import faces_pb2
target, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
channel = grpc.insecure_channel(target)
calls = [
    channel.unary_stream("{watch}")(
        faces_pb2.WatchEventsRequest().SerializeToString(),
        metadata=(("authorization", "Bearer " + key),),
        timeout=120,
    )
    for _ in range(n)
]
for call in calls:
    call.initial_metadata()
print("open", flush=True)
time.sleep(600)
""".replace("{watch}", WATCH)


def open_watches(stack: Stack, keys: list[str], per_key: int) -> list[Any]:
    """``per_key`` watches of each key through the gateway, with a two-minute deadline; their calls."""
    channel = grpc.insecure_channel(stack.gateway)
    request = faces_pb2.WatchEventsRequest().SerializeToString()
    calls = [
        channel.unary_stream(WATCH)(request, metadata=(("authorization", f"Bearer {k}"),), timeout=120)
        for k in keys
        for _ in range(per_key)
    ]
    for call in calls:
        call.initial_metadata()
    return calls


def test_60_watches_of_5_killed_client_processes_are_freed_at_once(
    stack: Stack, client: FoveaClient, gallery: str
) -> None:
    """The faces service keeps 64 watch slots for every key; 5 processes x 12 watches through the gateway,
    killed -9 while door events flow: 60 new watches open within 15 s (they used to wait for the killed
    clients' deadlines)."""
    keys = [add_key(keys_file(stack), new_id("kiosk"), ["faces:events"]) for _ in range(5)]
    holders = [
        subprocess.Popen(
            [sys.executable, "-c", HOLDER, stack.gateway, key, "12"], stdout=subprocess.PIPE, text=True
        )
        for key in keys
    ]
    try:
        for holder in holders:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        door = new_id("door")
        flowing = threading.Event()

        def traffic() -> None:  # events on the wire while the clients die
            while not flowing.is_set():
                client.verify_access(door, gallery, "obama", [photo("obama2")])

        events = threading.Thread(target=traffic, daemon=True)
        events.start()
        time.sleep(1.0)
        for holder in holders:
            os.kill(holder.pid, signal.SIGKILL)
        killed = time.monotonic()
        flowing.set()
        events.join(timeout=30)
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
    while True:
        calls = open_watches(stack, keys, 12)
        time.sleep(1.0)  # a watch refused (RESOURCE_EXHAUSTED) has ended by now
        refused = [c for c in calls if c.done()]
        if not refused:
            break
        for call in calls:
            call.cancel()
        assert time.monotonic() - killed < 15, f"{len(refused)} of 60 watches refused: {refused[0].details()}"
    print(f"60 new watches open {time.monotonic() - killed - 1.0:.1f} s after the kill")
    for call in calls:
        call.cancel()


# ------------------------------------------------------------------------------------------ training


def training_folder(folder: Path, per_class: int) -> Path:
    """``folder/face`` and ``folder/other``: lfw_subset's 25x25 grey photos, ``per_class`` of each."""
    images = skimage.data.lfw_subset()
    for label, items in (("face", images[:100]), ("other", images[100:])):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i, pixels in enumerate(items[:per_class]):
            Image.fromarray((np.asarray(pixels) * 255).round().astype(np.uint8)).save(
                folder / label / f"{i:03d}.png"
            )
    return folder


def test_a_training_folder_with_a_corrupt_file_is_refused_naming_it(stack: Stack, tmp_path: Path) -> None:
    folder = training_folder(tmp_path / "photos", 12)
    (folder / "other" / "007.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a picture")
    (folder / "face" / "notes.txt").write_text("taken in 2024")
    proc = fovea_cli(
        "classifiers", "train", "corrupt-set", str(folder), key=stack.admin_key, gateway=stack.gateway
    )
    assert proc.returncode != 0
    assert "warning: skipped face/notes.txt" in proc.stderr
    assert "INVALID_ARGUMENT" in proc.stderr and "other/007.png (class 'other')" in proc.stderr, proc.stderr


def test_a_killed_training_worker_is_requeued_within_a_minute_and_the_job_completed_once(
    stack: Stack, tmp_path: Path
) -> None:
    url = json.loads((stack.settings.data / "stack.json").read_text())["redis_url"]
    store = TrainingStore(url, 600, 600)
    images = [
        (label, path.read_bytes())
        for label in ("face", "other")
        for path in sorted((training_folder(tmp_path / "set", 100) / label).iterdir())
    ]
    name = new_id("killed")
    with stack.client() as client:
        job = client.train_classifier(name, images, epochs=30, augment_copies=4)
        while (found := client.training_job(job.job_id)).state != "RUNNING" or not found.stage.startswith(
            "features"
        ):
            assert found.state in ("QUEUED", "RUNNING"), found
            time.sleep(0.05)
        second = pytest.raises(FoveaClientError, client.train_classifier, name, images)
        assert second.value.code == "FAILED_PRECONDITION"
        assert f"is being trained by job {job.job_id} (RUNNING" in second.value.message
        pid = stack.supervisor.proxy().supervisor.getProcessInfo("classify-worker")["pid"]
        os.kill(pid, signal.SIGKILL)  # mid-job ("features ..."): its heartbeat stops
        killed = time.monotonic()
        while (record := store.get(job.job_id)).worker_losses == 0:
            assert time.monotonic() - killed < 60, f"not requeued within 60 s: {record}"
            time.sleep(0.25)
        requeued_s = time.monotonic() - killed
        print(f"training job requeued {requeued_s:.1f} s after the kill: {record.state} {record.error!r}")
        final = list(client.watch_training_job(job.job_id, timeout_s=300))[-1]
        versions = client.classifier_versions(name)
    assert final.state == "SUCCEEDED", final.error
    record = store.get(job.job_id)
    assert (record.attempts, record.worker_losses) == (2, 1)  # ran again on the restarted worker...
    assert [v.job_id for v in versions.versions] == [job.job_id]  # ...and made one version
    assert final.result is not None and final.result.version == 1
