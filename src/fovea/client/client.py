"""A small synchronous client of the gateway: one method per RPC, each returning the dataclasses of
:mod:`fovea.client.results` (``dataclasses.asdict`` gives JSON), or a plain value (an id, a count)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from grpc_health.v1 import health_pb2, health_pb2_grpc

import fovea.client.messages as messages
from fovea.classify.v1 import classify_pb2, classify_pb2_grpc
from fovea.client.connection import Connection, FoveaClientError
from fovea.client.results import (
    AccessResult,
    AuditRecord,
    Challenge,
    ClassifierInfo,
    ClassifierVersions,
    ClassifyResult,
    DetectResult,
    ExplainResult,
    FaceEvent,
    Gallery,
    GatysParams,
    IdentifiedFace,
    Identity,
    IdentityPage,
    ModelInfo,
    StyleEntry,
    StyleJob,
    TrainingJob,
    VerifyResult,
    WebhookDeadLetter,
    WebhookRedrive,
)
from fovea.common.v1 import common_pb2
from fovea.detection.v1 import detection_pb2, detection_pb2_grpc
from fovea.faces.v1 import faces_pb2, faces_pb2_grpc
from fovea.models.v1 import models_pb2, models_pb2_grpc
from fovea.style.v1 import style_pb2, style_pb2_grpc


class FoveaClient(Connection):
    """The gateway's services as typed methods; ``detection``, ``faces``, ``style``, ``classifier``,
    ``models`` and ``health`` are the raw stubs (for :meth:`call` / :meth:`stream`)."""

    def __init__(
        self,
        address: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        *,
        tls: bool | None = None,
        ca: Path | None = None,
        cert: Path | None = None,
        key: Path | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        """``address``: host:port (default ``FOVEA_GATEWAY``, else 127.0.0.1:50051); ``api_key``: default
        ``FOVEA_API_KEY``, else the local stack's key file; ``tls``/``ca``/``cert``/``key``: see
        :meth:`fovea.client.connection.Tls.resolve` (plaintext by default only on loopback); ``metadata``: sent
        with every call besides the API key. ``ValueError`` for TLS options that do not go together or a
        certificate file that cannot be read."""
        super().__init__(address, api_key, timeout_s, tls=tls, ca=ca, cert=cert, key=key, metadata=metadata)
        self.detection = detection_pb2_grpc.DetectionServiceStub(self.channel)
        self.faces = faces_pb2_grpc.FacesServiceStub(self.channel)
        self.style = style_pb2_grpc.StyleServiceStub(self.channel)
        self.classifier = classify_pb2_grpc.ClassifyServiceStub(self.channel)
        self.models = models_pb2_grpc.ModelsServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def __enter__(self) -> FoveaClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- health and models
    def health_status(self, service: str = "") -> str:
        """SERVING, NOT_SERVING, ... of ``service`` ('' = the gateway as a whole)."""
        reply = self.call(self.health.Check, health_pb2.HealthCheckRequest(service=service), 5.0)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    def list_models(self) -> list[ModelInfo]:
        reply = self.call(self.models.ListModels, models_pb2.ListModelsRequest())
        return [messages.model_info(m) for m in reply.models]

    # --- detection
    def detect(
        self,
        image: bytes,
        *,
        model: str = "",
        min_score: float = 0.0,
        iou_threshold: float = 0.0,
        max_detections: int = 0,
        classes: Sequence[str] = (),
        annotate: bool = False,
        max_candidates: int = 0,
    ) -> DetectResult:
        request = detection_pb2.DetectRequest(
            image=common_pb2.Image(data=image),
            model=model,
            min_score=min_score,
            iou_threshold=iou_threshold,
            max_detections=max_detections,
            classes=list(classes),
            annotate=annotate,
            max_candidates=max_candidates,
        )
        return messages.detect_result(self.call(self.detection.Detect, request))

    def detect_many(self, images: Sequence[bytes], **options: Any) -> list[DetectResult]:
        """``images`` over one DetectStream, in order; ``options`` as :meth:`detect` takes them."""
        requests = [
            detection_pb2.DetectRequest(image=common_pb2.Image(data=img), client_tag=str(i), **options)
            for i, img in enumerate(images)
        ]
        replies = self.stream(self.detection.DetectStream, iter(requests))
        return [messages.detect_result(r) for r in replies]

    # --- classification
    def classify(self, image: bytes, *, model: str = "", top_k: int = 0, version: int = 0) -> ClassifyResult:
        """The ``top_k`` most probable classes (0 = the service default, 5) of ``image``; ``version``: a trained
        classifier's version (0 = its active one)."""
        request = classify_pb2.ClassifyRequest(
            image=common_pb2.Image(data=image), model=model, top_k=top_k, version=version
        )
        return messages.classify_result(self.call(self.classifier.Classify, request))

    def explain(
        self, image: bytes, *, model: str = "", label: str = "", render: bool = False
    ) -> ExplainResult:
        """Where the classifier looks (Grad-CAM over its last conv block) for ``label`` (empty: the most probable
        class) in ``image``; ``render``: also the PNG overlay."""
        request = classify_pb2.ExplainRequest(
            image=common_pb2.Image(data=image), model=model, label=label, render=render
        )
        return messages.explain_result(self.call(self.classifier.Explain, request))

    def list_classifiers(self) -> list[ClassifierInfo]:
        reply = self.call(self.classifier.ListClassifiers, classify_pb2.ListClassifiersRequest())
        return [messages.classifier_info(c) for c in reply.classifiers]

    def classifier_versions(self, name: str) -> ClassifierInfo:
        """A trained classifier: ``active_version`` and ``versions`` (version, labels, created, accuracy)."""
        for info in self.list_classifiers():
            if info.name == name and info.trained:
                return info
        raise FoveaClientError("NOT_FOUND", f"no trained classifier {name!r}")

    def train_classifier(
        self,
        name: str,
        images: Sequence[tuple[str, bytes]],
        *,
        epochs: int = 0,
        learning_rate: float = 0.0,
        validation_fraction: float = 0.0,
        augment_copies: int = 0,
        seed: int = 0,
        groups: Sequence[str] | None = None,
        recipe: str = "",
        sources: Sequence[str] | None = None,
    ) -> TrainingJob:
        """Queue a training job on ``(label, encoded image)`` pairs (0 = the service's defaults); returns at
        once with the QUEUED job. ``groups``: each image's group (kept on one side of the validation split);
        ``recipe``: "" or "pad" (a passive presentation-attack check, ``fovea.contracts.pad_classifier``);
        ``sources``: each image's file name, which the service's messages name it by."""
        if groups is not None and len(groups) != len(images):
            raise ValueError(f"{len(groups)} groups for {len(images)} images")
        if sources is not None and len(sources) != len(images):
            raise ValueError(f"{len(sources)} sources for {len(images)} images")
        request = classify_pb2.TrainClassifierRequest(
            name=name,
            images=[
                classify_pb2.LabelledImage(
                    label=label,
                    image=common_pb2.Image(data=data),
                    group=groups[i] if groups else "",
                    source=sources[i] if sources else "",
                )
                for i, (label, data) in enumerate(images)
            ],
            options=classify_pb2.TrainingOptions(
                epochs=epochs,
                learning_rate=learning_rate,
                validation_fraction=validation_fraction,
                augment_copies=augment_copies,
                seed=seed,
                recipe=recipe,
            ),
        )
        return messages.training_job(self.call(self.classifier.TrainClassifier, request))

    def training_job(self, job_id: str) -> TrainingJob:
        request = classify_pb2.GetTrainingJobRequest(job_id=job_id)
        return messages.training_job(self.call(self.classifier.GetTrainingJob, request))

    def watch_training_job(self, job_id: str, timeout_s: float = 3600.0) -> Iterator[TrainingJob]:
        """The job at each change (stage, epoch, loss, validation accuracy) until it ends."""
        request = classify_pb2.GetTrainingJobRequest(job_id=job_id)
        for message in self.stream(self.classifier.WatchTrainingJob, request, timeout_s):
            yield messages.training_job(message)

    def rollback_classifier(self, name: str, version: int = 0) -> ClassifierVersions:
        """Make ``version`` (0 = the one before the active one) the version served by default."""
        request = classify_pb2.RollbackClassifierRequest(name=name, version=version)
        reply = self.call(self.classifier.RollbackClassifier, request)
        versions = [messages.classifier_version(v) for v in reply.versions]
        return ClassifierVersions(reply.name, reply.active_version, versions)

    def delete_classifier(self, name: str) -> int:
        """Unload and delete every version of trained classifier ``name``; returns how many there were."""
        request = classify_pb2.DeleteClassifierRequest(name=name)
        return int(self.call(self.classifier.DeleteClassifier, request).versions_deleted)

    # --- faces
    def create_gallery(
        self, gallery: str, threshold: float = 0.0, metadata: dict[str, str] | None = None
    ) -> Gallery:
        """A new gallery; threshold 0 = the embedding model's default (0.6 for dlib)."""
        request = faces_pb2.CreateGalleryRequest(
            gallery_id=gallery, threshold=threshold, metadata=metadata or {}
        )
        return messages.gallery(self.call(self.faces.CreateGallery, request))

    def ensure_gallery(self, gallery: str, threshold: float = 0.0) -> Gallery:
        """The gallery, created first when it does not exist."""
        try:
            return self.create_gallery(gallery, threshold)
        except FoveaClientError as exc:
            if exc.code != "ALREADY_EXISTS":
                raise
        return self.get_gallery(gallery)

    def get_gallery(self, gallery: str) -> Gallery:
        request = faces_pb2.GetGalleryRequest(gallery_id=gallery)
        return messages.gallery(self.call(self.faces.GetGallery, request))

    def list_galleries(self) -> list[Gallery]:
        reply = self.call(self.faces.ListGalleries, faces_pb2.ListGalleriesRequest())
        return [messages.gallery(g) for g in reply.galleries]

    def delete_gallery(self, gallery: str) -> None:
        self.call(self.faces.DeleteGallery, faces_pb2.DeleteGalleryRequest(gallery_id=gallery))

    def enroll(
        self,
        gallery: str,
        identity: str,
        photos: Sequence[bytes],
        face_index: int = -1,
        *,
        metadata: dict[str, str] | None = None,
        create_only: bool = False,
    ) -> list[str]:
        """Add one template per photo (face_index -1: refuse photos with several faces); the new template ids."""
        request = faces_pb2.EnrollRequest(
            gallery_id=gallery,
            identity_id=identity,
            photos=[common_pb2.Image(data=p) for p in photos],
            face_index=face_index,
            metadata=metadata or {},
            create_only=create_only,
        )
        return list(self.call(self.faces.Enroll, request).added_template_ids)

    def get_identity(self, gallery: str, identity: str) -> Identity:
        request = faces_pb2.GetIdentityRequest(gallery_id=gallery, identity_id=identity)
        return messages.identity(self.call(self.faces.GetIdentity, request))

    def list_identities(self, gallery: str, page_size: int = 0, page_token: str = "") -> IdentityPage:
        """One page of identities (in id order) and the token of the next page ('' after the last)."""
        request = faces_pb2.ListIdentitiesRequest(
            gallery_id=gallery, page_size=page_size, page_token=page_token
        )
        reply = self.call(self.faces.ListIdentities, request)
        return IdentityPage([messages.identity(i) for i in reply.identities], reply.next_page_token)

    def delete_identity(self, gallery: str, identity: str) -> None:
        request = faces_pb2.DeleteIdentityRequest(gallery_id=gallery, identity_id=identity)
        self.call(self.faces.DeleteIdentity, request)

    def delete_template(self, gallery: str, identity: str, template: str) -> None:
        request = faces_pb2.DeleteTemplateRequest(
            gallery_id=gallery, identity_id=identity, template_id=template
        )
        self.call(self.faces.DeleteTemplate, request)

    def verify(self, gallery: str, identity: str, photo: bytes) -> VerifyResult:
        request = faces_pb2.VerifyRequest(
            gallery_id=gallery, identity_id=identity, photo=common_pb2.Image(data=photo)
        )
        return messages.verify_result(self.call(self.faces.Verify, request))

    def identify(self, gallery: str, photo: bytes, top_k: int = 1) -> list[IdentifiedFace]:
        request = faces_pb2.IdentifyRequest(
            gallery_id=gallery, photo=common_pb2.Image(data=photo), top_k=top_k
        )
        reply = self.call(self.faces.Identify, request)
        return [messages.identified_face(f) for f in reply.faces]

    def begin_access(self, door: str) -> Challenge:
        """A challenge for ``door`` (whose policy uses challenges): the motion the next burst must show."""
        r = self.call(self.faces.BeginAccess, faces_pb2.BeginAccessRequest(door_id=door))
        return Challenge(r.challenge_id, r.door_id, r.kind, r.instruction, r.expires_unix_ms, r.token)

    def verify_access(
        self,
        door: str,
        gallery: str,
        identity: str,
        frames: Sequence[bytes],
        challenge: Challenge | tuple[str, str] | None = None,
    ) -> AccessResult:
        """``challenge``: the BeginAccess challenge this burst answers (or its (challenge_id, token))."""
        answer = None
        if challenge is not None:
            cid, token = (
                (challenge.challenge_id, challenge.token) if isinstance(challenge, Challenge) else challenge
            )
            answer = faces_pb2.ChallengeAnswer(challenge_id=cid, token=token)
        request = faces_pb2.VerifyAccessRequest(
            door_id=door,
            gallery_id=gallery,
            claimed_identity_id=identity,
            frames=[common_pb2.Image(data=f) for f in frames],
            challenge=answer,
        )
        return messages.access_result(self.call(self.faces.VerifyAccess, request))

    def audit_records(self, door: str = "", limit: int = 0) -> list[AuditRecord]:
        """Door access records, newest first (one door's, or every door's)."""
        request = faces_pb2.ListAuditRecordsRequest(door_id=door, limit=limit)
        reply = self.call(self.faces.ListAuditRecords, request)
        return [messages.audit_record(r) for r in reply.records]

    def watch_events(
        self,
        *,
        doors: Sequence[str] = (),
        galleries: Sequence[str] = (),
        kinds: Sequence[str] = (),
        after: str = "",
        timeout_s: float = 7 * 24 * 3600.0,
    ) -> Iterator[FaceEvent]:
        """Events as they happen (filters: empty = any); ``after``: an event id to replay what followed it
        first (``"0"``: every kept event). Ends at ``timeout_s`` (DEADLINE_EXCEEDED; resume with the last
        event id) or when the caller stops iterating."""
        request = faces_pb2.WatchEventsRequest(
            door_ids=list(doors), gallery_ids=list(galleries), kinds=list(kinds), after_event_id=after
        )
        for event in self.stream(self.faces.WatchEvents, request, timeout_s):
            yield messages.face_event(event)

    def webhook_dead_letters(self, endpoint: str = "", limit: int = 0) -> list[WebhookDeadLetter]:
        """Webhook deliveries that failed every attempt, newest first."""
        request = faces_pb2.ListWebhookDeadLettersRequest(endpoint=endpoint, limit=limit)
        reply = self.call(self.faces.ListWebhookDeadLetters, request)
        return [
            WebhookDeadLetter(
                d.delivery_id,
                d.endpoint,
                messages.face_event(d.event),
                d.attempts,
                d.last_error,
                d.dead_unix_ms,
            )
            for d in reply.dead_letters
        ]

    def redrive_webhooks(self, endpoint: str, delivery_ids: Sequence[str] = ()) -> WebhookRedrive:
        """Send an endpoint's dead letters (those named, or all) again: how many were requeued, and which
        were skipped (their delivery already queued or under way; still in the dead-letter list)."""
        request = faces_pb2.RedriveWebhookDeadLettersRequest(
            endpoint=endpoint, delivery_ids=list(delivery_ids)
        )
        r = self.call(self.faces.RedriveWebhookDeadLetters, request)
        return WebhookRedrive(r.redriven, r.skipped, list(r.skipped_delivery_ids))

    # --- style
    def list_styles(self) -> list[str]:
        """The feed-forward styles' names, in index order."""
        return [s.name for s in self.style_catalog()]

    def style_catalog(self) -> list[StyleEntry]:
        """The feed-forward styles with what each looks like and its other names (``styleN``)."""
        reply = self.call(self.style.ListStyles, style_pb2.ListStylesRequest())
        return [StyleEntry(s.name, s.index, s.description, list(s.aliases)) for s in reply.styles]

    def submit_style(
        self,
        content: bytes,
        *,
        style: str = "",
        style_image: bytes | None = None,
        idempotency_key: str = "",
        gatys: GatysParams | None = None,
        max_side: int = 0,
        preserve_color: bool = False,
    ) -> StyleJob:
        """Queue a job: a named style (feed-forward) or a style image (Gatys, with ``gatys`` parameters).

        ``preserve_color`` keeps the content's colours (only the luminance is stylised). ``ValueError`` for
        an optimizer or init ``GatysParams`` does not know."""
        request = style_pb2.SubmitJobRequest(
            content=common_pb2.Image(data=content),
            idempotency_key=idempotency_key,
            max_side=max_side,
            preserve_color=preserve_color,
        )
        if style_image is not None:
            request.style_image.data = style_image
            if gatys is not None:
                request.gatys.CopyFrom(messages.gatys_params(gatys))
        else:
            request.style_name = style
        return messages.style_job(self.call(self.style.SubmitJob, request))

    def get_job(self, job_id: str, omit_result: bool = False) -> StyleJob:
        request = style_pb2.GetJobRequest(job_id=job_id, omit_result=omit_result)
        return messages.style_job(self.call(self.style.GetJob, request))

    def cancel_job(self, job_id: str) -> StyleJob:
        request = style_pb2.CancelJobRequest(job_id=job_id)
        return messages.style_job(self.call(self.style.CancelJob, request))

    def watch_job(self, job_id: str, timeout_s: float = 3600.0) -> Iterator[StyleJob]:
        """The job at each change (state, progress) until it ends."""
        request = style_pb2.WatchJobRequest(job_id=job_id)
        for message in self.stream(self.style.WatchJob, request, timeout_s):
            yield messages.style_job(message)
