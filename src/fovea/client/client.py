"""A small synchronous client of the gateway; results are plain dataclasses (``asdict`` gives JSON)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fovea.classify.v1 import classify_pb2, classify_pb2_grpc
from fovea.common.v1 import common_pb2
from fovea.detection.v1 import detection_pb2, detection_pb2_grpc
from fovea.faces.v1 import faces_pb2, faces_pb2_grpc
from fovea.models.v1 import models_pb2, models_pb2_grpc
from fovea.style.v1 import style_pb2, style_pb2_grpc

DEFAULT_GATEWAY = "127.0.0.1:50051"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class FoveaClientError(Exception):
    """A call failed: ``code`` is the gRPC status name (e.g. INVALID_ARGUMENT), ``message`` the reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class Detection:
    label: str
    class_id: int
    score: float
    box: list[float]  # [x1, y1, x2, y2], absolute pixels of the original image


@dataclass
class DetectResult:
    image_size: list[int]  # [width, height]
    model: str
    detections: list[Detection]
    annotated_png: bytes | None = field(default=None, repr=False)


@dataclass
class Classification:
    label: str
    class_id: int
    probability: float


@dataclass
class ExplainResult:
    """Grad-CAM of one class (``fovea.classify.v1.ExplainResponse``): ``heatmap`` rows of ``[0, 1]`` values over
    ``crop`` (x1, y1, x2, y2 in the original image's pixels); ``png`` the overlay when asked for."""

    image_size: list[int]  # [width, height]
    model: str
    explained: Classification  # the class the map is for
    top: Classification  # the most probable class
    heatmap: list[list[float]]  # map_height rows of map_width values, row 0 at the top
    peak: float  # the map's maximum before it was divided by it
    crop: list[float]
    png: bytes | None = field(default=None, repr=False)


@dataclass
class ClassifyResult:
    image_size: list[int]  # [width, height]
    model: str
    classifications: list[Classification]  # most probable first
    version: int = 0  # a trained classifier's version that answered (0: built in)


@dataclass
class TrainingJob:
    """A classifier training job (``fovea.classify.v1.TrainingJob``); ``result`` once SUCCEEDED: version,
    validation_accuracy, train_accuracy, labels, classes (per-class accuracy = recall, precision, images),
    confusion (rows = true class), timings."""

    job_id: str
    name: str
    state: str  # QUEUED, RUNNING, SUCCEEDED, FAILED
    stage: str
    epoch: int
    epochs: int
    loss: float
    validation_accuracy: float
    error: str = ""
    result: dict[str, Any] | None = None


@dataclass
class VerifyResult:
    match: bool
    distance: float
    threshold: float
    embedding_model: str = ""
    box: list[float] = field(default_factory=list)  # the face compared (the largest in the photo)


@dataclass
class Candidate:
    identity: str
    distance: float


@dataclass
class IdentifiedFace:
    box: list[float]
    identity: str | None  # None: the nearest identity is not below the gallery threshold ("unknown")
    distance: float
    candidates: list[Candidate] = field(default_factory=list)


@dataclass
class Gallery:
    gallery_id: str
    threshold: float
    embedding_model: str
    identity_count: int
    metadata: dict[str, str]


@dataclass
class Template:
    template_id: str
    embedding_model: str
    created_unix_ms: int


@dataclass
class Identity:
    gallery_id: str
    identity_id: str
    metadata: dict[str, str]
    templates: list[Template]


@dataclass
class PadCheck:
    """A presentation-attack check of a burst (issue 10)."""

    check: str  # "geometry"; empty when not checked
    verdict: str  # PAD_NOT_CHECKED | PAD_BONA_FIDE | PAD_ATTACK | PAD_UNDECIDED
    score: float  # higher = more bona fide (geometry: the nose's travel in inter-ocular distances)
    threshold: float
    reasons: list[str]


def _pad(p: faces_pb2.PadCheck) -> PadCheck:
    return PadCheck(
        p.check,
        faces_pb2.PadVerdict.Name(p.verdict),
        round(p.score, 4),
        round(p.threshold, 4),
        list(p.reasons),
    )


