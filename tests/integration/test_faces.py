"""Faces through the real gateway: enroll / verify / identify on real photos, door access and its audit
trail (CLI too), bad input, two replicas kept in sync through Redis, Redis and Triton outages."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import redis
import tritonclient.grpc as triton_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from fovea.client import FoveaClient, FoveaClientError
from fovea.common.interceptors import INTERNAL_TOKEN_HEADER
from fovea.common.v1 import common_pb2
from fovea.contracts.face_detector import DETECTOR_OUTPUTS
from fovea.contracts.face_embedder import EMBEDDER_OUTPUT
from fovea.faces.tools.core.pad_render import photo_view
from fovea.faces.tools.core.pad_synth import rotation
from fovea.faces.v1 import faces_pb2, faces_pb2_grpc
from fovea.gateway.auth import add_key
from fovea.stack.control import status

from .cli import fovea_cli
from .conftest import PAD_DOOR, Stack, eventually, free_ports
from .faces_photos import blurred, corrupt, new_id, photo, photo_path, side_by_side, tiny_face

pytestmark = pytest.mark.integration

OBAMA_OTHERS = ["obama2", "obama3", "obama_partial_face", "obama_partial_face2"]


def error_of(fn: object, *args: object, **kwargs: object) -> FoveaClientError:
    with pytest.raises(FoveaClientError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    return info.value


def metric(port: int, name: str) -> float:
    """One unlabelled metric of a faces replica (e.g. ``fovea_faces_templates_count``)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"no {name} in the metrics"
    return float(match.group(1))


def templates_count(port: int) -> float:
    """What the replica's search matrices hold."""
    return metric(port, "fovea_faces_templates_count")


@pytest.fixture(scope="module")
def office(client: FoveaClient) -> str:
    """A gallery with Obama enrolled from one photo."""
    gallery = new_id("office")
    created = client.create_gallery(gallery, metadata={"site": "hq"})
    assert created.threshold == pytest.approx(0.6)  # the dlib model's default
    assert created.embedding_model == "dlib_face_recognition_resnet_model_v1"
    assert len(client.enroll(gallery, "obama", [photo("obama")], metadata={"name": "Barack Obama"})) == 1
    return gallery


def test_face_models_are_served_as_configured(stack: Stack) -> None:
    triton = triton_grpc.InferenceServerClient(stack.settings.triton_grpc_url)
    headers = {
        "triton-grpc-protocol-x-fovea-internal-token": stack.settings.internal_token_file.read_text().strip()
    }
    detector = triton.get_model_config("face_detector", as_json=True, headers=headers)["config"]
    embedder = triton.get_model_config("face_embedder", as_json=True, headers=headers)["config"]
    assert tuple(o["name"] for o in detector["output"]) == DETECTOR_OUTPUTS
    assert [o["name"] for o in embedder["output"]] == [EMBEDDER_OUTPUT]
    for config in (detector, embedder):
        assert "dynamic_batching" in config and config["instance_group"]
        assert {"WEIGHTS", "DEVICE"} <= set(config["parameters"])
    assert embedder["parameters"]["DISTANCE_THRESHOLD"]["string_value"] == "0.6"


def test_enroll_one_photo_then_verify(client: FoveaClient, office: str) -> None:
    for name in OBAMA_OTHERS:
        result = client.verify(office, "obama", photo(name))
        assert result.match, (name, result)
        assert result.distance < 0.5 and result.threshold == pytest.approx(0.6)
        assert result.embedding_model == "dlib_face_recognition_resnet_model_v1"
    biden = client.verify(office, "obama", photo("biden"))
    assert not biden.match and biden.distance > 0.7, biden
    identity = client.get_identity(office, "obama")
    assert identity.metadata == {"name": "Barack Obama"} and len(identity.templates) == 1
    gallery = client.get_gallery(office)
    assert gallery.identity_count == 1 and gallery.metadata == {"site": "hq"}


def test_identify_obama_and_unknown(client: FoveaClient, office: str) -> None:
    [found] = client.identify(office, photo("obama2"), top_k=3)
    assert found.identity == "obama" and found.distance < 0.5
    [stranger] = client.identify(office, photo("biden"))
    assert stranger.identity is None and stranger.distance > 0.6  # unknown: best distance above threshold
    assert stranger.candidates[0].identity == "obama"
    two = client.identify(office, side_by_side("obama2", "biden"), top_k=1)
    assert [f.identity for f in two] == ["obama", None]  # faces come largest first
    assert client.identify(office, photo("dog")) == []


