"""The faces service in process, on port 0, through its real interceptor: what a key without faces:admin may
learn (Identify, Verify, VerifyAccess), door inputs (ids, a burst of two people, MPO photos), request ids.

Redis is a real ``redis-server`` started for this module; Triton, the system's edge, is replaced by the very
model modules it serves, run in this process (``fovea.serving.face_detector`` / ``face_embedder``).
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
from click.testing import CliRunner
from in_process_triton import InProcessTriton
from PIL import Image
from ports import free_port

from fovea.cli.main import main
from fovea.common.caller import scopes_header
from fovea.common.logs import CLIENT_REQUEST_ID_HEADER, REQUEST_ID_HEADER
from fovea.common.server import Registration, create_server
from fovea.common.v1 import common_pb2
from fovea.convert.samples import phone_photo, sample
from fovea.faces.__main__ import liveness_checks
from fovea.faces.access.core.access import DoorPolicies, DoorPolicy
from fovea.faces.access.door import DoorAccess
from fovea.faces.config import FacesSettings
from fovea.faces.events.core.events import Event, EventFilter
from fovea.faces.events.stream import EventLog
from fovea.faces.events.webhooks import DeadLetter, DeadLetters, Endpoint, WebhookDelivery
from fovea.faces.recognition.compare import Comparer
from fovea.faces.recognition.pipeline import FacePipeline
from fovea.faces.recognition.store import FaceStore
from fovea.faces.recognition.sync import GallerySync
from fovea.faces.servicer import FacesServicer
from fovea.faces.v1 import faces_pb2, faces_pb2_grpc

ADMIN = (scopes_header(["faces:admin", "faces:verify", "faces:identify"]),)
VERIFY = (scopes_header(["faces:verify"]),)
IDENTIFY = (scopes_header(["faces:identify"]),)
MODULES = {
    "face_retinaface": "fovea.serving.face_retinaface",
    "face_detector": "fovea.serving.face_detector",
    "face_embedder": "fovea.serving.face_embedder",
}


@pytest.fixture(scope="module")
def triton(repository: Path) -> InProcessTriton:
    return InProcessTriton(repository, MODULES)


@dataclass
class Faces:
    stub: faces_pb2_grpc.FacesServiceStub
    gallery: str
    address: str = ""  # host:port of the service
    comparer: Comparer | None = None  # the servicer's own


async def start(
    settings: FacesSettings,
    triton: InProcessTriton,
    policies: DoorPolicies,
    *,
    synced: bool = True,
    events: EventLog | None = None,
    dead_letters: DeadLetters | None = None,
) -> AsyncIterator[Faces]:
    """The service on port 0; with ``synced``, once its galleries are in step with Redis."""
    store = FaceStore(settings.redis_url)
    sync = GallerySync(store)
    pipeline = FacePipeline(settings, triton)  # type: ignore[arg-type]
    comparer = Comparer(pipeline, sync)
    door = DoorAccess(settings, pipeline, comparer, store, policies, liveness_checks(policies), events)
    servicer = FacesServicer(settings, pipeline, store, sync, comparer, door, events, dead_letters)
    name = faces_pb2.DESCRIPTOR.services_by_name["FacesService"].full_name
    reg = Registration(faces_pb2_grpc.add_FacesServiceServicer_to_server, servicer, name)
    handle = await create_server("faces", "127.0.0.1:0", [reg], max_message_bytes=32 * 1024 * 1024)
    syncing = asyncio.create_task(sync.run())
    assert await pipeline.ready()
    deadline = time.monotonic() + 10
    while synced and not sync.in_sync:
        assert time.monotonic() < deadline, "the galleries did not load from Redis"
        await asyncio.sleep(0.02)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{handle.port}") as channel:
            yield Faces(
                faces_pb2_grpc.FacesServiceStub(channel),
                f"g-{uuid.uuid4().hex[:8]}",
                f"127.0.0.1:{handle.port}",
                comparer,
            )
    finally:
        syncing.cancel()
        await asyncio.gather(syncing, return_exceptions=True)
        await handle.server.stop(0)
        await sync.close()
        await store.close()


@pytest.fixture()
async def faces(redis_url: str, triton: InProcessTriton) -> AsyncIterator[Faces]:
    policies = DoorPolicies(
        DoorPolicy(),
        {
            "lobby": DoorPolicy(min_matching_frames=1, allow_mixed_faces=True),
            "hall": DoorPolicy(min_matching_frames=3),
            "vault": DoorPolicy(pad="require"),
            "annex": DoorPolicy(pad="record"),
            "gate": DoorPolicy(challenge="require", challenge_kinds=("look_up",)),
        },
    )
    async for f in start(FacesSettings(redis_url=redis_url), triton, policies):
        await f.stub.CreateGallery(faces_pb2.CreateGalleryRequest(gallery_id=f.gallery), metadata=ADMIN)
        yield f


def image(name: str) -> common_pb2.Image:
    return common_pb2.Image(data=sample(name).read_bytes())


def mpo(name: str) -> common_pb2.Image:
    """The portrait as a phone's MPO: the photo, then a small grey second image."""
    buf = io.BytesIO()
    Image.open(sample(name)).convert("RGB").save(
        buf, format="MPO", save_all=True, append_images=[Image.new("RGB", (64, 48), (128, 128, 128))]
    )
    return common_pb2.Image(data=buf.getvalue())


