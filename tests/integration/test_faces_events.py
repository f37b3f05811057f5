"""Issue 10, item 4, through the real gateway and stack: WatchEvents sees a GRANT, a DENY and a
presentation-attack failure, filtered and resumed from an event id; signed webhooks reach a receiver started
after the events were made and the faces service restarted (then answering 503 for a while) exactly once per
delivery id; a receiver that
never answers ends in the dead-letter list, which can be listed (CLI too) and redriven."""

from __future__ import annotations

import io
import json
import random
import socket
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from PIL import Image

from fovea.client import FaceEvent, FoveaClient, FoveaClientError
from fovea.faces.events.core.webhooks import DELIVERY_HEADER, WebhookRejected, verify_webhook
from fovea.gateway.auth import add_key
from fovea.stack.control import status

from .cli import fovea_cli
from .conftest import PAD_DOOR, WEBHOOK_SECRET, Stack, eventually
from .faces_photos import new_id, photo, photo_path

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gallery(client: FoveaClient) -> str:
    gallery = new_id("events")
    client.create_gallery(gallery)
    client.enroll(gallery, "obama", [photo("obama")])
    return gallery


def still_burst(name: str, frames: int = 5) -> list[bytes]:
    """A photo held still, as a burst never sent before (one pixel made random: the PAD door refuses frames
    it has seen as a replay, which is a presentation-attack failure too, but not the geometry check's)."""
    image = Image.open(photo_path(name)).convert("RGB")
    image.putpixel((0, 0), tuple(random.randrange(256) for _ in range(3)))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=95)
    return [buf.getvalue()] * frames


def collect(client: FoveaClient, count: int, **filters: Any) -> list[FaceEvent]:
    """The first ``count`` events of a watch (the watch ends at 120 s at the latest)."""
    out: list[FaceEvent] = []
    for event in client.watch_events(timeout_s=120, **filters):
        out.append(event)
        if len(out) == count:
            break
    return out


