"""What the client's methods return: plain dataclasses (``dataclasses.asdict`` gives JSON), one per answer of
the gateway, and the two it takes besides bytes and strings (``Challenge``, ``GatysParams``).

Enum values are their proto names as strings (``"SUCCEEDED"``, ``"GRANT"``); boxes are ``[x1, y1, x2, y2]``
in absolute pixels of the original image; images are the encoded bytes (``None`` when absent). No gRPC or
proto import here: :mod:`fovea.client.messages` converts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ------------------------------------------------------------------------------------------------ models


@dataclass
class ModelInfo:
    """A model as Triton reports it (``fovea.models.v1.ModelInfo``)."""

    name: str
    version: str
    state: str  # READY, UNAVAILABLE, ...
    reason: str


# --------------------------------------------------------------------------------------------- detection


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


# ---------------------------------------------------------------------------------------- classification


@dataclass
class Classification:
    label: str
    class_id: int
    probability: float


@dataclass
class ClassifyResult:
    image_size: list[int]  # [width, height]
    model: str
    classifications: list[Classification]  # most probable first
    version: int = 0  # a trained classifier's version that answered (0: built in)


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
class ClassifierVersion:
    """One trained version of a classifier (``fovea.classify.v1.ClassifierVersion``)."""

    version: int
    labels: list[str]
    created: float  # unix seconds
    validation_accuracy: float
    train_images: int
    job_id: str


@dataclass
class ClassifierInfo:
    """A classifier the service runs: built in (``trained`` False, no versions) or trained."""

    name: str
    input_size: int
    resize_side: int
    classes: int  # how many labels
    is_default: bool
    trained: bool
    active_version: int
    versions: list[ClassifierVersion]


@dataclass
class ClassifierVersions:
    """A trained classifier's versions after a rollback: which is served by default, and all it keeps."""

    name: str
    active_version: int
    versions: list[ClassifierVersion]


@dataclass
class TrainedClass:
    label: str
    accuracy: float  # recall on the validation split
    precision: float
    validation_images: int
    train_images: int


@dataclass
class PadTrainingResult:
    """A passive presentation-attack check's training (recipe ``pad``): bursts per side and its error rates
    out of fold (each burst scored by a head trained without it), per burst, per crop and per attack species,
    after its threshold was moved to 0.5 (``logit_shift``)."""

    train_bona_fide_bursts: int
    train_attack_bursts: int
    validation_bona_fide_bursts: int
    validation_attack_bursts: int
    logit_shift: float
    bpcer: float
    apcer: float
    crop_bpcer: float
    crop_apcer: float
    apcer_by_species: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainingResult:
    """What a SUCCEEDED training job produced: the new version and how it scored."""

    version: int
    validation_accuracy: float
    train_accuracy: float
    labels: list[str]
    classes: list[TrainedClass]
    confusion: list[list[int]]  # rows = true class, columns = predicted, in ``labels`` order
    feature_seconds: float
    train_seconds: float
    features_cached: int
    features_computed: int
    pad: PadTrainingResult | None = None  # a passive check's training (recipe "pad")


@dataclass
class TrainingJob:
    """A classifier training job (``fovea.classify.v1.TrainingJob``); ``result`` once SUCCEEDED."""

    job_id: str
    name: str
    state: str  # QUEUED, RUNNING, SUCCEEDED, FAILED
    stage: str
    epoch: int
    epochs: int
    loss: float
    validation_accuracy: float
    error: str = ""
    result: TrainingResult | None = None


# ------------------------------------------------------------------------------------------------- faces


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
class IdentityPage:
    """One page of a gallery's identities (in id order) and the token of the next ('' after the last)."""

    identities: list[Identity]
    next_page_token: str


@dataclass
class PadCheck:
    """A presentation-attack check of a burst (issue 10)."""

    check: str  # "geometry"; empty when not checked
    verdict: str  # PAD_NOT_CHECKED | PAD_BONA_FIDE | PAD_ATTACK | PAD_UNDECIDED
    score: float  # higher = more bona fide (geometry: the nose's travel in inter-ocular distances)
    threshold: float
    reasons: list[str]


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


@dataclass
class PassiveCheck:
    """A door's passive presentation-attack check of a burst (e.g. ``trained:NAME``, `fovea faces pad-train`)."""

    check: str  # as the door's policy names it
    score: float  # in [0, 1], higher = more bona fide; nan when no frame had a face
    threshold: float  # attack when score < threshold
    attack: bool
    reason: str


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
    passive: PassiveCheck | None = None  # None when the door ran no passive check


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
    passive: PassiveCheck | None = None


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


# ------------------------------------------------------------------------------------------------- style


@dataclass
class StyleEntry:
    name: str
    index: int
    description: str
    aliases: list[str] = field(default_factory=list)


@dataclass
class GatysParams:
    """Parameters of a Gatys job (a style image): J(G) = alpha J_content + beta J_style; zero or empty =
    the service's default."""

    iterations: int = 0
    alpha: float = 0.0
    beta: float = 0.0
    optimizer: str = ""  # lbfgs | adam
    init: str = ""  # content | noise
    max_side: int = 0
    learning_rate: float = 0.0
    content_layer: str = ""
    style_layers: dict[str, float] = field(default_factory=dict)  # layer name -> weight lambda
    preview_every: int = 0


@dataclass
class StyleProgress:
    iteration: int
    total_iterations: int
    content_cost: float
    style_cost: float
    total_cost: float
    preview_png: bytes | None = field(default=None, repr=False)


@dataclass
class StyleJob:
    """A style transfer job (``fovea.style.v1.Job``)."""

    job_id: str
    state: str  # QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED
    progress: StyleProgress
    error: str
    created_unix_ms: int
    updated_unix_ms: int
    kind: str
    result_expired: bool  # SUCCEEDED, but the store dropped its result (error says so)
    preserve_color: bool
    result_png: bytes | None = field(default=None, repr=False)  # when SUCCEEDED (and not omitted)

    @property
    def done(self) -> bool:
        """The job ended (SUCCEEDED, FAILED or CANCELLED)."""
        return self.state in ("SUCCEEDED", "FAILED", "CANCELLED")
