"""Faces service settings, from ``FOVEA_FACES_*`` environment variables."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from fovea.common.settings import ServiceSettings
from fovea.faces.access.core.access import LIVENESS_CHECKS
from fovea.faces.events.core.mqtt import check_prefix, parse_broker


class FaceDetectorKind(StrEnum):
    """The face detectors the service can use: each a served model with ``face_detector``'s outputs."""

    MTCNN = "mtcnn"
    RETINAFACE = "retinaface"


# Each detector's scores on its own scale: MTCNN's O-Net gives real faces 0.99+ and 0.9 is where its own
# pipeline keeps a face; RetinaFace's softmax falls to 0.78-0.98 on a face rolled 30 degrees (bench/README.md,
# "Face detectors") and 0.6 is its authors' threshold for showing a face (biubug6's vis_thres).
DETECTOR_MIN_SCORES: dict[FaceDetectorKind, float] = {
    FaceDetectorKind.MTCNN: 0.9,
    FaceDetectorKind.RETINAFACE: 0.6,
}

# The Triton model serving each kind (its module in fovea.serving has the same name).
DETECTOR_MODELS: dict[FaceDetectorKind, str] = {
    FaceDetectorKind.MTCNN: "face_detector",
    FaceDetectorKind.RETINAFACE: "face_retinaface",
}