async def enroll(f: Faces, identity: str, photo: str) -> None:
    await f.stub.Enroll(
        faces_pb2.EnrollRequest(gallery_id=f.gallery, identity_id=identity, photos=[image(photo)]),
        metadata=ADMIN,
    )


async def test_identify_without_admin_lists_no_gallery(faces: Faces) -> None:
    def ask(photo: str) -> faces_pb2.IdentifyRequest:
        return faces_pb2.IdentifyRequest(gallery_id=faces.gallery, photo=image(photo), top_k=1000)

    await enroll(faces, "obama", "obama")
    [unknown] = (await faces.stub.Identify(ask("biden"), metadata=IDENTIFY)).faces
    assert unknown.identity_id == "" and list(unknown.candidates) == []  # Biden is not enrolled
    [told_admin] = (await faces.stub.Identify(ask("biden"), metadata=ADMIN)).faces
    assert [c.identity_id for c in told_admin.candidates] == ["obama"]
    for n in range(12):  # twelve names for one face: all match a photo of Biden
        await enroll(faces, f"biden-{n:02d}", "biden")

    [everyone] = (await faces.stub.Identify(ask("obama2"), metadata=ADMIN)).faces
    assert len(everyone.candidates) == 13 and everyone.identity_id == "obama"
    for metadata in (IDENTIFY, ()):  # a faces:identify key, or a call without the gateway's word
        [obama] = (await faces.stub.Identify(ask("obama2"), metadata=metadata)).faces
        assert [c.identity_id for c in obama.candidates] == ["obama"]  # only those under the threshold
        [biden] = (await faces.stub.Identify(ask("biden"), metadata=metadata)).faces
        assert len(biden.candidates) == 10  # FOVEA_FACES_MAX_TOP_K_UNPRIVILEGED
        assert biden.candidates and all(c.distance < 0.6 for c in biden.candidates)


async def test_verify_without_admin_cannot_tell_who_is_enrolled(faces: Faces) -> None:
    await enroll(faces, "obama", "obama")

    async def verify(
        identity: str, photo: str, metadata: tuple[tuple[str, str], ...]
    ) -> faces_pb2.VerifyResponse:
        request = faces_pb2.VerifyRequest(gallery_id=faces.gallery, identity_id=identity, photo=image(photo))
        return await faces.stub.Verify(request, metadata=metadata)

    for metadata in (VERIFY, ()):
        not_enrolled = await verify("nobody", "biden", metadata)
        no_match = await verify("obama", "biden", metadata)
        assert not_enrolled == no_match and not no_match.match and no_match.distance == -1
        match = await verify("obama", "obama2", metadata)
        assert match.match and 0 < match.distance < 0.6
    assert (await verify("obama", "biden", ADMIN)).distance > 0.6
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await verify("nobody", "biden", ADMIN)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and "nobody" in (info.value.details() or "")