def test_watch_events_sees_grant_deny_and_pad_failure(
    stack: Stack, client: FoveaClient, gallery: str
) -> None:
    keys = stack.settings.data / "api-keys.json"
    watcher = stack.client(add_key(keys, new_id("events"), ["faces:events"]))
    verifier = stack.client(add_key(keys, new_id("verify"), ["faces:verify"]))
    eventually(lambda: verifier.verify(gallery, "obama", photo("obama2")), timeout_s=10)  # keys reloaded
    denied = pytest.raises(FoveaClientError, collect, verifier, 1)
    assert denied.value.code == "PERMISSION_DENIED" and "faces:events" in denied.value.message

    door = new_id("door")
    with ThreadPoolExecutor(2) as pool:
        at_door = pool.submit(collect, watcher, 3, doors=[door])
        pad = pool.submit(collect, watcher, 1, doors=[PAD_DOOR], kinds=["pad_failed"])
        time.sleep(2.0)  # both watches are open (live: only events from now on)
        grant = verifier.verify_access(door, gallery, "obama", [photo("obama2")])
        deny = verifier.verify_access(door, gallery, "obama", [photo("biden")])
        attack = verifier.verify_access(PAD_DOOR, gallery, "obama", still_burst("obama2"))
        events, [pad_event] = at_door.result(timeout=120), pad.result(timeout=120)
    assert grant.decision == "GRANT" and deny.decision == "DENY" and attack.decision == "DENY", attack
    assert [(e.kind, e.audit_id) for e in events] == [
        ("access_granted", grant.audit_id),
        ("access_denied", deny.audit_id),
        ("unknown_face", deny.audit_id),  # the face matched nobody it was compared with
    ]
    first = events[0]
    assert first.door_id == door and first.gallery_id == gallery and first.identity_id == "obama"
    assert first.decision == "GRANT" and first.reason_kind == "match" and first.request_id == grant.request_id
    assert events[1].decision == "DENY" and "no match" in events[1].reason
    assert pad_event.audit_id == attack.audit_id and pad_event.decision == "DENY"
    assert "geometry" in pad_event.reason and pad_event.reason_kind == "pad"

    # Resumed from an event id: what came after it is replayed (then it would go on live).
    replayed = collect(watcher, 2, doors=[door], after=first.event_id)
    assert [e.event_id for e in replayed] == [e.event_id for e in events[1:]]
    # ...the same through the CLI, one line per event (it stops at its --timeout)
    proc = cli(
        stack, watcher.api_key, "faces", "events", "--door", door, "--after", first.event_id, "--timeout", "5"
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and "access_denied" in lines[0] and "unknown_face" in lines[1], lines
    assert lines[0].startswith(events[1].event_id) and f"door {door} obama" in lines[0]

    # A watcher without faces:admin learns no more about who is enrolled than VerifyAccess tells it: an
    # identity that is not enrolled reads like a non-match, event for event.
    ghost_door = new_id("door")
    ghost = verifier.verify_access(ghost_door, gallery, new_id("nobody"), [photo("obama2")])
    assert ghost.decision == "DENY" and ghost.reason_kind == "no_match", ghost
    ghost_events = collect(watcher, 2, doors=[ghost_door], after=first.event_id)
    assert [(e.kind, e.reason, e.reason_kind, e.audit_id) for e in ghost_events] == [
        ("access_denied", "no match", "no_match", ghost.audit_id),
        ("unknown_face", "no match", "no_match", ghost.audit_id),
    ]

    for kwargs, code, text in [
        ({"after": "yesterday"}, "INVALID_ARGUMENT", "not an event id"),
        ({"kinds": ["granted"]}, "INVALID_ARGUMENT", "unknown event kinds"),
    ]:
        with pytest.raises(FoveaClientError) as info:
            collect(watcher, 1, **kwargs)
        assert info.value.code == code and text in info.value.message, info.value
    watcher.close()
    verifier.close()


def cli(stack: Stack, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    return fovea_cli(*args, key=key, gateway=stack.gateway)


class Receiver(ThreadingHTTPServer):
    """A webhook receiver: answers 503 to its first ``fail_first`` requests, then verifies each delivery
    (signature, timestamp within 60 s) and answers 200 (400 when it does not verify)."""

    daemon_threads = True

    def __init__(self, port: int, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.requests: Counter[str] = Counter()  # every POST, by delivery id
        self.accepted: list[tuple[str, dict[str, Any]]] = []  # answered 200: (delivery id, event)
        self.rejected: list[str] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        delivery = self.headers.get(DELIVERY_HEADER, "")
        status = 200
        with self.server.lock:
            self.server.requests[delivery] += 1
            if self.server.fail_first > 0:
                self.server.fail_first -= 1
                status = 503
            else:
                try:
                    event = verify_webhook(WEBHOOK_SECRET, dict(self.headers.items()), body, 60)
                    self.server.accepted.append((delivery, event))
                except WebhookRejected as exc:
                    self.server.rejected.append(str(exc))
                    status = 400
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def all_healthy(stack: Stack) -> None:
    unhealthy = [p.name for p in status(stack.settings) if not p.healthy]
    assert not unhealthy, unhealthy


def test_webhooks_reach_a_receiver_that_was_down_once_per_delivery(
    stack: Stack, client: FoveaClient, gallery: str
) -> None:
    door = new_id("hook-door")
    grant = client.verify_access(door, gallery, "obama", [photo("obama2")])
    deny = client.verify_access(door, gallery, "obama", [photo("biden")])
    attack = client.verify_access(PAD_DOOR, gallery, "obama", still_burst("obama2"))
    time.sleep(3.0)  # nobody listens: every attempt is refused and retried
    # The faces service restarts meanwhile: what it had read and not delivered is pending in Redis, and the
    # new process (same consumer name, <host>:<port>) takes it up at start.
    stack.supervisor.stop_process("faces")
    stack.supervisor.start_process("faces")
    eventually(lambda: all_healthy(stack), timeout_s=120, interval_s=1.0)
    receiver = Receiver(stack.webhook_port, fail_first=5)  # then up, but failing for a while
    try:

        def arrived() -> None:
            with receiver.lock:
                audits = {e["audit_id"] for _, e in receiver.accepted}
            assert {grant.audit_id, deny.audit_id, attack.audit_id} <= audits

        eventually(arrived, timeout_s=60, interval_s=0.5)
        time.sleep(3.0)  # and nothing comes twice afterwards
        with receiver.lock:
            accepted, requests, rejected = (
                list(receiver.accepted),
                Counter(receiver.requests),
                receiver.rejected,
            )
    finally:
        receiver.stop()
    assert not rejected, rejected  # every delivery verified: signature and timestamp
    counts = Counter(d for d, _ in accepted)
    assert counts and max(counts.values()) == 1, [d for d, n in counts.items() if n > 1]
    assert sum(requests.values()) >= len(accepted) + 5  # the 503s were retried
    kinds: dict[str, list[str]] = {}
    for delivery, event in accepted:
        assert delivery == f"{event['event_id']}.receiver"
        kinds.setdefault(event["audit_id"], []).append(event["kind"])
    assert kinds[grant.audit_id] == ["access_granted"]
    assert sorted(kinds[deny.audit_id]) == ["access_denied", "unknown_face"]
    assert sorted(kinds[attack.audit_id]) == ["access_denied", "pad_failed"], attack


def test_a_receiver_that_never_answers_ends_in_the_dead_letters(stack: Stack, client: FoveaClient) -> None:
    silent = socket.socket()  # connections are taken (the kernel's backlog), never answered
    silent.bind(("127.0.0.1", stack.silent_port))
    silent.listen(64)
    gallery = new_id("dead")
    client.create_gallery(gallery)
    try:
        client.enroll(gallery, "obama", [photo("obama")])  # "silent" wants enrolments: 2 attempts of 1 s

        def dead() -> Any:
            [letter] = [
                d for d in client.webhook_dead_letters("silent", 1000) if d.event.gallery_id == gallery
            ]
            return letter

        letter = eventually(dead, timeout_s=30, interval_s=0.5)
    finally:
        silent.close()
    assert letter.event.kind == "enrolled" and letter.event.identity_id == "obama" and letter.attempts == 2
    assert "no answer within 1s" in letter.last_error and letter.delivery_id.endswith(".silent")
    proc = cli(stack, stack.admin_key, "faces", "webhooks", "dead-letters", "--endpoint", "silent", "--json")
    assert proc.returncode == 0, proc.stderr
    assert letter.delivery_id in {d["delivery_id"] for d in json.loads(proc.stdout)}

    # Redriven once the receiver answers: delivered with the same delivery id, gone from the list.
    receiver = Receiver(stack.silent_port)
    try:
        proc = cli(
            stack, stack.admin_key, "faces", "webhooks", "redrive", "silent", letter.delivery_id, "--json"
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == {"redriven": 1, "skipped": 0, "skipped_delivery_ids": []}

        def delivered() -> None:
            with receiver.lock:
                assert [d for d, _ in receiver.accepted] == [letter.delivery_id]

        eventually(delivered, timeout_s=30, interval_s=0.5)
    finally:
        receiver.stop()
    assert letter.delivery_id not in {d.delivery_id for d in client.webhook_dead_letters("silent", 1000)}
    with pytest.raises(FoveaClientError) as info:
        client.redrive_webhooks("nowhere")
    assert info.value.code == "NOT_FOUND"
