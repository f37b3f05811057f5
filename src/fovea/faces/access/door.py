"""VerifyAccess: the door decision, failing closed, and its audit record.

Nothing raises to the caller: a bad request, an unknown gallery or identity, Triton or Redis down, a timeout,
even a bug, all end as DENY with the reason (what a caller reads of an error is ``public_message``: no
internal addresses; the log has the rest). The record of every decision goes to the audit streams; when Redis
cannot take it the decision becomes DENY (an unaudited grant is not given), the record is logged and kept in
memory, and a background task writes it once Redis is back.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from fovea.common.errors import (
    FailedPrecondition,
    FoveaError,
    InvalidArgument,
    NotFound,
    UpstreamUnavailable,
    public_message,
)
from fovea.faces.access.challenge_store import ChallengeLedger, DoorChallenges, load_secret
from fovea.faces.access.core.access import (
    AccessResult,
    Decision,
    Denied,
    DoorPolicies,
    FrameOutcome,
    LivenessCheck,
    burst_spread,
    check_hours,
    decide,
    deny,
    door_gallery,
)
from fovea.faces.access.core.challenge import BLINK, Challenge
from fovea.faces.access.core.pad import GeometrySettings, PadResult, check_burst
from fovea.faces.access.core.pad_dense import DenseSettings, check_dense, combine
from fovea.faces.access.core.passive import PassiveCheck, PassiveResult
from fovea.faces.config import FacesSettings
from fovea.faces.events.stream import EventLog
from fovea.faces.metrics import AUDIT_BACKLOG, AUDIT_DROPPED, DOOR_DECISIONS
from fovea.faces.recognition.compare import Comparer
from fovea.faces.recognition.core.faces import reduce
from fovea.faces.recognition.core.mesh import dense_points
from fovea.faces.recognition.core.records import check_door_id
from fovea.faces.recognition.pipeline import FacePipeline
from fovea.faces.recognition.store import FaceStore

log = logging.getLogger(__name__)

NO_DISTANCE = -1.0  # in responses and records when no face was compared

# The reason kind of a DENY for each domain error (a missing gallery is the door's bad request: unknown
# identities are no error, see ``decide``); any other error is "error".
_KINDS: dict[type[FoveaError], str] = {
    UpstreamUnavailable: "unavailable",
    InvalidArgument: "bad_request",
    NotFound: "bad_request",
    FailedPrecondition: "bad_request",
}


INVALID_DOOR = "-"
"""The per-door audit stream of requests whose door_id is not valid (no valid id is "-"); the record keeps
what was sent."""


def audit_door(request: AccessRequest) -> str:
    """The door whose audit stream gets the record: the request's, or ``INVALID_DOOR``."""
    try:
        return check_door_id(request.door_id)
    except ValueError:
        return INVALID_DOOR


def challenge_fields(request: AccessRequest, r: AccessResult) -> dict[str, str]:
    """The audit record's challenge fields: the id the request carried ('' = none) and, when the motion was
    checked, its kind, whether it was met, the motion and threshold (IOD) and the reason."""
    c = r.challenge
    return {
        "challenge_id": request.challenge_id[:64],
        "challenge_kind": "" if c is None else c.kind,
        "challenge_met": "" if c is None else str(c.met).lower(),
        "challenge_motion": "" if c is None else f"{c.motion:.6f}",
        "challenge_threshold": "" if c is None else f"{c.threshold:.6f}",
        "challenge_reason": "" if c is None else c.reason,
    }


def passive_fields(r: AccessResult) -> dict[str, str]:
    """The audit record's passive check fields ('' when the door ran none)."""
    p = r.passive
    return {
        "passive_check": "" if p is None else p.check,
        "passive_score": "" if p is None else f"{p.score:.6f}",
        "passive_threshold": "" if p is None else f"{p.threshold:.6f}",
        "passive_attack": "" if p is None else str(p.attack).lower(),
        "passive_reason": "" if p is None else p.reason,
    }


def _public(exc: FoveaError) -> str:
    """What the caller and the audit record read of ``exc``; the log keeps the full text."""
    text = str(exc)
    message = public_message(text)
    if message != text:
        log.warning("VerifyAccess: %s for the caller as %r: %s", type(exc).__name__, message, text)
    return message


@dataclass(frozen=True)
class AccessRequest:
    door_id: str
    gallery_id: str
    identity_id: str
    frames: list[bytes]
    request_id: str  # the server's (see ``fovea.common.interceptors``)
    client_request_id: str = ""  # the caller's x-request-id
    challenge_id: str = ""  # the BeginAccess challenge this burst answers ('' = none)
    challenge_token: str = ""


