"""The faces service's RPCs: proto <-> domain. Photos go through ``pipeline.py``, writes through ``store.py``
(then wait until this replica's search index holds them), searches run on ``sync.py``'s in-memory galleries.

What the caller's API key may see is decided here from the scopes the gateway passes on
(``fovea.common.caller``): without ``faces:admin``, Identify lists only candidates under the threshold (and
at most ``max_top_k_unprivileged``), and Verify, VerifyAccess and WatchEvents tell an identity that is not
enrolled like a non-match."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import grpc

from fovea.common.caller import caller_scopes, has_scope
from fovea.common.errors import AlreadyExists, FailedPrecondition, FoveaError, InvalidArgument, NotFound
from fovea.common.logs import client_request_id_var, request_id_var
from fovea.common.v1 import common_pb2
from fovea.contracts.face_detector import DetectedFaces
from fovea.faces.access.door import NO_DISTANCE, AccessRequest, DoorAccess
from fovea.faces.config import FacesSettings
from fovea.faces.door_messages import access_response, audit_record
from fovea.faces.events.core import events as ev
from fovea.faces.events.stream import EventLog, event_proto
from fovea.faces.events.webhooks import DeadLetters
from fovea.faces.metrics import SEARCH_DURATION, TEMPLATES_ENROLLED
from fovea.faces.recognition.compare import Comparer
from fovea.faces.recognition.core.faces import choose_face
from fovea.faces.recognition.core.matching import is_match
from fovea.faces.recognition.core.records import (
    TemplateRecord,
    check_door_id,
    check_gallery_id,
    check_identity_id,
    check_metadata,
    check_threshold,
)
from fovea.faces.recognition.pipeline import FacePipeline
from fovea.faces.recognition.store import FaceStore, GalleryInfo, IdentityInfo, Written
from fovea.faces.recognition.sync import CachedGallery, GallerySync
from fovea.faces.v1 import faces_pb2, faces_pb2_grpc

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_PAGE, MAX_PAGE = 100, 1000
DEFAULT_AUDIT, MAX_AUDIT = 50, 1000
ADMIN_SCOPE = "faces:admin"
NO_WEBHOOKS = "no webhook endpoints configured (FOVEA_FACES_WEBHOOKS_FILE)"
MAX_SKIPPED_IDS = 100  # RedriveWebhookDeadLettersResponse.skipped_delivery_ids: the first ones


def valid(check: Callable[[T], T], value: T) -> T:
    """Run a ``core.records`` check; its ``ValueError`` becomes INVALID_ARGUMENT."""
    try:
        return check(value)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from exc


def is_admin(context: grpc.aio.ServicerContext) -> bool:
    """The caller's key has ``faces:admin`` (as the gateway says; a call without its word has no scope)."""
    return has_scope(caller_scopes(context.invocation_metadata()), ADMIN_SCOPE)


def face_proto(faces: DetectedFaces, i: int) -> faces_pb2.Face:
    box = faces.boxes[i].tolist()
    return faces_pb2.Face(
        box=common_pb2.BoundingBox(x1=box[0], y1=box[1], x2=box[2], y2=box[3]),
        landmarks=[common_pb2.Point(x=float(x), y=float(y)) for x, y in faces.landmarks[i].tolist()],
        score=float(faces.scores[i]),
    )