@dataclass
class AccessResult:
    decision: str  # GRANT | DENY
    reason: str
    distance: float  # best distance over the frames; -1 when no face was compared
    threshold: float
    embedding_model: str
    request_id: str
    liveness: str  # NOT_CHECKED | LIVE | SPOOF
    audit_id: str  # empty when the record could not be written (the decision is then DENY)
    pad: PadCheck | None = None  # as the door's policy asks (verdict PAD_NOT_CHECKED when off)
    reason_kind: str = ""  # match, no_match, pad, challenge_expired, replay, ... (see the proto)
    challenge: ChallengeCheck | None = None  # None when the request carried no challenge


@dataclass
class AuditRecord:
    audit_id: str
    unix_ms: int
    door_id: str
    gallery_id: str
    claimed_identity_id: str
    decision: str
    reason: str
    distance: float
    threshold: float
    embedding_model: str
    request_id: str
    liveness: str
    frame_count: int
    matching_frames: int
    pad: PadCheck | None = None
    reason_kind: str = ""
    challenge: ChallengeCheck | None = None


@dataclass
class Challenge:
    """A door challenge from BeginAccess: show ``instruction`` to the person, send the burst with
    ``challenge_id`` and ``token`` before ``expires_unix_ms``."""

    challenge_id: str
    door_id: str
    kind: str  # turn_left | turn_right | look_up | look_down (the person's own left / right)
    instruction: str
    expires_unix_ms: int
    token: str


@dataclass
class ChallengeCheck:
    """How a burst answered its challenge."""

    challenge_id: str
    kind: str  # '' when the challenge failed before its motion was measured
    met: bool
    motion: float  # the nose's travel in the asked direction, inter-ocular distances (nan: not measured)
    threshold: float
    reason: str


def _challenge(c: faces_pb2.ChallengeCheck) -> ChallengeCheck | None:
    if not c.challenge_id:
        return None
    return ChallengeCheck(c.challenge_id, c.kind, c.met, round(c.motion, 4), round(c.threshold, 4), c.reason)


@dataclass
class StyleEntry:
    name: str
    index: int
    description: str
    aliases: list[str] = field(default_factory=list)


def _gallery(g: faces_pb2.Gallery) -> Gallery:
    return Gallery(g.gallery_id, round(g.threshold, 4), g.embedding_model, g.identity_count, dict(g.metadata))


def _identity(i: faces_pb2.Identity) -> Identity:
    templates = [Template(t.template_id, t.embedding_model, t.created_unix_ms) for t in i.templates]
    return Identity(i.gallery_id, i.identity_id, dict(i.metadata), templates)


def _box(b: common_pb2.BoundingBox) -> list[float]:
    return [round(b.x1, 2), round(b.y1, 2), round(b.x2, 2), round(b.y2, 2)]


def default_api_key() -> str:
    """``FOVEA_API_KEY``, else the local stack's key file (``$FOVEA_DATA_DIR/api-key``), else empty."""
    if os.environ.get("FOVEA_API_KEY"):
        return os.environ["FOVEA_API_KEY"]
    path = Path(os.environ.get("FOVEA_DATA_DIR", ".data")) / "api-key"
    return path.read_text().strip() if path.exists() else ""


def _flag(name: str) -> bool | None:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return None
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={value!r}: use 1/true or 0/false")


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value) if value else None


def _host_of(address: str) -> str:
    if address.startswith("["):
        return address[1 : address.index("]")] if "]" in address else address
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


def _is_loopback(host: str) -> bool:
    from fovea.gateway.tls import is_loopback

    return is_loopback(host)