def test_bad_input_gets_a_clear_status(client: FoveaClient, office: str) -> None:
    cases = [
        (client.enroll, (office, "x", [corrupt("obama")]), "INVALID_ARGUMENT", "could not be decoded"),
        (client.enroll, (office, "x", [b""]), "INVALID_ARGUMENT", "empty"),
        (client.enroll, (office, "x", [photo("dog")]), "INVALID_ARGUMENT", "no face found in photo 1 of 1"),
        (client.enroll, (office, "x", [side_by_side("obama", "biden")]), "INVALID_ARGUMENT", "holds 2 faces"),
        (client.enroll, (office, "x", [blurred("obama2")]), "INVALID_ARGUMENT", "too blurry"),
        (client.enroll, (office, "x", [tiny_face("obama")]), "INVALID_ARGUMENT", "too small"),
        (client.enroll, ("no-such-gallery", "x", [photo("obama")]), "NOT_FOUND", "no-such-gallery"),
        (client.enroll, ("bad gallery!", "x", [photo("obama")]), "INVALID_ARGUMENT", "gallery_id"),
        (client.enroll, (office, " x", [photo("obama")]), "INVALID_ARGUMENT", "identity_id"),
        (client.verify, (office, "nobody", photo("obama2")), "NOT_FOUND", "nobody"),
        (client.verify, ("no-such-gallery", "obama", photo("obama2")), "NOT_FOUND", "no-such-gallery"),
        (client.verify, (office, "obama", photo("dog")), "INVALID_ARGUMENT", "no face"),
        (client.identify, (office, corrupt("biden")), "INVALID_ARGUMENT", "could not be decoded"),
        (client.create_gallery, (office,), "ALREADY_EXISTS", office),
        (client.get_identity, (office, "nobody"), "NOT_FOUND", "nobody"),
        (client.delete_template, (office, "obama", "no-such-template"), "NOT_FOUND", "no-such-template"),
    ]
    for fn, args, code, text in cases:
        err = error_of(fn, *args)
        assert err.code == code and text in err.message, (fn.__name__, args[:2], err)
    duplicate = error_of(client.enroll, office, "obama", [photo("obama2")], create_only=True)
    assert duplicate.code == "ALREADY_EXISTS"
    # A refused request leaves nothing behind: the second photo of two has no face.
    half = error_of(client.enroll, office, "half", [photo("obama3"), photo("dog")])
    assert half.code == "INVALID_ARGUMENT" and "photo 2 of 2" in half.message
    assert error_of(client.get_identity, office, "half").code == "NOT_FOUND"
    assert len(client.get_identity(office, "obama").templates) == 1