class FacesSettings(ServiceSettings):  # an unknown FOVEA_<SVC>_* variable stops the start
    # hide_input_in_errors: a bad REDIS_URL or MQTT_URL must not print its password in the error
    model_config = SettingsConfigDict(env_prefix="FOVEA_FACES_", extra="forbid", hide_input_in_errors=True)

    port: int = Field(50062, ge=0, le=65535, description="gRPC port (0 = any free port)")
    metrics_port: int = Field(9102, ge=0, le=65535, description="Prometheus /metrics port (0 = off)")
    triton_timeout_s: float = Field(10.0, gt=0, le=600, description="Deadline of one Triton call")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis holding galleries and templates")

    # models
    detector: FaceDetectorKind = Field(
        FaceDetectorKind.RETINAFACE,
        description="Face detector: retinaface (face_retinaface, RetinaFace-mobilenet0.25) or mtcnn "
        "(face_detector, 4.8x slower; bench/README.md, 'Face detectors')",
    )
    detector_model: str = Field(
        "", description="Triton model giving boxes + 5 landmarks ('' = the model of DETECTOR)"
    )
    door_detector: FaceDetectorKind = Field(
        FaceDetectorKind.MTCNN,
        description="Face detector of door bursts (VerifyAccess, pad-eval, pad-train, pad-synth): the PAD "
        "geometry check reads the motion of its five points, calibrated on MTCNN's (bench/README.md, 'Face "
        "detectors'); mtcnn or retinaface",
    )
    embedder_model: str = Field("face_embedder", description="Triton model giving 128-D embeddings")
    detect_max_side: int = Field(
        1024, ge=64, le=8192, description="Photos are downsized to this longer side before detection"
    )
    min_face_score: float = Field(
        default_factory=lambda fields: DETECTOR_MIN_SCORES[fields["detector"]],
        ge=0,
        le=1,
        description="Detections below this face probability are ignored everywhere (default: the detector's "
        "own, mtcnn 0.9, retinaface 0.6)",
    )

    # images and requests
    min_image_side: int = Field(16, ge=12, description="Smallest image side accepted, in pixels")
    max_photos: int = Field(10, ge=1, le=100, description="Most photos per Enroll / frames per VerifyAccess")
    max_top_k: int = Field(1000, ge=1, le=100_000, description="Largest top_k of Identify")
    max_top_k_unprivileged: int = Field(
        10,
        ge=1,
        le=1000,
        description="Largest top_k of Identify for a key without faces:admin (a larger one is cut to it)",
    )

    # enrollment quality
    min_inter_ocular_px: float = Field(
        20.0, ge=0, description="Enrollment refuses faces whose eyes are closer than this (original pixels)"
    )
    min_sharpness: float = Field(
        25.0,
        ge=0,
        description="Enrollment refuses chips whose variance of the Laplacian is lower (sharp 80-1200, blurred 5-10)",
    )

    # store and sync
    changes_maxlen: int = Field(100_000, ge=1000, description="Approximate length of the change stream")
    audit_maxlen: int = Field(1_000_000, ge=1000, description="Approximate length of the audit stream")
    redis_min_replicas: int = Field(
        0,
        ge=0,
        le=16,
        description=(
            "Answer a gallery or audit write only once this many Redis replicas hold it (WAIT): nothing "
            "acknowledged is lost when the primary is; 0 = as soon as the primary has it"
        ),
    )
    redis_replica_timeout_ms: int = Field(
        1000, ge=10, le=60_000, description="How long a write waits for REDIS_MIN_REPLICAS before it fails"
    )
    sync_wait_s: float = Field(
        2.0, gt=0, le=30, description="How long a write waits to see itself in this replica's search index"
    )

    # door access
    access_timeout_s: float = Field(
        5.0, gt=0, le=60, description="VerifyAccess answers DENY when its work takes longer than this"
    )
    door_policies_file: Path | None = Field(
        None, description='JSON {"default": {...}, "doors": {"door-7": {...}}} of DoorPolicy fields'
    )
    liveness_check: str = Field(
        "none",
        description=f"Liveness check of the default policy (known: {', '.join(sorted(LIVENESS_CHECKS))})",
    )
    deny_unchecked_liveness: bool = Field(
        False, description="Default policy: DENY when no liveness check ran (NOT_CHECKED)"
    )
    min_matching_frames: int = Field(
        0,
        ge=0,
        le=100,
        description="Default policy: frames that must match the claimed identity (0 = every frame with a face)",
    )
    pad_min_parallax: float = Field(
        0.12,
        gt=0,
        lt=1,
        description="Presentation-attack geometry check: the nose's travel across the eye-mouth plane a burst "
        "must show to be a head, in inter-ocular distances (0.12: a head turn of about 20 degrees)",
    )
    trained_repository: Path | None = Field(
        None,
        description="The user model repository the classify worker writes trained classifiers to: a door's "
        "trained:<name> passive check serves the classifier's active version from its index (unset = the "
        "newest version Triton serves)",
    )
    mesh_model: str = Field(
        "face_mesh",
        description="Triton model giving 468 face mesh points (doors with pad_check dense or blink)",
    )
    pad_dense_min_ratio: float = Field(
        1.2,
        ge=1,
        le=10,
        description="Dense PAD check: how much more residual the best single-axis bend must leave than a free "
        "rigid shape (ratio of residual sums of squares) for a burst to be a head",
    )
    pad_dense_min_residual: float = Field(
        0.012,
        ge=0,
        lt=0.5,
        description="Dense PAD check: the RMS the best single-axis bend must leave, in inter-ocular distances "
        "(the face mesh moves a little on a tilted print too)",
    )
    mesh_min_face_score: float = Field(
        0.5,
        ge=0,
        le=1,
        description="A face mesh whose face score is below this counts as no mesh for the frame",
    )
    blink_min_drop: float = Field(
        0.4,
        gt=0,
        lt=1,
        description="Blink challenge: how far the eye aspect ratio must fall below the open-eye level (a "
        "fraction of it) and come back within the burst",
    )
    challenge_secret_file: Path | None = Field(
        None,
        description="File holding the key that signs door challenges (HMAC-SHA256; every replica the same); "
        "unset = derived from INTERNAL_TOKEN_FILE's secret, or random per process when that is unset too",
    )
    challenge_ttl_s: float = Field(
        20.0, ge=0.05, le=600, description="Lifetime of a door challenge from BeginAccess to VerifyAccess"
    )
    challenge_min_motion: float = Field(
        0.12,
        gt=0,
        lt=1,
        description="Active challenge: the nose's travel in the asked direction a burst must show, in "
        "inter-ocular distances (0.12: a head turn or nod of about 20 degrees)",
    )
    replay_window_s: float = Field(
        600.0,
        ge=1,
        le=7 * 86_400,
        description="A frame seen before at the same door within this window is a replay (DENY), at doors "
        "that require PAD or use challenges",
    )
    audit_backlog: int = Field(
        10_000, ge=0, le=1_000_000, description="Audit records kept in memory while Redis is down"
    )

    # events and webhooks (fovea.faces.events.stream, fovea.faces.events.webhooks)
    events_maxlen: int = Field(
        100_000, ge=100, le=10_000_000, description="Approximate length of the event stream (WatchEvents)"
    )
    max_event_watchers: int = Field(
        64, ge=1, le=10_000, description="WatchEvents streams open at once on this replica"
    )
    webhooks_file: Path | None = Field(
        None,
        description='JSON {"endpoints": [{"name", "url", "secret" or "secret_file", "kinds"}]} of webhook '
        "endpoints (at most 16); unset = no webhooks",
    )
    webhook_timeout_s: float = Field(5.0, gt=0, le=60, description="Deadline of one webhook POST")
    webhook_max_attempts: int = Field(
        8, ge=1, le=50, description="POSTs of one delivery before it goes to the dead-letter list"
    )
    webhook_backoff_s: float = Field(
        1.0, gt=0, le=600, description="Wait before the first retry; doubled for each next one"
    )
    webhook_backoff_max_s: float = Field(60.0, gt=0, le=3600, description="Longest wait between attempts")
    webhook_max_in_flight: int = Field(
        16, ge=1, le=256, description="Deliveries under way at once per endpoint (on this replica)"
    )
    webhook_claim_idle_s: float = Field(
        300.0,
        ge=1,
        le=86_400,
        description="A delivery left unacknowledged this long by another consumer (a replica that died) is "
        "taken over; longer than the longest wait plus one POST",
    )
    webhook_forget_consumer_idle_s: float = Field(
        3600.0,
        ge=1,
        le=30 * 86_400,
        description="A consumer of a webhook group idle this long that owns no pending delivery (a replica "
        "that is gone, its deliveries taken over) is deleted from the group (XGROUP DELCONSUMER); a live "
        "replica reads every second, so it is never that idle",
    )
    webhook_consumer: str = Field(
        "",
        max_length=128,
        description="This replica's name in the webhook consumer groups ('' = <host name>:<gRPC port>); "
        "a restart under the same name resumes its pending deliveries at once",
    )
    webhook_dead_letters_max: int = Field(
        10_000, ge=10, le=1_000_000, description="Dead letters kept (the oldest are dropped beyond)"
    )

    # MQTT (fovea.faces.events.mqtt): the events published to a broker, with Home Assistant discovery
    mqtt_url: str = Field(
        "",
        max_length=1024,
        description="Broker to publish events to: mqtt://[user[:password]@]host[:1883] or mqtts://host[:8883] "
        "(TLS); '' = no MQTT",
    )
    mqtt_password_file: Path | None = Field(
        None, description="File holding the broker password (instead of one in MQTT_URL, which env shows)"
    )
    mqtt_ca_file: Path | None = Field(
        None, description="CA certificates (PEM) that sign an mqtts:// broker's; unset = the system's"
    )
    mqtt_topic_prefix: str = Field(
        "fovea",
        max_length=128,
        description="First level(s) of every topic: <prefix>/doors/<door>/decision ...",
    )
    mqtt_discovery_prefix: str = Field(
        "homeassistant",
        max_length=128,
        description="Home Assistant MQTT discovery prefix ('' = no discovery messages)",
    )
    mqtt_keepalive_s: int = Field(
        30, ge=5, le=3600, description="MQTT keepalive: the broker's last will fires after 1.5x"
    )
    mqtt_lease_s: float = Field(
        10.0,
        ge=1,
        le=600,
        description="One replica publishes at a time (in order); another takes over this long after it is gone",
    )
    mqtt_availability_interval_s: float = Field(
        60.0, ge=1, le=3600, description="How often the publishing replica says 'online' again (retained)"
    )
    snapshot_ttl_s: float = Field(
        300.0, ge=5, le=86_400, description="How long a door snapshot waits in Redis for the MQTT publisher"
    )
    snapshot_max_side: int = Field(
        640, ge=64, le=4096, description="Longer side of a door snapshot (JPEG), in pixels"
    )

    @field_validator("mqtt_url")
    @classmethod
    def _broker(cls, url: str) -> str:
        if url:
            parse_broker(url)  # ValueError saying what is wrong, never the password
        return url

    @model_validator(mode="after")
    def _detector_model(self) -> FacesSettings:
        if not self.detector_model:
            self.detector_model = DETECTOR_MODELS[self.detector]
        return self

    def for_doors(self) -> FacesSettings:
        """These settings with the door's detector (``DOOR_DETECTOR``) when it is not ``DETECTOR``: its model,
        and its own minimum face score unless ``MIN_FACE_SCORE`` was set."""
        if self.door_detector == self.detector:
            return self
        update: dict[str, object] = {
            "detector": self.door_detector,
            "detector_model": DETECTOR_MODELS[self.door_detector],
        }
        if "min_face_score" not in self.model_fields_set:
            update["min_face_score"] = DETECTOR_MIN_SCORES[self.door_detector]
        return self.model_copy(update=update)

    @field_validator("mqtt_topic_prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        return check_prefix(prefix)

    @field_validator("mqtt_discovery_prefix")
    @classmethod
    def _discovery(cls, prefix: str) -> str:
        return check_prefix(prefix, "discovery prefix") if prefix else prefix