@dataclass(frozen=True)
class Tls:
    """How the client reaches the gateway: TLS with ``ca`` (None = the system's roots), and for mTLS a client
    ``cert`` + ``key``; ``enabled`` False = plaintext."""

    enabled: bool
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    @classmethod
    def resolve(
        cls,
        address: str,
        tls: bool | None = None,
        ca: Path | None = None,
        cert: Path | None = None,
        key: Path | None = None,
    ) -> Tls:
        """Arguments first, then ``FOVEA_TLS``, ``FOVEA_TLS_CA``, ``FOVEA_TLS_CERT``, ``FOVEA_TLS_KEY``.
        Without a choice, TLS is on unless the gateway is on loopback; a CA or client certificate implies TLS.
        """
        ca = ca or _env_path("FOVEA_TLS_CA")
        cert = cert or _env_path("FOVEA_TLS_CERT")
        key = key or _env_path("FOVEA_TLS_KEY")
        if (cert is None) != (key is None):
            raise ValueError("a client certificate needs its key: give both --cert and --key (or neither)")
        choice = tls if tls is not None else _flag("FOVEA_TLS")
        if choice is None:
            choice = bool(ca or cert) or not _is_loopback(_host_of(address))
        if not choice and (ca or cert):
            raise ValueError("--ca/--cert/--key are TLS options: they cannot be used with --no-tls")
        return cls(choice, ca, cert, key)

    def credentials(self) -> grpc.ChannelCredentials:
        def read(path: Path | None, what: str) -> bytes | None:
            if path is None:
                return None
            try:
                return path.read_bytes()
            except OSError as exc:
                raise ValueError(f"{what} {path}: {exc.strerror or exc}") from None

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca, "CA file"),
            private_key=read(self.key, "client key file"),
            certificate_chain=read(self.cert, "client certificate file"),
        )


def explain_unavailable(details: str, tls: Tls) -> str:
    """Say what a failed connection most likely means, after grpc's own words."""
    text = details.lower()
    closed = any(s in text for s in ("socket closed", "connection reset", "eof", "broken pipe"))
    if any(s in text for s in ("certificate_verify_failed", "certificate verify failed", "bad_signature")):
        where = f"the CA in {tls.ca}" if tls.ca else "the system's trusted CAs"
        hint = f"the gateway's certificate is not signed by {where}: pass the right --ca / FOVEA_TLS_CA"
    elif any(s in text for s in ("wrong_version_number", "packet_length_too_long", "record_layer_failure")):
        hint = "the gateway does not speak TLS here: try --no-tls"
    elif tls.enabled and (closed or "handshake" in text or "ssl" in text or "certificate" in text):
        hint = "the TLS handshake with the gateway failed: " + (
            f"it may not accept the client certificate {tls.cert} (signed by another CA?)"
            if tls.cert
            else "it may require a client certificate (--cert/--key, mTLS)"
        )
    elif not tls.enabled and closed:
        hint = "the gateway closed a plaintext connection: if it uses TLS, pass --tls and --ca"
    else:
        return details
    return f"{details} ({hint})"


@dataclass
class FaceEvent:
    """Something that happened (``WatchEvents``; the webhook body has the same fields)."""

    event_id: str  # resume after it: watch_events(after=event_id)
    kind: str  # access_granted, access_denied, pad_failed, unknown_face, enrolled, ... (see the proto)
    unix_ms: int
    door_id: str
    gallery_id: str
    identity_id: str
    decision: str  # GRANT | DENY for door events, '' otherwise
    reason: str
    reason_kind: str
    audit_id: str
    request_id: str


def _event(e: faces_pb2.Event) -> FaceEvent:
    decision = (
        ""
        if e.decision == faces_pb2.ACCESS_DECISION_UNSPECIFIED
        else faces_pb2.AccessDecision.Name(e.decision)
    )
    return FaceEvent(
        e.event_id,
        e.kind,
        e.unix_ms,
        e.door_id,
        e.gallery_id,
        e.identity_id,
        decision,
        e.reason,
        e.reason_kind,
        e.audit_id,
        e.request_id,
    )


@dataclass
class WebhookDeadLetter:
    delivery_id: str  # "<event id>.<endpoint>", the X-Fovea-Delivery header
    endpoint: str
    event: FaceEvent
    attempts: int
    last_error: str
    dead_unix_ms: int