def access(f: Faces, door: str, identity: str, *frames: common_pb2.Image) -> faces_pb2.VerifyAccessRequest:
    return faces_pb2.VerifyAccessRequest(
        door_id=door, gallery_id=f.gallery, claimed_identity_id=identity, frames=list(frames)
    )


async def test_door_ids_are_checked(faces: Faces) -> None:
    await enroll(faces, "obama", "obama")
    for door in (" ", "*", "../../x", "", "door\n", "d" * 65):
        r = await faces.stub.VerifyAccess(access(faces, door, "obama", image("obama2")), metadata=VERIFY)
        assert r.decision == faces_pb2.DENY and "door_id" in r.reason, (door, r)
        assert r.audit_id  # refused, and audited
    granted = await faces.stub.VerifyAccess(access(faces, "front", "obama", image("obama2")), metadata=VERIFY)
    assert granted.decision == faces_pb2.GRANT, granted
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await faces.stub.ListAuditRecords(faces_pb2.ListAuditRecordsRequest(door_id="*"), metadata=ADMIN)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_burst_must_show_one_person(faces: Faces) -> None:
    await enroll(faces, "obama", "obama")
    call = faces.stub.VerifyAccess
    mixed = await call(access(faces, "front", "obama", image("obama2"), image("biden")), metadata=VERIFY)
    assert mixed.decision == faces_pb2.DENY and "different people" in mixed.reason, mixed
    # the lobby's policy: one matching frame is enough and mixed bursts are allowed
    lobby = await call(access(faces, "lobby", "obama", image("obama2"), image("biden")), metadata=VERIFY)
    assert lobby.decision == faces_pb2.GRANT, lobby
    same = await call(access(faces, "front", "obama", image("obama2"), image("obama3")), metadata=VERIFY)
    assert same.decision == faces_pb2.GRANT and "2/2 frames" in same.reason, same
    phone = await call(access(faces, "front", "obama", mpo("obama2")), metadata=VERIFY)
    assert phone.decision == faces_pb2.GRANT, phone
    verified = await faces.stub.Verify(
        faces_pb2.VerifyRequest(gallery_id=faces.gallery, identity_id="obama", photo=mpo("obama3")),
        metadata=VERIFY,
    )
    assert verified.match


async def test_mixed_faces_compares_consecutive_faces_where_every_frame_must_match(faces: Faces) -> None:
    """A default door (every frame must match the claimed identity) looks for a change of person between
    consecutive faces: a head turning through a burst moves its first and last faces far apart in small
    steps. A door that lets frames miss the identity (``min_matching_frames``) compares any two faces, since
    there a chain of small steps could lead from one person to another. In a gallery of threshold 0.43 the
    burst obama2, a partial face, obama3 is such a chain: steps 0.421 and 0.339, ends 0.437 apart, every face
    within 0.40 of the enrolled photo."""
    gallery = f"{faces.gallery}-chain"
    await faces.stub.CreateGallery(
        faces_pb2.CreateGalleryRequest(gallery_id=gallery, threshold=0.43), metadata=ADMIN
    )
    await faces.stub.Enroll(
        faces_pb2.EnrollRequest(gallery_id=gallery, identity_id="obama", photos=[image("obama")]),
        metadata=ADMIN,
    )
    chain = [image("obama2"), image("obama_partial_face2"), image("obama3")]

    def burst(door: str) -> faces_pb2.VerifyAccessRequest:
        return faces_pb2.VerifyAccessRequest(
            door_id=door, gallery_id=gallery, claimed_identity_id="obama", frames=chain
        )

    front = await faces.stub.VerifyAccess(burst("front"), metadata=ADMIN)
    assert front.decision == faces_pb2.GRANT and "3/3 frames" in front.reason, front
    hall = await faces.stub.VerifyAccess(burst("hall"), metadata=ADMIN)
    assert hall.decision == faces_pb2.DENY and "different people" in hall.reason, hall