class FacesServicer(faces_pb2_grpc.FacesServiceServicer):
    def __init__(
        self,
        settings: FacesSettings,
        pipeline: FacePipeline,
        store: FaceStore,
        sync: GallerySync,
        comparer: Comparer,
        door: DoorAccess,
        events: EventLog | None = None,
        dead_letters: DeadLetters | None = None,
    ) -> None:
        """``events``: where events are told and watched (none: not told, WatchEvents FAILED_PRECONDITION);
        ``dead_letters``: the webhook dead-letter list (none, as when no webhook endpoint is configured:
        its RPCs FAILED_PRECONDITION)."""
        self.settings = settings
        self.events = events
        self.dead_letters = dead_letters
        self.pipeline = pipeline
        self.store = store
        self.sync = sync
        self.comparer = comparer
        self.door = door
        self._purges: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------------------------------ helpers
    async def _settled(self, written: Written) -> None:
        """Return once this replica's index shows the write (bounded; the write is durable either way)."""
        await self.sync.wait_for(written.seq, self.settings.sync_wait_s)

    def _comparable(self, gallery_id: str) -> CachedGallery:
        """The cached gallery, refusing one whose templates come from another embedding model."""
        cached = self.sync.gallery(valid(check_gallery_id, gallery_id))
        self.pipeline.check_comparable(cached.info)
        return cached

    async def _gallery_proto(self, info: GalleryInfo) -> faces_pb2.Gallery:
        return faces_pb2.Gallery(
            gallery_id=info.gallery_id,
            threshold=info.threshold,
            embedding_model=info.embedding_model,
            identity_count=await self.store.identity_count(info.uid),
            metadata=info.metadata,
        )

    @staticmethod
    def _identity_proto(identity: IdentityInfo) -> faces_pb2.Identity:
        return faces_pb2.Identity(
            gallery_id=identity.gallery_id,
            identity_id=identity.identity_id,
            metadata=identity.metadata,
            templates=[
                faces_pb2.Template(
                    template_id=t.template_id, embedding_model=t.embedding_model, created_unix_ms=t.created_ms
                )
                for t in identity.templates
            ],
        )

    def _tell(self, kind: str, gallery_id: str, identity_id: str = "", reason: str = "") -> None:
        """Append an event in the background (``events.py``: never waits, never fails the call)."""
        if self.events is not None:
            event = ev.Event(
                kind,
                int(time.time() * 1000),
                gallery_id=gallery_id,
                identity_id=identity_id,
                reason=reason,
                request_id=request_id_var.get(),
            )
            self.events.emit([event])

    # ------------------------------------------------------------------------------------------ galleries
    async def CreateGallery(
        self, request: faces_pb2.CreateGalleryRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.Gallery:
        gallery_id = valid(check_gallery_id, request.gallery_id)
        embedder = self.pipeline.embedder
        threshold = valid(check_threshold, request.threshold) or embedder.default_threshold
        metadata = valid(check_metadata, dict(request.metadata))
        info, written = await self.store.create_gallery(gallery_id, threshold, embedder.version, metadata)
        await self._settled(written)
        return faces_pb2.Gallery(
            gallery_id=gallery_id, threshold=threshold, embedding_model=embedder.version, metadata=metadata
        )

    async def GetGallery(
        self, request: faces_pb2.GetGalleryRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.Gallery:
        info = await self.store.get_gallery(valid(check_gallery_id, request.gallery_id))
        return await self._gallery_proto(info)

    async def ListGalleries(
        self, request: faces_pb2.ListGalleriesRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.ListGalleriesResponse:
        galleries = await self.store.list_galleries()
        return faces_pb2.ListGalleriesResponse(galleries=[await self._gallery_proto(g) for g in galleries])

    async def DeleteGallery(
        self, request: faces_pb2.DeleteGalleryRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.DeleteGalleryResponse:
        _, written = await self.store.delete_gallery(valid(check_gallery_id, request.gallery_id))
        await self._settled(written)
        task = asyncio.create_task(self._purge())  # its keys, in the background
        self._purges.add(task)
        task.add_done_callback(self._purges.discard)
        return faces_pb2.DeleteGalleryResponse()

    async def _purge(self) -> None:
        try:
            await self.store.purge_deleted()
        except FoveaError as exc:  # the gallery is gone already; its keys go at the next delete or start
            log.info("keys of deleted galleries not removed yet: %s", exc)

    # ------------------------------------------------------------------------------------------ identities
    async def Enroll(
        self, request: faces_pb2.EnrollRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.EnrollResponse:
        identity_id = valid(check_identity_id, request.identity_id)
        metadata = valid(check_metadata, dict(request.metadata))
        if not 1 <= len(request.photos) <= self.settings.max_photos:
            raise InvalidArgument(f"send 1-{self.settings.max_photos} photos, got {len(request.photos)}")
        gallery = await self.store.get_gallery(valid(check_gallery_id, request.gallery_id))
        model = self.pipeline.check_comparable(gallery)
        if request.create_only and await self.store.identity_exists(gallery, identity_id):
            raise AlreadyExists(f"identity {identity_id} already exists in gallery {gallery.gallery_id}")
        face_index = request.face_index if request.HasField("face_index") else None
        photos = await self.pipeline.find_faces_many([p.data for p in request.photos])
        chosen = []
        for n, photo in enumerate(photos, start=1):
            what = f"photo {n} of {len(photos)}"
            try:
                i = choose_face(len(photo.faces), face_index, what)
            except ValueError as exc:
                raise InvalidArgument(str(exc)) from exc
            chosen.append(photo.faces.take([i]))
        chips = await self.pipeline.align([p.source(f) for p, f in zip(photos, chosen, strict=True)])
        for n, (face, chip) in enumerate(zip(chosen, chips, strict=True), start=1):
            self.pipeline.check_quality(face, chip[None], f"photo {n} of {len(photos)}")
        embeddings = await self.pipeline.embed_chips(chips)
        now = int(time.time() * 1000)
        records = [TemplateRecord(uuid.uuid4().hex, identity_id, model, now, e) for e in embeddings]
        written = await self.store.enroll(
            gallery, identity_id, records, metadata or None, request.create_only
        )
        TEMPLATES_ENROLLED.inc(len(records))
        self._tell(ev.ENROLLED, gallery.gallery_id, identity_id, f"{len(records)} template(s) added")
        await self._settled(written)
        return faces_pb2.EnrollResponse(
            identity=self._identity_proto(await self.store.get_identity(gallery, identity_id)),
            added_template_ids=[r.template_id for r in records],
            faces=[face_proto(face, 0) for face in chosen],
        )

    async def GetIdentity(
        self, request: faces_pb2.GetIdentityRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.Identity:
        gallery = await self.store.get_gallery(valid(check_gallery_id, request.gallery_id))
        identity = await self.store.get_identity(gallery, valid(check_identity_id, request.identity_id))
        return self._identity_proto(identity)

    async def ListIdentities(
        self, request: faces_pb2.ListIdentitiesRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.ListIdentitiesResponse:
        if not 0 <= request.page_size <= MAX_PAGE:
            raise InvalidArgument(f"page_size must be within [0, {MAX_PAGE}], got {request.page_size}")
        try:
            after = (
                base64.urlsafe_b64decode(request.page_token.encode()).decode() if request.page_token else ""
            )
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidArgument("page_token is not one this service gave out") from exc
        gallery = await self.store.get_gallery(valid(check_gallery_id, request.gallery_id))
        found, last = await self.store.list_identities(gallery, request.page_size or DEFAULT_PAGE, after)
        return faces_pb2.ListIdentitiesResponse(
            identities=[self._identity_proto(i) for i in found],
            next_page_token=base64.urlsafe_b64encode(last.encode()).decode() if last else "",
        )

    async def DeleteIdentity(
        self, request: faces_pb2.DeleteIdentityRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.DeleteIdentityResponse:
        gallery = await self.store.get_gallery(valid(check_gallery_id, request.gallery_id))
        identity_id = valid(check_identity_id, request.identity_id)
        written = await self.store.delete_identity(gallery, identity_id)
        self._tell(ev.IDENTITY_DELETED, gallery.gallery_id, identity_id)
        await self._settled(written)
        return faces_pb2.DeleteIdentityResponse()

    async def DeleteTemplate(
        self, request: faces_pb2.DeleteTemplateRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.DeleteTemplateResponse:
        gallery = await self.store.get_gallery(valid(check_gallery_id, request.gallery_id))
        identity_id = valid(check_identity_id, request.identity_id)
        written = await self.store.delete_template(gallery, identity_id, request.template_id)
        self._tell(ev.TEMPLATE_DELETED, gallery.gallery_id, identity_id, f"template {request.template_id}")
        await self._settled(written)
        return faces_pb2.DeleteTemplateResponse()

    # ------------------------------------------------------------------------------------------ matching
    async def Verify(
        self, request: faces_pb2.VerifyRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.VerifyResponse:
        admin = is_admin(context)
        compared = await self.comparer.compare(request.gallery_id, request.identity_id, [request.photo.data])
        [photo] = compared.photos
        if photo.problem is not None:
            raise InvalidArgument(photo.problem)
        if photo.face is None or photo.distance is None:
            raise InvalidArgument("no face found in the photo")
        if not compared.enrolled and admin:
            if await self.store.identity_exists(compared.gallery, request.identity_id):
                raise FailedPrecondition(f"identity {request.identity_id} has no templates to compare with")
            raise NotFound(f"no identity {request.identity_id} in gallery {request.gallery_id}")
        threshold = compared.gallery.threshold
        match = is_match(photo.distance, threshold)
        return faces_pb2.VerifyResponse(
            match=match,
            distance=photo.distance if match or admin else NO_DISTANCE,
            threshold=threshold,
            face=face_proto(photo.face, 0),
            embedding_model=compared.gallery.embedding_model,
        )

    async def Identify(
        self, request: faces_pb2.IdentifyRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.IdentifyResponse:
        cached = self._comparable(request.gallery_id)
        if not 0 <= request.top_k <= self.settings.max_top_k:
            raise InvalidArgument(f"top_k must be within [0, {self.settings.max_top_k}], got {request.top_k}")
        admin = is_admin(context)
        top_k = request.top_k or 1
        if not admin:
            top_k = min(top_k, self.settings.max_top_k_unprivileged)
        photo = await self.pipeline.find_faces(request.photo.data)
        embeddings = await self.pipeline.embed([photo.source(photo.faces)])
        start = time.perf_counter()
        matches = await asyncio.to_thread(cached.index.search, embeddings, top_k)
        SEARCH_DURATION.observe(time.perf_counter() - start)
        threshold = cached.info.threshold
        faces = []
        for i, candidates in enumerate(matches):
            best = candidates[0] if candidates else None
            shown = candidates if admin else [c for c in candidates if is_match(c.distance, threshold)]
            faces.append(
                faces_pb2.IdentifiedFace(
                    face=face_proto(photo.faces, i),
                    identity_id=best.identity_id if best and is_match(best.distance, threshold) else "",
                    distance=best.distance if best else NO_DISTANCE,
                    candidates=[
                        faces_pb2.Candidate(identity_id=c.identity_id, distance=c.distance) for c in shown
                    ],
                )
            )
        unknown = sum(1 for f in faces if not f.identity_id)
        if unknown:
            what = f"{unknown} of {len(faces)} face(s) matched no identity (threshold {threshold:g})"
            self._tell(ev.UNKNOWN_FACE, cached.info.gallery_id, reason=what)
        return faces_pb2.IdentifyResponse(
            faces=faces, threshold=threshold, embedding_model=cached.info.embedding_model
        )

    # ------------------------------------------------------------------------------------------ doors
    async def VerifyAccess(
        self, request: faces_pb2.VerifyAccessRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.VerifyAccessResponse:
        outcome = await self.door.check(
            AccessRequest(
                door_id=request.door_id,
                gallery_id=request.gallery_id,
                identity_id=request.claimed_identity_id,
                frames=[f.data for f in request.frames],
                request_id=request_id_var.get(),
                client_request_id=client_request_id_var.get(),
                challenge_id=request.challenge.challenge_id,
                challenge_token=request.challenge.token,
            )
        )
        return access_response(outcome, admin=is_admin(context), challenge_id=request.challenge.challenge_id)

    async def ListAuditRecords(
        self, request: faces_pb2.ListAuditRecordsRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.ListAuditRecordsResponse:
        if not 0 <= request.limit <= MAX_AUDIT:
            raise InvalidArgument(f"limit must be within [0, {MAX_AUDIT}], got {request.limit}")
        if request.door_id:
            valid(check_door_id, request.door_id)
        entries = await self.store.audit_records(request.door_id, request.limit or DEFAULT_AUDIT)
        return faces_pb2.ListAuditRecordsResponse(
            records=[audit_record(entry.audit_id, entry.fields) for entry in entries]
        )

    async def BeginAccess(
        self, request: faces_pb2.BeginAccessRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.BeginAccessResponse:
        challenge, token = self.door.begin(request.door_id)
        return faces_pb2.BeginAccessResponse(
            challenge_id=challenge.challenge_id,
            door_id=challenge.door_id,
            kind=challenge.kind,
            instruction=challenge.instruction,
            expires_unix_ms=challenge.expires_unix_ms,
            token=token,
        )

    # ------------------------------------------------------------------------------------------ events
    async def WatchEvents(
        self, request: faces_pb2.WatchEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[faces_pb2.Event]:
        if self.events is None:
            raise FailedPrecondition("events are not kept by this service")
        try:
            wanted = ev.EventFilter.of(request.door_ids, request.gallery_ids, request.kinds)
            after = ev.check_event_id(request.after_event_id) if request.after_event_id else ""
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from exc
        admin = is_admin(context)  # without faces:admin, who is enrolled stays hidden (as in VerifyAccess)
        async for event in self.events.watch(wanted, after):
            yield event_proto(event if admin else ev.without_enrollment(event))

    async def ListWebhookDeadLetters(
        self, request: faces_pb2.ListWebhookDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.ListWebhookDeadLettersResponse:
        if self.dead_letters is None:
            raise FailedPrecondition(NO_WEBHOOKS)
        if not 0 <= request.limit <= MAX_AUDIT:
            raise InvalidArgument(f"limit must be within [0, {MAX_AUDIT}], got {request.limit}")
        letters = await self.dead_letters.recent(request.endpoint, request.limit or DEFAULT_AUDIT)
        return faces_pb2.ListWebhookDeadLettersResponse(
            dead_letters=[
                faces_pb2.WebhookDeadLetter(
                    delivery_id=d.delivery_id,
                    endpoint=d.endpoint,
                    event=event_proto(d.event),
                    attempts=d.attempts,
                    last_error=d.last_error,
                    dead_unix_ms=d.unix_ms,
                )
                for d in letters
            ]
        )

    async def RedriveWebhookDeadLetters(
        self, request: faces_pb2.RedriveWebhookDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.RedriveWebhookDeadLettersResponse:
        if self.dead_letters is None:
            raise FailedPrecondition(NO_WEBHOOKS)
        done = await self.dead_letters.redrive(request.endpoint, list(request.delivery_ids))
        if done.skipped:  # still in the dead list (ListWebhookDeadLetters shows them)
            log.info(
                "redrive %s: %d moved, %d skipped (queued or under way already): %s",
                request.endpoint,
                done.moved,
                len(done.skipped),
                ", ".join(done.skipped[:20]),
            )
        return faces_pb2.RedriveWebhookDeadLettersResponse(
            redriven=done.moved,
            skipped=len(done.skipped),
            skipped_delivery_ids=done.skipped[:MAX_SKIPPED_IDS],
        )
