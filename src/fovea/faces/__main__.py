"""``fovea serve faces`` (wiring only)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import torch

from fovea.common.errors import FoveaError
from fovea.common.logs import setup_logging
from fovea.common.metrics import serve_metrics
from fovea.common.server import Registration, create_server, internal_token, serve_forever, watch_readiness
from fovea.faces.access.challenge_store import ChallengeLedger, DoorChallenges, load_secret
from fovea.faces.access.core.access import LIVENESS_CHECKS, DoorPolicies, DoorPolicy, LivenessCheck
from fovea.faces.access.core.passive import PassiveCheck, trained_name
from fovea.faces.access.door import DoorAccess
from fovea.faces.access.passive import TrainedPassiveCheck
from fovea.faces.config import FacesSettings
from fovea.faces.events.mqtt import MqttPublisher, load_broker
from fovea.faces.events.stream import EventLog
from fovea.faces.events.webhooks import WebhookDelivery, consumer_name, load_webhooks
from fovea.faces.recognition.compare import Comparer
from fovea.faces.recognition.pipeline import FacePipeline, FacesTriton
from fovea.faces.recognition.store import FaceStore
from fovea.faces.recognition.sync import GallerySync
from fovea.faces.servicer import FacesServicer
from fovea.faces.v1 import faces_pb2, faces_pb2_grpc

log = logging.getLogger(__name__)


def load_policies(settings: FacesSettings) -> DoorPolicies:
    """The door policies: the JSON file when set (a bad file stops the start), else the default policy."""
    default = DoorPolicy(
        liveness_check=settings.liveness_check,
        deny_unchecked_liveness=settings.deny_unchecked_liveness,
        min_matching_frames=settings.min_matching_frames or None,
    )
    path = settings.door_policies_file
    if path is None:
        return DoorPolicies(default)
    try:
        raw = json.loads(path.read_text())
        return DoorPolicies.from_dict(raw, default)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"FOVEA_FACES_DOOR_POLICIES_FILE {path}: {exc}") from exc


def challenge_secret(settings: FacesSettings) -> bytes:
    """The key door challenges are signed with (a file that cannot be read stops the start)."""
    try:
        return load_secret(settings)
    except ValueError as exc:
        raise SystemExit(f"FOVEA_FACES_CHALLENGE_SECRET_FILE: {exc}") from exc


def liveness_checks(policies: DoorPolicies) -> dict[str, LivenessCheck]:
    names = {policies.default.liveness_check, *(p.liveness_check for p in policies.doors.values())}
    return {name: LIVENESS_CHECKS[name]() for name in names}


def passive_checks(
    policies: DoorPolicies, triton: FacesTriton, settings: FacesSettings
) -> dict[str, PassiveCheck]:
    """The passive checks the policies run (only trained:<name> ones can run; the registry refused the
    others at load)."""
    names = {p.passive_check for p in (policies.default, *policies.doors.values()) if p.passive != "off"}
    return {
        name: TrainedPassiveCheck(name, triton, settings.trained_repository, settings.triton_timeout_s)
        for name in names
        if trained_name(name) is not None
    }


async def purge_once(store: FaceStore) -> None:
    """Remove keys of galleries deleted before a crash (best effort; DeleteGallery purges too)."""
    with contextlib.suppress(FoveaError):
        await store.purge_deleted()


async def run(settings: FacesSettings) -> None:
    policies = load_policies(settings)  # fails fast
    secret = challenge_secret(settings)  # so does this
    endpoints = load_webhooks(settings)  # so does this
    broker = load_broker(settings)  # and this
    # Alignment is small per face; one torch thread per worker thread keeps concurrent requests from
    # oversubscribing the cores that Triton's model instances need.
    torch.set_num_threads(1)
    triton = FacesTriton(
        settings.triton_url,
        timeout_s=settings.triton_timeout_s,
        token=internal_token(settings.internal_token_file),
        http_url=settings.triton_http_url,
    )
    store = FaceStore(
        settings.redis_url,
        changes_maxlen=settings.changes_maxlen,
        audit_maxlen=settings.audit_maxlen,
        min_replicas=settings.redis_min_replicas,
        replica_timeout_ms=settings.redis_replica_timeout_ms,
    )
    sync = GallerySync(store)
    pipeline = FacePipeline(settings, triton)
    comparer = Comparer(pipeline, sync)
    # door bursts run their own detector (the PAD checks read its landmarks' motion), the same embedder
    door_settings = settings.for_doors()
    door_pipeline = pipeline if door_settings is settings else FacePipeline(door_settings, triton)
    door_comparer = comparer if door_pipeline is pipeline else Comparer(door_pipeline, sync)
    events = EventLog(
        settings.redis_url,
        maxlen=settings.events_maxlen,
        max_watchers=settings.max_event_watchers,
        snapshots=broker is not None,
        snapshot_ttl_s=settings.snapshot_ttl_s,
        snapshot_max_side=settings.snapshot_max_side,
    )
    webhooks = WebhookDelivery(settings, endpoints, events.redis)
    mqtt = MqttPublisher(settings, broker, events.redis, policies, consumer_name(settings))
    challenges = DoorChallenges(settings, secret, ChallengeLedger(store.redis))
    door = DoorAccess(
        settings,
        door_pipeline,
        door_comparer,
        store,
        policies,
        liveness_checks(policies),
        events,
        challenges=challenges,
        passive=passive_checks(policies, triton, settings),
    )
    service = faces_pb2.DESCRIPTOR.services_by_name["FacesService"]
    handle = await create_server(
        "faces",
        f"{settings.host}:{settings.port}",
        [
            Registration(
                faces_pb2_grpc.add_FacesServiceServicer_to_server,
                FacesServicer(settings, pipeline, store, sync, comparer, door, events, webhooks.dead_letters),
                service.full_name,
            )
        ],
        max_message_bytes=settings.max_message_bytes,
        internal_token_file=settings.internal_token_file,
    )
    serve_metrics(settings.host, settings.metrics_port)
    tasks = [
        asyncio.create_task(sync.run()),
        asyncio.create_task(door.flush_backlog()),
        asyncio.create_task(purge_once(store)),
        asyncio.create_task(webhooks.run()),
        asyncio.create_task(mqtt.run()),
    ]

    async def ready() -> bool:
        return (
            sync.in_sync
            and await store.ping()
            and await pipeline.ready()
            and (door_pipeline is pipeline or await door_pipeline.ready())
        )

    async def close() -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await triton.close()
        await sync.close()
        await store.close()
        await events.close()

    await serve_forever(handle, watch_readiness(handle, ready), on_stop=close)


def main() -> None:
    settings = FacesSettings()
    setup_logging(settings.log_level)
    asyncio.run(run(settings))