async def test_phone_photos_are_reduced_and_answered_in_their_own_pixels(faces: Faces) -> None:
    """12 MP photos (decoded at half size): Enroll from one, Verify and Identify with another photo, a door
    burst of them; every box and landmark in the full photos' pixels."""
    width, height = Image.open(sample("obama")).size
    phone = common_pb2.Image(data=phone_photo("obama", 2.0, seed=3))  # the portrait at (1500, 600), 2x
    enrolled = await faces.stub.Enroll(
        faces_pb2.EnrollRequest(gallery_id=faces.gallery, identity_id="obama", photos=[phone]), metadata=ADMIN
    )
    [face] = enrolled.faces
    assert 1500 < face.box.x1 < face.box.x2 < 1500 + 2 * width, face.box
    assert 600 < face.box.y1 < face.box.y2 < 600 + 2 * height, face.box
    assert face.box.x2 - face.box.x1 > 300 and all(face.box.x1 < p.x < face.box.x2 for p in face.landmarks)
    verified = await faces.stub.Verify(
        faces_pb2.VerifyRequest(gallery_id=faces.gallery, identity_id="obama", photo=image("obama2")),
        metadata=ADMIN,
    )
    assert verified.match and verified.distance < 0.5, verified
    [found] = (
        await faces.stub.Identify(
            faces_pb2.IdentifyRequest(gallery_id=faces.gallery, photo=phone, top_k=1), metadata=ADMIN
        )
    ).faces
    assert found.identity_id == "obama" and found.face.box == face.box
    door = await faces.stub.VerifyAccess(
        access(faces, "front", "obama", phone, image("obama2")), metadata=VERIFY
    )
    assert door.decision == faces_pb2.GRANT, door


async def test_a_door_comparison_holds_each_frame_once_as_an_array(faces: Faces) -> None:
    """Verify keeps a photo as the decoded Pillow image (its chip is cut from it); a door, whose checks read
    every frame's pixels, gets them as arrays and the Pillow images are let go: the same pixels and
    distances either way, a bad frame still a problem of its own."""
    await enroll(faces, "obama", "obama")
    assert faces.comparer is not None
    frames = [image("obama2").data]
    plain = await faces.comparer.compare(faces.gallery, "obama", frames)
    held = await faces.comparer.compare(faces.gallery, "obama", [*frames, b"not an image"], pixels=True)
    [before], [after, bad] = plain.photos, held.photos
    assert before.photo is not None and isinstance(before.photo.picture, Image.Image)
    assert after.photo is not None and isinstance(after.photo.picture, np.ndarray)
    assert before.image is not None and after.image is not None
    assert np.array_equal(before.image, after.image) and after.distance == before.distance
    assert bad.photo is None and bad.image is None and bad.problem


async def test_door_answers_and_audit_without_admin(faces: Faces) -> None:
    await enroll(faces, "obama", "obama")
    door = f"door-{uuid.uuid4().hex[:6]}"
    ids = ((REQUEST_ID_HEADER, "f" * 32), (CLIENT_REQUEST_ID_HEADER, "controller-42"))  # as the gateway sends
    unknown = await faces.stub.VerifyAccess(
        access(faces, door, "nobody", image("biden")), metadata=VERIFY + ids
    )
    no_match = await faces.stub.VerifyAccess(access(faces, door, "obama", image("biden")), metadata=VERIFY)
    for r in (unknown, no_match):
        assert r.decision == faces_pb2.DENY and r.reason == "no match" and r.distance == -1, r
    assert unknown.request_id == "f" * 32 and unknown.client_request_id == "controller-42"
    told_admin = await faces.stub.VerifyAccess(access(faces, door, "nobody", image("biden")), metadata=ADMIN)
    assert "nobody" in told_admin.reason
    records = (
        await faces.stub.ListAuditRecords(faces_pb2.ListAuditRecordsRequest(door_id=door), metadata=ADMIN)
    ).records
    assert len(records) == 3
    oldest = records[-1]
    assert oldest.audit_id == unknown.audit_id and "nobody" in oldest.reason  # the audit has the full reason
    assert oldest.request_id == "f" * 32 and oldest.client_request_id == "controller-42"