def narrow_png(width: int = 16, height: int = 12000) -> bytes:
    """A valid photo too narrow to detect in once scaled to 1024 on its longer side (issue 9)."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (128, 128, 128)).save(buf, format="PNG")
    return buf.getvalue()


def test_extreme_aspect_ratio_is_invalid_argument(client: FoveaClient, office: str) -> None:
    for fn, args in (
        (client.enroll, (office, "x", [narrow_png()])),
        (client.verify, (office, "obama", narrow_png())),
        (client.identify, (office, narrow_png())),
    ):
        err = error_of(fn, *args)
        assert err.code == "INVALID_ARGUMENT" and "16x12000" in err.message and "crop it" in err.message, err


def test_pick_a_face_list_and_delete(client: FoveaClient) -> None:
    gallery = new_id("people")
    client.create_gallery(gallery, threshold=0.55)
    client.enroll(gallery, "biden", [side_by_side("obama", "biden")], face_index=1)  # the smaller face
    client.enroll(gallery, "obama", [photo("obama"), photo("obama3")])
    client.enroll(gallery, "zz-extra", [photo("obama_partial_face")])
    first = client.list_identities(gallery, page_size=2)
    second = client.list_identities(gallery, page_size=2, page_token=first.next_page_token)
    found = first.identities + second.identities
    assert [i.identity_id for i in found] == ["biden", "obama", "zz-extra"] and second.next_page_token == ""
    assert [len(i.templates) for i in first.identities] == [1, 2]
    assert client.verify(gallery, "biden", photo("biden")).match
    # One template deleted: the identity still matches through the other.
    obama = client.get_identity(gallery, "obama")
    client.delete_template(gallery, "obama", obama.templates[0].template_id)
    assert len(client.get_identity(gallery, "obama").templates) == 1
    assert client.verify(gallery, "obama", photo("obama2")).match
    # Deleted identities stop matching at once.
    client.delete_identity(gallery, "biden")
    [face] = client.identify(gallery, photo("biden"))
    assert face.identity is None
    assert error_of(client.verify, gallery, "biden", photo("biden")).code == "NOT_FOUND"
    client.delete_gallery(gallery)
    assert error_of(client.get_gallery, gallery).code == "NOT_FOUND"
    assert gallery not in [g.gallery_id for g in client.list_galleries()]


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return fovea_cli(*args, key=stack.admin_key, gateway=stack.gateway)


def test_door_access_and_its_audit_trail(stack: Stack, client: FoveaClient, office: str) -> None:
    door = new_id("door")
    granted = client.verify_access(door, office, "obama", [photo("obama2")])
    assert granted.decision == "GRANT", granted
    assert granted.distance < 0.5 and granted.threshold == pytest.approx(0.6)
    assert granted.embedding_model and granted.request_id and granted.audit_id
    assert granted.liveness == "NOT_CHECKED"  # no liveness check configured; the default policy allows it
    denied = client.verify_access(door, office, "obama", [photo("biden")])
    assert denied.decision == "DENY" and "no match" in denied.reason and denied.distance > 0.6
    # Failures are decisions too, never error statuses.
    for frames, identity, gallery, text in [
        ([photo("dog")], "obama", office, "no usable face"),
        ([corrupt("obama2")], "obama", office, "could not be decoded"),
        ([photo("obama2")], "nobody", office, "nobody"),
        ([photo("obama2")], "obama", "no-such-gallery", "no-such-gallery"),
        ([], "obama", office, "frames"),
    ]:
        result = client.verify_access(door, gallery, identity, frames)
        assert result.decision == "DENY" and text in result.reason, result
    records = client.audit_records(door, limit=10)
    assert len(records) == 7 and records[-1].audit_id == granted.audit_id  # newest first
    assert records[-1].decision == "GRANT" and records[-1].request_id == granted.request_id
    assert records[-1].liveness == "NOT_CHECKED" and records[-1].matching_frames == 1

    # The same through the CLI
    proc = cli(
        stack,
        "faces",
        "access",
        "--door",
        door,
        "--gallery",
        office,
        "--identity",
        "obama",
        str(photo_path("obama3")),
    )
    assert proc.returncode == 0 and proc.stdout.startswith("GRANT: match"), proc.stdout + proc.stderr
    proc = cli(
        stack,
        "faces",
        "access",
        "--door",
        door,
        "--gallery",
        office,
        "--identity",
        "obama",
        str(photo_path("biden")),
    )
    assert proc.returncode == 2 and proc.stdout.startswith("DENY: no match"), proc.stdout + proc.stderr
    proc = cli(stack, "faces", "audit", "--door", door, "--limit", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    latest = json.loads(proc.stdout)
    assert [r["decision"] for r in latest] == ["DENY", "GRANT"] and latest[0]["door_id"] == door
    human = cli(stack, "faces", "audit", "--door", door, "--limit", "2").stdout
    assert "DENY" in human and "GRANT" in human and "obama" in human


def mpo_photo(name: str) -> bytes:
    """The portrait as a phone camera's MPO (the photo, then a second, small image)."""
    buf = io.BytesIO()
    Image.open(photo_path(name)).convert("RGB").save(
        buf, format="MPO", save_all=True, append_images=[Image.new("RGB", (64, 48), (128, 128, 128))]
    )
    return buf.getvalue()


def test_door_inputs(stack: Stack, client: FoveaClient, office: str) -> None:
    """Issue 9, item 7: door ids checked like other ids, a burst of two people denied, MPO photos read."""
    for door in (" ", "*", "../../x"):
        bad = client.verify_access(door, office, "obama", [photo("obama2")])
        assert bad.decision == "DENY" and "door_id" in bad.reason and bad.audit_id, (door, bad)
    door = new_id("door")
    mixed = client.verify_access(door, office, "obama", [photo("obama2"), photo("biden")])
    assert mixed.decision == "DENY" and "different people" in mixed.reason, mixed
    same = client.verify_access(door, office, "obama", [photo("obama2"), photo("obama3")])
    assert same.decision == "GRANT" and "2/2 frames" in same.reason, same
    phone = client.verify_access(door, office, "obama", [mpo_photo("obama2")])
    assert phone.decision == "GRANT", phone
    assert client.verify(office, "obama", mpo_photo("obama3")).match
    # The caller's request id is kept apart from the server's, in the answer and in the audit record.
    with grpc.insecure_channel(stack.gateway) as channel:
        stub = faces_pb2_grpc.FacesServiceStub(channel)
        request = faces_pb2.VerifyAccessRequest(
            door_id=door,
            gallery_id=office,
            claimed_identity_id="obama",
            frames=[common_pb2.Image(data=photo("obama2"))],
        )
        auth = ("authorization", f"Bearer {stack.admin_key}")
        reply = stub.VerifyAccess(request, metadata=[auth, ("x-request-id", "controller-42")], timeout=60)
    assert reply.decision == faces_pb2.GRANT and reply.client_request_id == "controller-42"
    assert len(reply.request_id) == 32
    [record] = client.audit_records(door, limit=1)
    assert record.audit_id == reply.audit_id and record.request_id == reply.request_id


def jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def test_a_still_photo_burst_is_denied_where_the_door_requires_pad(stack: Stack, office: str) -> None:
    """Issue 10: a photo held up still, sent as a burst, is DENY at a door whose policy requires
    presentation-attack detection, with the geometry check named in the reason and in the audit record; so
    is the photo tilted in 3D over the burst."""
    obama2 = Image.open(photo_path("obama2")).convert("RGB")
    with grpc.insecure_channel(stack.gateway) as channel:
        stub = faces_pb2_grpc.FacesServiceStub(channel)
        auth = [("authorization", f"Bearer {stack.admin_key}")]
        request = faces_pb2.VerifyAccessRequest(
            door_id=PAD_DOOR,
            gallery_id=office,
            claimed_identity_id="obama",
            frames=[common_pb2.Image(data=photo("obama2"))] * 5,
        )
        reply = stub.VerifyAccess(request, metadata=auth, timeout=60)
        assert reply.decision == faces_pb2.DENY and "geometry: undetermined" in reply.reason, reply
        assert reply.pad.check == "geometry" and reply.pad.verdict == faces_pb2.PAD_UNDECIDED
        assert reply.distance < 0.5  # the face matched: the check, not the match, denied it
        # other doors keep the default policy (off): the same burst is granted, the check not run
        request.door_id = new_id("door")
        elsewhere = stub.VerifyAccess(request, metadata=auth, timeout=60)
        assert elsewhere.decision == faces_pb2.GRANT and elsewhere.pad.verdict == faces_pb2.PAD_NOT_CHECKED
        # the photo printed and tilted towards the camera over the burst (perspective warps): a plane too
        tilted = [jpeg(photo_view(obama2, rotation(-30 + 15 * k, 10, 0), 350, (960, 720))) for k in range(5)]
        request = faces_pb2.VerifyAccessRequest(
            door_id=PAD_DOOR,
            gallery_id=office,
            claimed_identity_id="obama",
            frames=[common_pb2.Image(data=f) for f in tilted],
        )
        tilt = stub.VerifyAccess(request, metadata=auth, timeout=60)
        assert tilt.decision == faces_pb2.DENY and "geometry:" in tilt.reason, tilt  # flat or undetermined
        assert tilt.pad.verdict in (faces_pb2.PAD_ATTACK, faces_pb2.PAD_UNDECIDED) and tilt.distance < 0.6, (
            tilt
        )
        records = stub.ListAuditRecords(
            faces_pb2.ListAuditRecordsRequest(door_id=PAD_DOOR, limit=2), metadata=auth, timeout=30
        ).records
    assert [r.audit_id for r in records] == [tilt.audit_id, reply.audit_id]
    assert records[1].pad == reply.pad and "geometry" in records[1].reason


@pytest.fixture(scope="module")
def scoped(stack: Stack, office: str) -> Iterator[dict[str, FoveaClient]]:
    """Clients whose keys hold one scope each, added to the running gateway's keys file (reloaded)."""
    keys = stack.settings.data / "api-keys.json"
    clients = {
        scope: stack.client(add_key(keys, new_id(scope.replace(":", "-")), [scope]))
        for scope in ("faces:verify", "faces:identify")
    }
    eventually(lambda: clients["faces:identify"].identify(office, photo("obama2")), timeout_s=10)
    eventually(lambda: clients["faces:verify"].verify(office, "obama", photo("obama2")), timeout_s=10)
    yield clients
    for c in clients.values():
        c.close()