@dataclass(frozen=True)
class AccessOutcome:
    result: AccessResult
    embedding_model: str
    audit_id: str  # '' when the record could not be written
    unix_ms: int

    @property
    def distance(self) -> float:
        return NO_DISTANCE if not math.isfinite(self.result.distance) else self.result.distance


class DoorAccess:
    def __init__(
        self,
        settings: FacesSettings,
        pipeline: FacePipeline,
        comparer: Comparer,
        store: FaceStore,
        policies: DoorPolicies,
        liveness: Mapping[str, LivenessCheck],
        events: EventLog | None = None,
        *,
        challenges: DoorChallenges | None = None,
        passive: Mapping[str, PassiveCheck] | None = None,
    ) -> None:
        """``events``: where each audit record, once written, is told as events (none: not told);
        ``passive``: the passive checks the policies name, by name."""
        self.settings = settings
        self.pipeline = pipeline
        self.comparer = comparer
        self.store = store
        self.policies = policies
        self.liveness = liveness
        self.passive = dict(passive or {})
        self.geometry = GeometrySettings(min_parallax=settings.pad_min_parallax)
        self.dense = DenseSettings(
            min_ratio=settings.pad_dense_min_ratio, min_residual=settings.pad_dense_min_residual
        )
        self.backlog: deque[tuple[str, dict[str, str]]] = deque()
        self.events = events
        # Challenges and replay: signed with the configured secret, single use and seen frames in Redis.
        self.challenges = challenges or DoorChallenges(
            settings, load_secret(settings), ChallengeLedger(store.redis)
        )

    async def check(self, request: AccessRequest) -> AccessOutcome:
        start_ms = int(time.time() * 1000)
        model = ""
        try:
            model = self.pipeline.embedder.version
            async with asyncio.timeout(
                self.settings.access_timeout_s
            ):  # not wait_for: see common/redis_client
                result = await self._decide(request)
        except TimeoutError:
            result = deny("timeout", f"no decision within {self.settings.access_timeout_s:.1f}s")
        except Denied as exc:
            result = deny(exc.kind, exc.reason)
        except FoveaError as exc:
            kind = next((k for t, k in _KINDS.items() if isinstance(exc, t)), "error")
            result = deny(kind, _public(exc))
        except Exception:  # noqa: BLE001 - fail closed, whatever happened
            log.exception("VerifyAccess failed")
            result = deny("error", f"internal error (request id {request.request_id})")
        if not result.frame_count:
            result = replace(result, frame_count=len(request.frames))
        outcome = await self._audit(request, AccessOutcome(result, model, "", start_ms))
        DOOR_DECISIONS.labels(outcome.result.decision.value, outcome.result.kind).inc()
        return outcome

    def begin(self, door_id: str) -> tuple[Challenge, str]:
        """BeginAccess: a challenge for the door and its token (errors: a bad door id, challenges off)."""
        return self.challenges.begin(door_id, self.policies.for_door(door_id))

    async def _decide(self, request: AccessRequest) -> AccessResult:
        try:
            check_door_id(request.door_id)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from exc
        if not 1 <= len(request.frames) <= self.settings.max_photos:
            raise InvalidArgument(f"send 1-{self.settings.max_photos} frames, got {len(request.frames)}")
        policy = self.policies.for_door(request.door_id)
        # Before anything is compared: the challenge (used up even when the decision is DENY), the
        # frames not seen before at this door, the opening hours, the door's gallery.
        challenge = await self.challenges.admit(
            request.door_id, request.challenge_id, request.challenge_token, policy
        )
        await self.challenges.check_replay(request.door_id, request.frames, policy)
        check_hours(policy, datetime.datetime.fromtimestamp(self.challenges.clock(), datetime.UTC))
        gallery_id = door_gallery(policy, request.gallery_id)
        compared = await self.comparer.compare(gallery_id, request.identity_id, request.frames, pixels=True)
        outcomes = [
            FrameOutcome(problem=p.problem) if p.face is None else FrameOutcome(distance=p.distance)
            for p in compared.photos
        ]
        # A frame that could not be decoded is passed on as a 1x1 black image (its face is None).
        images = [np.zeros((1, 1, 3), np.uint8) if p.image is None else p.image for p in compared.photos]
        in_images = [None if p.face is None else reduce(p.face, p.reduction) for p in compared.photos]
        liveness = await self.liveness[policy.liveness_check].check(images, in_images)
        dense = policy.pad != "off" and policy.pad_check == "dense"
        meshes = None
        if dense or (challenge is not None and challenge.kind == BLINK):
            meshes = await self.pipeline.meshes(
                images, [p.face for p in compared.photos], [p.reduction for p in compared.photos]
            )
        pad: PadResult | None = None
        if policy.pad != "off":
            pad = check_burst(
                [None if p.face is None else p.face.landmarks[0] for p in compared.photos],
                self.geometry,
                embeddings=compared.embeddings,
                match_threshold=compared.gallery.threshold,
            )
            if dense and meshes is not None:
                dense_result = check_dense(
                    [None if m is None else dense_points(m[:, :2]) for m in meshes],
                    self.dense,
                    embeddings=compared.embeddings,
                    match_threshold=compared.gallery.threshold,
                )
                pad = combine(pad, dense_result)
        not_enrolled = (
            None
            if compared.enrolled
            else f"identity {request.identity_id} has no templates in gallery {gallery_id}"
        )
        motion = None
        if challenge is not None:
            motion = self.challenges.check_motion(
                challenge, [None if p.face is None else p.face.landmarks[0] for p in compared.photos], meshes
            )
        passive: PassiveResult | None = None
        if policy.passive != "off":
            passive = await self.passive[policy.passive_check].check(images, in_images)
        attack = (
            passive.reason if passive is not None and passive.attack and policy.passive == "require" else None
        )
        return decide(
            request.door_id,
            outcomes,
            compared.gallery.threshold,
            policy,
            liveness,
            # consecutive faces where every frame must match the claimed identity; any two where some may miss
            spread=burst_spread(compared.embeddings, consecutive=not policy.min_matching_frames),
            not_enrolled=not_enrolled,
            pad=pad,
            challenge=motion,
            passive_attack=attack,
            passive=passive,
        )

    # ------------------------------------------------------------------------------------------ audit
    def _fields(self, request: AccessRequest, outcome: AccessOutcome) -> dict[str, str]:
        r = outcome.result
        return {
            "unix_ms": str(outcome.unix_ms),
            "door_id": request.door_id,
            "gallery_id": request.gallery_id or (self.policies.for_door(request.door_id).gallery or ""),
            "claimed_identity_id": request.identity_id,
            "decision": r.decision.value,
            "reason": r.reason,
            "kind": r.kind,
            "distance": f"{outcome.distance:.6f}",
            "threshold": f"{r.threshold:.6f}",
            "embedding_model": outcome.embedding_model,
            "request_id": request.request_id,
            "client_request_id": request.client_request_id,
            "liveness": r.liveness.value,
            "frame_count": str(r.frame_count),
            "matching_frames": str(r.matching_frames),
            "pad_verdict": "NOT_CHECKED" if r.pad is None else r.pad.verdict.value,
            "pad_score": "" if r.pad is None else f"{r.pad.score:.6f}",
            "pad_threshold": "" if r.pad is None else f"{r.pad.threshold:.6f}",
            "pad_reasons": "" if r.pad is None else json.dumps(list(r.pad.reasons)),
            **passive_fields(r),
            **challenge_fields(request, r),
        }

    async def _audit(self, request: AccessRequest, outcome: AccessOutcome) -> AccessOutcome:
        try:
            fields = self._fields(request, outcome)
            audit_id = await self.store.append_audit(audit_door(request), fields)
            self._written(fields, audit_id, self._snapshot(request, outcome))
            return replace(outcome, audit_id=audit_id)
        except FoveaError as exc:
            why = _public(exc)
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
        self._keep(audit_door(request), fields)
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

    def _snapshot(self, request: AccessRequest, outcome: AccessOutcome) -> bytes | None:
        """The burst's middle frame, where the door's policy asks for a snapshot of this decision."""
        door = audit_door(request)
        if not request.frames or not self.policies.wants_snapshot(door, outcome.result.decision):
            return None
        return request.frames[len(request.frames) // 2]

    def _written(self, fields: dict[str, str], audit_id: str, frame: bytes | None = None) -> None:
        """An audit record is in Redis: tell its events (in the background; the decision never waits), with
        the burst's ``frame`` where the door's policy asks for a snapshot."""
        if self.events is not None:
            self.events.audited(fields, audit_id, frame)

    async def flush_backlog(self, interval_s: float = 1.0) -> None:
        """Write the records kept while Redis was down, oldest first (runs until cancelled)."""
        while True:
            await asyncio.sleep(interval_s)
            while self.backlog:
                door_id, fields = self.backlog[0]
                try:
                    self._written(fields, await self.store.append_audit(door_id, fields))
                except FoveaError:
                    break
                self.backlog.popleft()
                AUDIT_BACKLOG.set(len(self.backlog))
                if not self.backlog:
                    log.info("audit backlog written to Redis")


__all__ = ["AccessOutcome", "AccessRequest", "DoorAccess", "NO_DISTANCE"]