async def test_no_internal_address_reaches_the_door(triton: InProcessTriton) -> None:
    """Redis down from the start: the DENY's reason and the audit failure name no host:port."""
    port = free_port()  # nothing listens there
    settings = FacesSettings(redis_url=f"redis://127.0.0.1:{port}/0", access_timeout_s=2.0)
    async for f in start(settings, triton, DoorPolicies(), synced=False):
        r = await f.stub.VerifyAccess(access(f, "front", "obama", image("obama2")), metadata=VERIFY)
        assert r.decision == faces_pb2.DENY and "Redis" in r.reason, r
        assert str(port) not in r.reason and "127.0.0.1" not in r.reason, r


async def test_a_still_photo_repeated_is_denied_where_the_door_requires_pad(faces: Faces) -> None:
    await enroll(faces, "obama", "obama")
    burst = [image("obama2")] * 4
    vault = await faces.stub.VerifyAccess(access(faces, "vault", "obama", *burst), metadata=VERIFY)
    # a still burst is too little motion to tell a head from a photo: undetermined, which a door that
    # requires PAD denies by default (pad_undetermined deny)
    assert vault.decision == faces_pb2.DENY and "geometry: undetermined" in vault.reason, vault
    assert vault.pad.check == "geometry" and vault.pad.verdict == faces_pb2.PAD_UNDECIDED
    assert vault.pad.score == 0.0 and vault.pad.threshold == pytest.approx(0.12)
    assert vault.pad.reasons and vault.pad.reasons[0].startswith("geometry: undetermined")
    # record: the same verdict kept, the door decides on the match alone
    annex = await faces.stub.VerifyAccess(access(faces, "annex", "obama", *burst), metadata=VERIFY)
    assert annex.decision == faces_pb2.GRANT and annex.pad.verdict == faces_pb2.PAD_UNDECIDED, annex
    # off (the default): not run
    front = await faces.stub.VerifyAccess(access(faces, "front", "obama", *burst), metadata=VERIFY)
    assert front.decision == faces_pb2.GRANT and front.pad.verdict == faces_pb2.PAD_NOT_CHECKED, front
    # one frame is too short a burst to judge: UNDECIDED, and require denies it (another photo: a frame
    # the door has seen before would be a replay)
    short = await faces.stub.VerifyAccess(access(faces, "vault", "obama", image("obama3")), metadata=VERIFY)
    assert short.decision == faces_pb2.DENY and short.pad.verdict == faces_pb2.PAD_UNDECIDED, short
    assert "3-15 frames" in short.reason
    [record] = (
        await faces.stub.ListAuditRecords(
            faces_pb2.ListAuditRecordsRequest(door_id="vault", limit=2), metadata=ADMIN
        )
    ).records[1:]
    assert record.audit_id == vault.audit_id and record.pad == vault.pad