def test_a_key_without_faces_admin_learns_no_gallery(
    client: FoveaClient, office: str, scoped: dict[str, FoveaClient]
) -> None:
    """Issue 9, item 4, through the real gateway: scopes travel from the key to the faces service."""
    kiosk = scoped["faces:identify"]
    [stranger] = kiosk.identify(office, photo("biden"), top_k=1000)
    assert stranger.identity is None and stranger.candidates == []  # the admin would see Obama listed
    assert [c.identity for c in client.identify(office, photo("biden"), top_k=1000)[0].candidates] == [
        "obama"
    ]
    [obama] = kiosk.identify(office, photo("obama2"), top_k=1000)
    assert obama.identity == "obama" and [c.identity for c in obama.candidates] == ["obama"]

    door = scoped["faces:verify"]
    not_enrolled, no_match = (
        door.verify(office, "nobody", photo("biden")),
        door.verify(office, "obama", photo("biden")),
    )
    assert not_enrolled == no_match and not no_match.match and no_match.distance == -1
    assert door.verify(office, "obama", photo("obama2")).match
    door_id = new_id("door")
    unknown = door.verify_access(door_id, office, "nobody", [photo("biden")])
    other = door.verify_access(door_id, office, "obama", [photo("biden")])
    for r in (unknown, other):
        assert r.decision == "DENY" and r.reason == "no match" and r.distance == -1, r
    records = client.audit_records(door_id, limit=2)
    assert [r.audit_id for r in records] == [other.audit_id, unknown.audit_id]
    assert "nobody" in records[1].reason  # the audit keeps the full reason


