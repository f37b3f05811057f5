"""VerifyAccess: the door decision, failing closed, and its audit record.

Nothing raises to the caller: a bad request, an unknown gallery or identity, Triton or Redis down, a timeout,
even a bug, all end as DENY with the reason. The record of every decision goes to the audit streams; when Redis
cannot take it the decision becomes DENY (an unaudited grant is not given), the record is logged and kept in
memory, and a background task writes it once Redis is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from fovea.common.errors import FoveaError, InvalidArgument, NotFound, UpstreamUnavailable
from fovea.faces.config import FacesSettings
from fovea.faces.core.access import (
    AccessResult,
    Decision,
    DoorPolicies,
    FrameOutcome,
    LivenessCheck,
    decide,
    deny,
)
from fovea.faces.core.faces import DetectedFaces
from fovea.faces.core.records import check_gallery_id, check_identity_id
from fovea.faces.metrics import AUDIT_BACKLOG, AUDIT_DROPPED, DOOR_DECISIONS
from fovea.faces.pipeline import FacePipeline, Photo
from fovea.faces.store import FaceStore
from fovea.faces.sync import GallerySync

log = logging.getLogger(__name__)

NO_DISTANCE = -1.0  # in responses and records when no face was compared


@dataclass(frozen=True)
class AccessRequest:
    door_id: str
    gallery_id: str
    identity_id: str
    frames: list[bytes]
    request_id: str


@dataclass(frozen=True)
class AccessOutcome:
    result: AccessResult
    embedding_model: str
    audit_id: str  # '' when the record could not be written
    unix_ms: int

    @property
    def distance(self) -> float:
        return NO_DISTANCE if math.isnan(self.result.distance) else self.result.distance


class DoorAccess:
    def __init__(
        self,
        settings: FacesSettings,
        pipeline: FacePipeline,
        sync: GallerySync,
        store: FaceStore,
        policies: DoorPolicies,
        liveness: Mapping[str, LivenessCheck],
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.sync = sync
        self.store = store
        self.policies = policies
        self.liveness = liveness
        self.backlog: deque[tuple[str, dict[str, str]]] = deque()

    async def check(self, request: AccessRequest) -> AccessOutcome:
        start_ms = int(time.time() * 1000)
        model = ""
        try:
            model = self.pipeline.embedder.version
            result = await asyncio.wait_for(self._decide(request), self.settings.access_timeout_s)
        except TimeoutError:
            result = deny("timeout", f"no decision within {self.settings.access_timeout_s:.1f}s")
        except UpstreamUnavailable as exc:
            result = deny("unavailable", str(exc))
        except InvalidArgument as exc:
            result = deny("bad_request", str(exc))
        except NotFound as exc:
            result = deny("unknown_identity", str(exc))
        except FoveaError as exc:
            result = deny("error", str(exc))
        except Exception:  # noqa: BLE001 - fail closed, whatever happened
            log.exception("VerifyAccess failed")
            result = deny("error", f"internal error (request id {request.request_id})")
        if not result.frame_count:
            result = replace(result, frame_count=len(request.frames))
        outcome = await self._audit(request, AccessOutcome(result, model, "", start_ms))
        DOOR_DECISIONS.labels(outcome.result.decision.value, outcome.result.kind).inc()
        return outcome

    async def _decide(self, request: AccessRequest) -> AccessResult:
        if not request.door_id or len(request.door_id) > 128 or not request.door_id.isprintable():
            raise InvalidArgument("door_id must have 1-128 printable characters")
        try:
            check_gallery_id(request.gallery_id)
            check_identity_id(request.identity_id)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from exc
        if not 1 <= len(request.frames) <= self.settings.max_photos:
            raise InvalidArgument(f"send 1-{self.settings.max_photos} frames, got {len(request.frames)}")
        policy = self.policies.for_door(request.door_id)
        cached = self.sync.gallery(request.gallery_id)
        self.pipeline.check_comparable(cached.info)
        if request.identity_id not in cached.index:
            raise NotFound(f"identity {request.identity_id} has no templates in gallery {request.gallery_id}")

        photos = await asyncio.gather(*(self._frame(f) for f in request.frames))
        chosen = [(p.image, p.faces.take([0])) for p in photos if isinstance(p, Photo) and len(p.faces)]
        embeddings = await self.pipeline.embed(chosen)
        try:
            distances = iter(cached.index.identity_distances(request.identity_id, embeddings).tolist())
        except KeyError as exc:  # deleted while the frames were processed
            raise NotFound(
                f"identity {request.identity_id} was deleted from gallery {request.gallery_id}"
            ) from exc
        outcomes: list[FrameOutcome] = []
        images: list[np.ndarray] = []
        faces: list[DetectedFaces | None] = []
        for photo in photos:
            if isinstance(photo, str):
                outcomes.append(FrameOutcome(problem=photo))
                faces.append(None)
            elif len(photo.faces) == 0:
                outcomes.append(FrameOutcome(problem="no face"))
                faces.append(None)
            else:
                outcomes.append(FrameOutcome(distance=next(distances)))
                faces.append(photo.faces.take([0]))
            # A frame that could not be decoded is passed on as a 1x1 black image (its face is None).
            images.append(photo.image if isinstance(photo, Photo) else np.zeros((1, 1, 3), np.uint8))
        liveness = await self.liveness[policy.liveness_check].check(images, faces)
        return decide(request.door_id, outcomes, cached.info.threshold, policy, liveness)

    async def _frame(self, data: bytes) -> Photo | str:
        """The frame's faces, or why it is unusable (a bad image); dependency failures propagate."""
        try:
            return await self.pipeline.find_faces(data)
        except InvalidArgument as exc:
            return str(exc)

    # ------------------------------------------------------------------------------------------ audit
    def _fields(self, request: AccessRequest, outcome: AccessOutcome) -> dict[str, str]:
        r = outcome.result
        return {
            "unix_ms": str(outcome.unix_ms),
            "door_id": request.door_id,
            "gallery_id": request.gallery_id,
            "claimed_identity_id": request.identity_id,
            "decision": r.decision.value,
            "reason": r.reason,
            "kind": r.kind,
            "distance": f"{outcome.distance:.6f}",
            "threshold": f"{r.threshold:.6f}",
            "embedding_model": outcome.embedding_model,
            "request_id": request.request_id,
            "liveness": r.liveness.value,
            "frame_count": str(r.frame_count),
            "matching_frames": str(r.matching_frames),
        }

    async def _audit(self, request: AccessRequest, outcome: AccessOutcome) -> AccessOutcome:
        try:
            audit_id = await self.store.append_audit(request.door_id, self._fields(request, outcome))
            return replace(outcome, audit_id=audit_id)
        except FoveaError as exc:
            why = str(exc)
        r = outcome.result
        if r.decision is Decision.GRANT:
            r = replace(
                r, decision=Decision.DENY, kind="unavailable", reason=f"audit record not written: {why}"
            )
        else:
            r = replace(r, reason=f"{r.reason}; audit record not written: {why}")
        outcome = replace(outcome, result=r)
        fields = self._fields(request, outcome)
        log.warning("audit record kept in memory until Redis is back: %s", json.dumps(fields))
        self._keep(request.door_id, fields)
        return outcome

    def _keep(self, door_id: str, fields: dict[str, str]) -> None:
        if self.settings.audit_backlog == 0:
            AUDIT_DROPPED.inc()
            return
        if len(self.backlog) >= self.settings.audit_backlog:
            self.backlog.popleft()
            AUDIT_DROPPED.inc()
        self.backlog.append((door_id, fields))
        AUDIT_BACKLOG.set(len(self.backlog))

    async def flush_backlog(self, interval_s: float = 1.0) -> None:
        """Write the records kept while Redis was down, oldest first (runs until cancelled)."""
        while True:
            await asyncio.sleep(interval_s)
            while self.backlog:
                door_id, fields = self.backlog[0]
                try:
                    await self.store.append_audit(door_id, fields)
                except FoveaError:
                    break
                self.backlog.popleft()
                AUDIT_BACKLOG.set(len(self.backlog))
                if not self.backlog:
                    log.info("audit backlog written to Redis")


__all__ = ["AccessOutcome", "AccessRequest", "DoorAccess", "NO_DISTANCE"]