async def test_begin_access_and_a_challenge_through_the_servicer(
    faces: Faces, caplog: pytest.LogCaptureFixture
) -> None:
    """BeginAccess at a door requiring a challenge; the answer with a tampered token is DENY
    challenge_invalid, a still burst with the genuine one challenge_not_met, the same challenge again
    challenge_reused; each reason kind in the response and the audit record."""
    await enroll(faces, "obama", "obama")
    c = await faces.stub.BeginAccess(faces_pb2.BeginAccessRequest(door_id="gate"), metadata=VERIFY)
    assert c.kind == "look_up" and c.door_id == "gate" and "looking up" in c.instruction and len(c.token) > 40
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await faces.stub.BeginAccess(faces_pb2.BeginAccessRequest(door_id="front"), metadata=VERIFY)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    def ask(token: str, *frames: common_pb2.Image) -> faces_pb2.VerifyAccessRequest:
        request = access(faces, "gate", "obama", *frames)
        request.challenge.CopyFrom(faces_pb2.ChallengeAnswer(challenge_id=c.challenge_id, token=token))
        return request

    bad = await faces.stub.VerifyAccess(ask(c.token + "x", image("obama2")), metadata=VERIFY)
    assert bad.decision == faces_pb2.DENY and bad.reason_kind == "challenge_invalid", bad
    # Malformed tokens (a non-ASCII mac, an expiry of superscript digits) are challenge_invalid too, not
    # kind error with a traceback in the log per request.
    kind, expiry, mac = c.token.split(".")
    caplog.clear()
    for malformed in (f"{kind}.{expiry}.{'é' * len(mac)}", f"{kind}.²³.{mac}"):
        odd = await faces.stub.VerifyAccess(ask(malformed, image("obama2")), metadata=VERIFY)
        assert odd.decision == faces_pb2.DENY and odd.reason_kind == "challenge_invalid", odd
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    still = await faces.stub.VerifyAccess(ask(c.token, *[image("obama3")] * 3), metadata=VERIFY)
    assert still.decision == faces_pb2.DENY and still.reason_kind == "challenge_not_met", still
    assert still.challenge.challenge_id == c.challenge_id and not still.challenge.met
    assert abs(still.challenge.motion) < 0.05 and still.challenge.threshold == pytest.approx(0.12)
    again = await faces.stub.VerifyAccess(ask(c.token, image("obama")), metadata=VERIFY)
    assert again.decision == faces_pb2.DENY and again.reason_kind == "challenge_reused", again
    records = (
        await faces.stub.ListAuditRecords(
            faces_pb2.ListAuditRecordsRequest(door_id="gate", limit=3), metadata=ADMIN
        )
    ).records
    assert [r.reason_kind for r in records] == ["challenge_reused", "challenge_not_met", "challenge_invalid"]
    assert records[1].challenge == still.challenge


async def test_watch_events_hides_who_is_enrolled_from_watchers_without_admin(
    redis_url: str, triton: InProcessTriton
) -> None:
    """Before: a watcher with faces:events alone saw "identity X has no templates in gallery G" (kind
    unknown_identity) in the door's events, which VerifyAccess hides from a caller without faces:admin."""
    settings = FacesSettings(redis_url=redis_url)
    events = EventLog(redis_url, block_ms=100)
    await events.redis.delete("fovea:faces:events")
    policies = DoorPolicies(DoorPolicy(min_matching_frames=1))
    try:
        async for f in start(settings, triton, policies, events=events):
            await f.stub.CreateGallery(faces_pb2.CreateGalleryRequest(gallery_id=f.gallery), metadata=ADMIN)
            await enroll(f, "obama", "obama")
            ghost = await f.stub.VerifyAccess(access(f, "d1", "ghost", image("obama2")), metadata=VERIFY)
            other = await f.stub.VerifyAccess(access(f, "d1", "obama", image("biden")), metadata=VERIFY)
            assert ghost.reason_kind == other.reason_kind == "no_match", (ghost, other)

            async def watch(
                stub: faces_pb2_grpc.FacesServiceStub, metadata: tuple[tuple[str, str], ...]
            ) -> list[faces_pb2.Event]:
                request = faces_pb2.WatchEventsRequest(after_event_id="0", door_ids=["d1"])
                out: list[faces_pb2.Event] = []
                async for event in stub.WatchEvents(request, metadata=metadata, timeout=10):
                    out.append(event)
                    if len(out) == 4:  # access_denied and unknown_face for each
                        return out
                return out

            seen = await watch(f.stub, (scopes_header(["faces:events"]),))
            assert [e.kind for e in seen] == ["access_denied", "unknown_face"] * 2, seen
            assert {(e.reason, e.reason_kind) for e in seen} == {("no match", "no_match")}, seen
            assert {e.audit_id for e in seen} == {ghost.audit_id, other.audit_id}
            full = await watch(f.stub, (scopes_header(["faces:events", "faces:admin"]),))
            assert [e.reason_kind for e in full] == ["unknown_identity"] * 2 + ["no_match"] * 2, full
            assert "no templates" in full[0].reason and "best distance" in full[2].reason, full
    finally:
        await events.close()