def test_eval_over_a_folder(stack: Stack, tmp_path: Path) -> None:
    folder = tmp_path / "people"
    for identity, names in {"obama": ["obama", *OBAMA_OTHERS], "biden": ["biden"]}.items():
        (folder / identity).mkdir(parents=True)
        for name in names:
            (folder / identity / f"{name}.jpg").write_bytes(photo(name))
    proc = cli(stack, "faces", "eval", str(folder), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert (report["genuine_pairs"], report["impostor_pairs"]) == (10, 5)  # C(5,2) and 5 x 1
    assert report["roc_auc"] == 1.0 and report["eer"] == 0.0  # Obama-Obama 0.21-0.45, Obama-Biden 0.77-0.86
    assert report["tar_at_far"] == {"0.01": 1.0, "0.001": 1.0}
    assert 0.45 < report["threshold_for_target_far"] < 0.78
    assert report["tar_at_default_threshold"] == 1.0 and report["far_at_default_threshold"] == 0.0
    assert not [
        g
        for g in FoveaClient(stack.gateway, stack.admin_key).list_galleries()
        if g.gallery_id.startswith("eval-")
    ]


# ---------------------------------------------------------------------------------------------- replicas


@pytest.fixture
def second_replica(stack: Stack) -> Iterator[tuple[str, int]]:
    """Another ``fovea serve faces`` on the stack's Triton and Redis: (address, metrics port)."""
    port, metrics_port = free_ports(2)
    redis_url = json.loads((stack.settings.data / "stack.json").read_text())["redis_url"]
    env = {
        **os.environ,
        "FOVEA_FACES_HOST": "127.0.0.1",
        "FOVEA_FACES_PORT": str(port),
        "FOVEA_FACES_METRICS_PORT": str(metrics_port),
        "FOVEA_FACES_TRITON_URL": stack.settings.triton_grpc_url,
        "FOVEA_FACES_REDIS_URL": redis_url,
        "FOVEA_FACES_INTERNAL_TOKEN_FILE": str(stack.settings.internal_token_file),
    }
    log = open(stack.settings.data / "logs" / "faces-replica-2.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "fovea", "serve", "faces"], env=env, stdout=log, stderr=log
    )
    address = f"127.0.0.1:{port}"
    try:

        def serving() -> None:
            assert proc.poll() is None, "the second replica exited"
            with grpc.insecure_channel(address) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING

        eventually(serving, timeout_s=60)
        yield address, metrics_port
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def wait_for_count(port: int, expected: float, timeout_s: float = 5.0) -> float:
    """Seconds until the replica's template count reaches ``expected``."""
    start = time.perf_counter()
    while templates_count(port) != expected:
        assert time.perf_counter() - start < timeout_s, (
            f"template count {templates_count(port)} != {expected}"
        )
        time.sleep(0.01)
    return time.perf_counter() - start


def test_two_replicas_stay_in_sync(stack: Stack, second_replica: tuple[str, int]) -> None:
    address_b, metrics_b = second_replica
    metrics_a = stack.settings.faces_metrics_port
    # Straight to the two replicas, as the gateway calls them (with the stack's internal token).
    insider = [(INTERNAL_TOKEN_HEADER, stack.settings.internal_token_file.read_text().strip())]
    a = FoveaClient(f"{stack.settings.host}:{stack.settings.faces_port}", api_key="", metadata=insider)
    b = FoveaClient(address_b, api_key="", metadata=insider)
    gallery = new_id("replicas")
    a.create_gallery(gallery)
    before_a, before_b = templates_count(metrics_a), templates_count(metrics_b)
    assert before_a == before_b

    a.enroll(gallery, "obama", [photo("obama")])  # through replica A...
    assert templates_count(metrics_a) == before_a + 1  # A answers once its own index holds the template
    seen_after = wait_for_count(metrics_b, before_b + 1)  # ...found through replica B
    assert seen_after < 1.0, seen_after
    [face] = b.identify(gallery, photo("obama2"))
    assert face.identity == "obama"

    b.delete_identity(gallery, "obama")  # deleted through B: A stops matching within a second
    gone_after = wait_for_count(metrics_a, before_a)
    assert gone_after < 1.0, gone_after
    assert a.identify(gallery, photo("obama2"))[0].identity is None
    b.delete_gallery(gallery)
    a.close()
    b.close()


def test_a_gap_in_the_change_stream_makes_replicas_reload(
    stack: Stack, client: FoveaClient, office: str
) -> None:
    """A change whose number is not the next one (the stream was trimmed past a replica): full reload."""
    port = stack.settings.faces_metrics_port
    reloads = metric(port, "fovea_faces_sync_reloads_total")
    r = redis.Redis.from_url(json.loads((stack.settings.data / "stack.json").read_text())["redis_url"])
    seq = r.incrby("fovea:faces:seq", 2)  # change number seq - 1 never comes: a gap
    r.xadd("fovea:faces:changes", {"seq": seq, "op": "noop", "gallery": "-", "uid": "-"})
    r.close()

    def reloaded() -> None:
        assert metric(port, "fovea_faces_sync_reloads_total") > reloads

    eventually(reloaded, timeout_s=10)
    assert client.verify(office, "obama", photo("obama2")).match


# ---------------------------------------------------------------------------------------------- outages


def all_healthy(stack: Stack) -> None:
    unhealthy = [p.name for p in status(stack.settings) if not p.healthy]
    assert not unhealthy, unhealthy


def test_redis_outage_denies_then_recovers(stack: Stack, client: FoveaClient, office: str) -> None:
    door = new_id("door-redis")
    assert client.verify_access(door, office, "obama", [photo("obama2")]).decision == "GRANT"
    stack.supervisor.stop_process("redis")
    try:
        result = client.verify_access(door, office, "obama", [photo("obama2")])
        assert result.decision == "DENY" and "Redis" in result.reason, result
        assert result.audit_id == ""  # not written: kept in memory until Redis is back
        assert error_of(client.enroll, office, "obama", [photo("obama3")]).code == "UNAVAILABLE"
    finally:
        stack.supervisor.start_process("redis")

    def granted() -> None:
        again = client.verify_access(door, office, "obama", [photo("obama2")])
        assert again.decision == "GRANT", again

    eventually(granted, timeout_s=60, interval_s=1.0)
    reasons = [r.reason for r in client.audit_records(door, limit=10)]
    assert any("audit record not written" in r for r in reasons), reasons  # the backlog was written
    eventually(lambda: all_healthy(stack), timeout_s=60, interval_s=1.0)  # for the tests after this one


def test_triton_outage_denies_then_recovers(stack: Stack, client: FoveaClient, office: str) -> None:
    door = new_id("door-triton")
    stack.supervisor.stop_process("triton")
    try:
        result = client.verify_access(door, office, "obama", [photo("obama2")])
        assert result.decision == "DENY" and "Triton" in result.reason, result
        assert result.audit_id  # Redis is up: the DENY is audited
        error = error_of(client.verify, office, "obama", photo("obama2"))
        assert error.code == "UNAVAILABLE"
        # issue 24: the part that failed is named (it read "faces service is unavailable"), not its address
        assert "in Triton is unavailable" in error.message, error.message
        assert "faces service is unavailable" not in error.message and "127.0.0.1" not in error.message
    finally:
        stack.supervisor.start_process("triton")

    def granted() -> None:
        again = client.verify_access(door, office, "obama", [photo("obama2")])
        assert again.decision == "GRANT", again

    eventually(granted, timeout_s=180, interval_s=2.0)
    eventually(lambda: all_healthy(stack), timeout_s=120, interval_s=1.0)  # every model back, not only ours