@dataclass
class WebhookRedrive:
    """What a redrive did: ``redriven`` dead letters queued again; ``skipped`` left in the dead-letter list
    because their delivery is already queued or under way (``skipped_delivery_ids``: the first 100)."""

    redriven: int
    skipped: int
    skipped_delivery_ids: list[str]


class FoveaClient:
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
        """``tls``/``ca``/``cert``/``key``: see ``Tls.resolve`` (plaintext by default only on loopback);
        ``metadata``: sent with every call besides the API key."""
        self.address = address or os.environ.get("FOVEA_GATEWAY", DEFAULT_GATEWAY)
        self.api_key = default_api_key() if api_key is None else api_key
        self.timeout_s = timeout_s
        self.tls = Tls.resolve(self.address, tls, ca, cert, key)
        self._extra = list(metadata)
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        self._channel = (
            grpc.secure_channel(self.address, self.tls.credentials(), options=options)
            if self.tls.enabled
            else grpc.insecure_channel(self.address, options=options)
        )
        self.detection = detection_pb2_grpc.DetectionServiceStub(self._channel)
        self.faces = faces_pb2_grpc.FacesServiceStub(self._channel)
        self.style = style_pb2_grpc.StyleServiceStub(self._channel)
        self.classifier = classify_pb2_grpc.ClassifyServiceStub(self._channel)
        self.models = models_pb2_grpc.ModelsServiceStub(self._channel)
        self.health = health_pb2_grpc.HealthStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> FoveaClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _metadata(self) -> list[tuple[str, str]]:
        auth = [("authorization", f"Bearer {self.api_key}")] if self.api_key else []
        return auth + self._extra

    def _error(self, exc: grpc.RpcError) -> FoveaClientError:
        code, details = exc.code(), exc.details() or ""
        if code == grpc.StatusCode.UNAVAILABLE:
            details = explain_unavailable(details, self.tls)
        return FoveaClientError(code.name, details)

    def call(self, method: Any, request: Any, timeout_s: float | None = None) -> Any:
        """Call a stub method with the API key and deadline; gRPC errors become ``FoveaClientError``."""
        try:
            return method(request, metadata=self._metadata(), timeout=timeout_s or self.timeout_s)
        except grpc.RpcError as exc:
            raise self._error(exc) from None

    def stream(self, method: Any, request: Any, timeout_s: float | None = None) -> Iterator[Any]:
        try:
            yield from method(request, metadata=self._metadata(), timeout=timeout_s or self.timeout_s)
        except grpc.RpcError as exc:
            raise self._error(exc) from None

    # --- health and models
    def health_status(self, service: str = "") -> str:
        reply = self.call(self.health.Check, health_pb2.HealthCheckRequest(service=service), 5.0)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    def list_models(self) -> list[dict[str, str]]:
        reply = self.call(self.models.ListModels, models_pb2.ListModelsRequest())
        return [
            {"name": m.name, "version": m.version, "state": m.state, "reason": m.reason} for m in reply.models
        ]

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
        return self._detect_result(self.call(self.detection.Detect, request))

    def detect_many(self, images: Sequence[bytes], **options: Any) -> list[DetectResult]:
        requests = [
            detection_pb2.DetectRequest(image=common_pb2.Image(data=img), client_tag=str(i), **options)
            for i, img in enumerate(images)
        ]
        replies = self.stream(self.detection.DetectStream, iter(requests))
        return [self._detect_result(r) for r in replies]

    @staticmethod
    def _detect_result(reply: detection_pb2.DetectResponse) -> DetectResult:
        return DetectResult(
            image_size=[reply.image_size.width, reply.image_size.height],
            model=reply.model,
            detections=[
                Detection(d.label, d.class_id, round(d.score, 4), _box(d.box)) for d in reply.detections
            ],
            annotated_png=reply.annotated_png or None,
        )

    # --- classification
    def classify(self, image: bytes, *, model: str = "", top_k: int = 0, version: int = 0) -> ClassifyResult:
        """The ``top_k`` most probable classes (0 = the service default, 5) of ``image``; ``version``: a trained
        classifier's version (0 = its active one)."""
        request = classify_pb2.ClassifyRequest(
            image=common_pb2.Image(data=image), model=model, top_k=top_k, version=version
        )
        reply = self.call(self.classifier.Classify, request)
        return ClassifyResult(
            image_size=[reply.image_size.width, reply.image_size.height],
            model=reply.model,
            classifications=[
                Classification(c.label, c.class_id, round(c.probability, 4)) for c in reply.classifications
            ],
            version=reply.version,
        )

    def explain(
        self, image: bytes, *, model: str = "", label: str = "", render: bool = False
    ) -> ExplainResult:
        """Where the classifier looks (Grad-CAM over its last conv block) for ``label`` (empty: the most probable
        class) in ``image``; ``render``: also the PNG overlay."""
        request = classify_pb2.ExplainRequest(
            image=common_pb2.Image(data=image), model=model, label=label, render=render
        )
        reply = self.call(self.classifier.Explain, request)
        width = reply.map_width
        values = [round(v, 4) for v in reply.heatmap]
        return ExplainResult(
            image_size=[reply.image_size.width, reply.image_size.height],
            model=reply.model,
            explained=Classification(
                reply.explained.label, reply.explained.class_id, round(reply.explained.probability, 4)
            ),
            top=Classification(reply.top.label, reply.top.class_id, round(reply.top.probability, 4)),
            heatmap=[values[r * width : (r + 1) * width] for r in range(reply.map_height)],
            peak=reply.peak,
            crop=[reply.crop.x1, reply.crop.y1, reply.crop.x2, reply.crop.y2],
            png=reply.png or None,
        )

    def list_classifiers(self) -> list[dict[str, Any]]:
        reply = self.call(self.classifier.ListClassifiers, classify_pb2.ListClassifiersRequest())
        return [
            {
                "name": c.name,
                "input_size": c.input_size,
                "resize_side": c.resize_side,
                "classes": len(c.labels),
                "is_default": c.is_default,
                "trained": c.trained,
                "active_version": c.active_version,
                "versions": [_version(v) for v in c.versions],
            }
            for c in reply.classifiers
        ]

    def classifier_versions(self, name: str) -> dict[str, Any]:
        """A trained classifier: ``active_version`` and ``versions`` (version, labels, created, accuracy)."""
        for row in self.list_classifiers():
            if row["name"] == name and row["trained"]:
                return row
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
    ) -> TrainingJob:
        """Queue a training job on ``(label, encoded image)`` pairs (0 = the service's defaults); returns at
        once with the QUEUED job. ``groups``: each image's group (kept on one side of the validation split);
        ``recipe``: "" or "pad" (a passive presentation-attack check, ``fovea.contracts.pad_classifier``)."""
        if groups is not None and len(groups) != len(images):
            raise ValueError(f"{len(groups)} groups for {len(images)} images")
        request = classify_pb2.TrainClassifierRequest(
            name=name,
            images=[
                classify_pb2.LabelledImage(
                    label=label, image=common_pb2.Image(data=data), group=groups[i] if groups else ""
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
        return _training_job(self.call(self.classifier.TrainClassifier, request))

    def training_job(self, job_id: str) -> TrainingJob:
        request = classify_pb2.GetTrainingJobRequest(job_id=job_id)
        return _training_job(self.call(self.classifier.GetTrainingJob, request))

    def watch_training_job(self, job_id: str, timeout_s: float = 3600.0) -> Iterator[TrainingJob]:
        """The job at each change (stage, epoch, loss, validation accuracy) until it ends."""
        request = classify_pb2.GetTrainingJobRequest(job_id=job_id)
        for message in self.stream(self.classifier.WatchTrainingJob, request, timeout_s):
            yield _training_job(message)

    def rollback_classifier(self, name: str, version: int = 0) -> dict[str, Any]:
        """Make ``version`` (0 = the one before the active one) the version served by default."""
        request = classify_pb2.RollbackClassifierRequest(name=name, version=version)
        reply = self.call(self.classifier.RollbackClassifier, request)
        return {
            "name": reply.name,
            "active_version": reply.active_version,
            "versions": [_version(v) for v in reply.versions],
        }

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
        return _gallery(self.call(self.faces.CreateGallery, request))

    def ensure_gallery(self, gallery: str, threshold: float = 0.0) -> Gallery:
        """The gallery, created first when it does not exist."""
        try:
            return self.create_gallery(gallery, threshold)
        except FoveaClientError as exc:
            if exc.code != "ALREADY_EXISTS":
                raise
        return self.get_gallery(gallery)

    def get_gallery(self, gallery: str) -> Gallery:
        return _gallery(self.call(self.faces.GetGallery, faces_pb2.GetGalleryRequest(gallery_id=gallery)))

    def list_galleries(self) -> list[Gallery]:
        reply = self.call(self.faces.ListGalleries, faces_pb2.ListGalleriesRequest())
        return [_gallery(g) for g in reply.galleries]

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
        return _identity(self.call(self.faces.GetIdentity, request))

    def list_identities(
        self, gallery: str, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[Identity], str]:
        """One page of identities (in id order) and the token of the next page ('' after the last)."""
        request = faces_pb2.ListIdentitiesRequest(
            gallery_id=gallery, page_size=page_size, page_token=page_token
        )
        reply = self.call(self.faces.ListIdentities, request)
        return [_identity(i) for i in reply.identities], reply.next_page_token

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
        reply = self.call(self.faces.Verify, request)
        return VerifyResult(
            reply.match,
            round(reply.distance, 4),
            round(reply.threshold, 4),
            reply.embedding_model,
            _box(reply.face.box),
        )

    def identify(self, gallery: str, photo: bytes, top_k: int = 1) -> list[IdentifiedFace]:
        request = faces_pb2.IdentifyRequest(
            gallery_id=gallery, photo=common_pb2.Image(data=photo), top_k=top_k
        )
        reply = self.call(self.faces.Identify, request)
        return [
            IdentifiedFace(
                _box(f.face.box),
                f.identity_id or None,
                round(f.distance, 4),
                [Candidate(c.identity_id, round(c.distance, 4)) for c in f.candidates],
            )
            for f in reply.faces
        ]

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
        r = self.call(self.faces.VerifyAccess, request)
        return AccessResult(
            faces_pb2.AccessDecision.Name(r.decision),
            r.reason,
            round(r.distance, 4),
            round(r.threshold, 4),
            r.embedding_model,
            r.request_id,
            faces_pb2.LivenessResult.Name(r.liveness),
            r.audit_id,
            _pad(r.pad),
            r.reason_kind,
            _challenge(r.challenge),
        )

    def audit_records(self, door: str = "", limit: int = 0) -> list[AuditRecord]:
        """Door access records, newest first (one door's, or every door's)."""
        reply = self.call(
            self.faces.ListAuditRecords, faces_pb2.ListAuditRecordsRequest(door_id=door, limit=limit)
        )
        return [
            AuditRecord(
                r.audit_id,
                r.unix_ms,
                r.door_id,
                r.gallery_id,
                r.claimed_identity_id,
                faces_pb2.AccessDecision.Name(r.decision),
                r.reason,
                round(r.distance, 4),
                round(r.threshold, 4),
                r.embedding_model,
                r.request_id,
                faces_pb2.LivenessResult.Name(r.liveness),
                r.frame_count,
                r.matching_frames,
                _pad(r.pad),
                r.reason_kind,
                _challenge(r.challenge),
            )
            for r in reply.records
        ]

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
        call = self.faces.WatchEvents(request, metadata=self._metadata(), timeout=timeout_s)
        try:
            for event in call:
                yield _event(event)
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        finally:
            call.cancel()  # the caller stopped iterating: end the stream at the server too

    def webhook_dead_letters(self, endpoint: str = "", limit: int = 0) -> list[WebhookDeadLetter]:
        """Webhook deliveries that failed every attempt, newest first."""
        request = faces_pb2.ListWebhookDeadLettersRequest(endpoint=endpoint, limit=limit)
        reply = self.call(self.faces.ListWebhookDeadLetters, request)
        return [
            WebhookDeadLetter(
                d.delivery_id, d.endpoint, _event(d.event), d.attempts, d.last_error, d.dead_unix_ms
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
        gatys: style_pb2.GatysParams | None = None,
        max_side: int = 0,
        preserve_color: bool = False,
    ) -> style_pb2.Job:
        """Queue a job: a named style (feed-forward) or a style image (Gatys, with ``gatys`` parameters).

        ``preserve_color`` keeps the content's colours (only the luminance is stylised)."""
        request = style_pb2.SubmitJobRequest(
            content=common_pb2.Image(data=content),
            idempotency_key=idempotency_key,
            max_side=max_side,
            preserve_color=preserve_color,
        )
        if style_image is not None:
            request.style_image.data = style_image
            if gatys is not None:
                request.gatys.CopyFrom(gatys)
        else:
            request.style_name = style
        return self.call(self.style.SubmitJob, request)

    def get_job(self, job_id: str, omit_result: bool = False) -> style_pb2.Job:
        return self.call(self.style.GetJob, style_pb2.GetJobRequest(job_id=job_id, omit_result=omit_result))

    def cancel_job(self, job_id: str) -> style_pb2.Job:
        return self.call(self.style.CancelJob, style_pb2.CancelJobRequest(job_id=job_id))

    def watch_job(self, job_id: str, timeout_s: float = 3600.0) -> Iterator[style_pb2.Job]:
        return self.stream(self.style.WatchJob, style_pb2.WatchJobRequest(job_id=job_id), timeout_s)


def _version(v: classify_pb2.ClassifierVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "labels": list(v.labels),
        "created": v.created,
        "validation_accuracy": round(v.validation_accuracy, 4),
        "train_images": v.train_images,
        "job_id": v.job_id,
    }


def _training_job(job: classify_pb2.TrainingJob) -> TrainingJob:
    result = None
    if job.HasField("result"):
        r = job.result
        result = {
            "version": r.version,
            "validation_accuracy": round(r.validation_accuracy, 4),
            "train_accuracy": round(r.train_accuracy, 4),
            "labels": list(r.labels),
            "classes": [
                {
                    "label": c.label,
                    "accuracy": round(c.accuracy, 4),
                    "precision": round(c.precision, 4),
                    "validation_images": c.validation_images,
                    "train_images": c.train_images,
                }
                for c in r.classes
            ],
            "confusion": [
                list(r.confusion[i * len(r.labels) : (i + 1) * len(r.labels)]) for i in range(len(r.labels))
            ],
            "feature_seconds": round(r.feature_seconds, 3),
            "train_seconds": round(r.train_seconds, 3),
            "features_cached": r.features_cached,
            "features_computed": r.features_computed,
        }
        if r.HasField("pad"):
            p = r.pad
            result["pad"] = {
                "train_bona_fide_bursts": p.train_bona_fide_bursts,
                "train_attack_bursts": p.train_attack_bursts,
                "validation_bona_fide_bursts": p.validation_bona_fide_bursts,
                "validation_attack_bursts": p.validation_attack_bursts,
                "logit_shift": round(p.logit_shift, 4),
                "bpcer": round(p.bpcer, 4),
                "apcer": round(p.apcer, 4),
                "crop_bpcer": round(p.crop_bpcer, 4),
                "crop_apcer": round(p.crop_apcer, 4),
            }
    return TrainingJob(
        job_id=job.job_id,
        name=job.name,
        state=classify_pb2.TrainingState.Name(job.state).removeprefix("TRAINING_"),
        stage=job.stage,
        epoch=job.epoch,
        epochs=job.epochs,
        loss=round(job.loss, 5),
        validation_accuracy=round(job.validation_accuracy, 4),
        error=job.error,
        result=result,
    )