async def test_dead_letter_rpcs_without_webhook_endpoints_are_failed_precondition(
    redis_url: str, triton: InProcessTriton
) -> None:
    """Before: the service always had a dead-letter list, so without endpoints these answered an empty
    list / 0 redriven instead of FAILED_PRECONDITION."""
    settings = FacesSettings(redis_url=redis_url)
    events = EventLog(redis_url)
    endpoint = Endpoint("ops", "http://127.0.0.1:9/hook", b"s" * 16, EventFilter(), 1)
    assert isinstance(WebhookDelivery(settings, [endpoint], events.redis).dead_letters, DeadLetters)
    none = WebhookDelivery(settings, [], events.redis).dead_letters
    assert none is None
    try:
        async for f in start(settings, triton, DoorPolicies(), dead_letters=none):
            calls = [
                f.stub.ListWebhookDeadLetters(faces_pb2.ListWebhookDeadLettersRequest(), metadata=ADMIN),
                f.stub.RedriveWebhookDeadLetters(
                    faces_pb2.RedriveWebhookDeadLettersRequest(endpoint="ops"), metadata=ADMIN
                ),
            ]
            for call in calls:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await call
                assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                assert info.value.details() == "no webhook endpoints configured (FOVEA_FACES_WEBHOOKS_FILE)"
    finally:
        await events.close()


async def test_a_redrive_answers_what_it_skipped(redis_url: str, triton: InProcessTriton) -> None:
    """Before: the answer had only ``redriven``; a dead letter left in the list because its delivery was
    queued already (or the list held it twice) was only logged by the service."""
    events = EventLog(redis_url)
    await events.redis.flushdb()
    dead = DeadLetters(events.redis, 100, ["ops"])

    def letter(delivery_id: str) -> DeadLetter:
        event = Event("access_denied", 1, door_id="d1", event_id=delivery_id.split(".")[0])
        return DeadLetter(delivery_id, "ops", event, 2, "HTTP 500", 1)

    for d in ("1-0.ops", "1-0.ops", "2-0.ops"):  # one delivery twice (sent again after a replica stopped)
        await dead.add(letter(d))
    redrive = faces_pb2.RedriveWebhookDeadLettersRequest(endpoint="ops")
    try:
        async for f in start(FacesSettings(redis_url=redis_url), triton, DoorPolicies(), dead_letters=dead):
            # 3 in the list: 1-0 and 2-0 moved, the second 1-0 skipped (its delivery is queued now).
            reply = await f.stub.RedriveWebhookDeadLetters(redrive, metadata=ADMIN)
            assert (reply.redriven, reply.skipped, list(reply.skipped_delivery_ids)) == (2, 1, ["1-0.ops"])
            # The CLI prints it, through the same RPC (the service takes the call as the gateway passes it).
            cli = CliRunner()
            args = ["--gateway", f.address, "--no-tls", "faces", "webhooks", "redrive", "ops"]
            done = await asyncio.to_thread(cli.invoke, main, [*args, "1-0.ops"])
            assert done.exit_code == 0, done.output
            assert done.output.splitlines() == [
                "0 dead letter(s) queued for ops again",
                "1 skipped (already queued or under way; still in the dead letters): 1-0.ops",
            ], done.output
            done = await asyncio.to_thread(cli.invoke, main, [*args, "--json"])
            assert json.loads(done.output) == {
                "redriven": 0,
                "skipped": 1,
                "skipped_delivery_ids": ["1-0.ops"],
            }, done.output
    finally:
        await events.close()
