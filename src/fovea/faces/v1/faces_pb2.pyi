from fovea.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AccessDecision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCESS_DECISION_UNSPECIFIED: _ClassVar[AccessDecision]
    GRANT: _ClassVar[AccessDecision]
    DENY: _ClassVar[AccessDecision]

class LivenessResult(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LIVENESS_RESULT_UNSPECIFIED: _ClassVar[LivenessResult]
    NOT_CHECKED: _ClassVar[LivenessResult]
    LIVE: _ClassVar[LivenessResult]
    SPOOF: _ClassVar[LivenessResult]

class PadVerdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAD_VERDICT_UNSPECIFIED: _ClassVar[PadVerdict]
    PAD_NOT_CHECKED: _ClassVar[PadVerdict]
    PAD_BONA_FIDE: _ClassVar[PadVerdict]
    PAD_ATTACK: _ClassVar[PadVerdict]
    PAD_UNDECIDED: _ClassVar[PadVerdict]
ACCESS_DECISION_UNSPECIFIED: AccessDecision
GRANT: AccessDecision
DENY: AccessDecision
LIVENESS_RESULT_UNSPECIFIED: LivenessResult
NOT_CHECKED: LivenessResult
LIVE: LivenessResult
SPOOF: LivenessResult
PAD_VERDICT_UNSPECIFIED: PadVerdict
PAD_NOT_CHECKED: PadVerdict
PAD_BONA_FIDE: PadVerdict
PAD_ATTACK: PadVerdict
PAD_UNDECIDED: PadVerdict

class Gallery(_message.Message):
    __slots__ = ("gallery_id", "threshold", "embedding_model", "identity_count", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    GALLERY_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_COUNT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    gallery_id: str
    threshold: float
    embedding_model: str
    identity_count: int
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, gallery_id: _Optional[str] = ..., threshold: _Optional[float] = ..., embedding_model: _Optional[str] = ..., identity_count: _Optional[int] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreateGalleryRequest(_message.Message):
    __slots__ = ("gallery_id", "threshold", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    GALLERY_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    gallery_id: str
    threshold: float
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, gallery_id: _Optional[str] = ..., threshold: _Optional[float] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetGalleryRequest(_message.Message):
    __slots__ = ("gallery_id",)
    GALLERY_ID_FIELD_NUMBER: _ClassVar[int]
    gallery_id: str
    def __init__(self, gallery_id: _Optional[str] = ...) -> None: ...

class ListGalleriesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListGalleriesResponse(_message.Message):
    __slots__ = ("galleries",)
    GALLERIES_FIELD_NUMBER: _ClassVar[int]
    galleries: _containers.RepeatedCompositeFieldContainer[Gallery]
    def __init__(self, galleries: _Optional[_Iterable[_Union[Gallery, _Mapping]]] = ...) -> None: ...

class DeleteGalleryRequest(_message.Message):
    __slots__ = ("gallery_id",)
    GALLERY_ID_FIELD_NUMBER: _ClassVar[int]
    gallery_id: str
    def __init__(self, gallery_id: _Optional[str] = ...) -> None: ...

class DeleteGalleryResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Template(_message.Message):
    __slots__ = ("template_id", "embedding_model", "created_unix_ms")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    embedding_model: str
    created_unix_ms: int
    def __init__(self, template_id: _Optional[str] = ..., embedding_model: _Optional[str] = ..., created_unix_ms: _Optional[int] = ...) -> None: ...

class Identity(_message.Message):
    __slots__ = ("gallery_id", "identity_id", "metadata", "templates")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    GALLERY_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    gallery_id: str
    identity_id: str
    metadata: _containers.ScalarMap[str, str]
    templates: _containers.RepeatedCompositeFieldContainer[Template]
    def __init__(self, gallery_id: _Optional[str] = ..., identity_id: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., templates: _Optional[_Iterable[_Union[Template, _Mapping]]] = ...) -> None: ...

class Face(_message.Message):
    __slots__ = ("box", "landmarks", "score")
    BOX_FIELD_NUMBER: _ClassVar[int]
    LANDMARKS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    box: _common_pb2.BoundingBox
    landmarks: _containers.RepeatedCompositeFieldContainer[_common_pb2.Point]
    score: float
    def __init__(self, box: _Optional[_Union[_common_pb2.BoundingBox, _Mapping]] = ..., landmarks: _Optional[_Iterable[_Union[_common_pb2.Point, _Mapping]]] = ..., score: _Optional[float] = ...) -> None: ...

class EnrollRequest(_message.Message):
    __slots__ = ("gallery_id", "identity_id", "photos", "metadata", "face_index", "create_only")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    GALLERY_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    PHOTOS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    FACE_INDEX_FIELD_NUMBER: _ClassVar[int]
    CREATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    gallery_id: str
    identity_id: str
    photos: _containers.RepeatedCompositeFieldContainer[_common_pb2.Image]
    metadata: _containers.ScalarMap[str, str]
    face_index: int
    create_only: bool
    def __init__(self, gallery_id: _Optional[str] = ..., identity_id: _Optional[str] = ..., photos: _Optional[_Iterable[_Union[_common_pb2.Image, _Mapping]]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., face_index: _Optional[int] = ..., create_only: _Optional[bool] = ...) -> None: ...

class EnrollResponse(_message.Message):
    __slots__ = ("identity", "added_template_ids", "faces")
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    ADDED_TEMPLATE_IDS_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    identity: Identity
    added_template_ids: _containers.RepeatedScalarFieldContainer[str]
    faces: _containers.RepeatedCompositeFieldContainer[Face]
    def __init__(self, identity: _Optional[_Union[Identity, _Mapping]] = ..., added_template_ids: _Optional[_Iterable[str]] = ..., faces: _Optional[_Iterable[_Union[Face, _Mapping]]] = ...) -> None: ...

class GetIdentityRequest(_message.Message):
    __slots__ = ("gallery_id", "identity_id")
    GALLERY_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    gallery_id: str
    identity_id: str
    def __init__(self, gallery_id: _Optional[str] = ..., identity_id: _Optional[str] = ...) -> None: ...

class ListIdentitiesRequest(_message.Message):
    __slots__ = ("gallery_id", "page_size", "page_token")
    GALLERY_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    gallery_id: str
    page_size: int
    page_token: str
    def __init__(self, gallery_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListIdentitiesResponse(_message.Message):
    __slots__ = ("identities", "next_page_token")
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    identities: _containers.RepeatedCompositeFieldContainer[Identity]
    next_page_token: str
    def __init__(self, identities: _Optional[_Iterable[_Union[Identity, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteIdentityRequest(_message.Message):
    __slots__ = ("gallery_id", "identity_id")
    GALLERY_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    gallery_id: str
    identity_id: str
    def __init__(self, gallery_id: _Optional[str] = ..., identity_id: _Optional[str] = ...) -> None: ...

class DeleteIdentityResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteTemplateRequest(_message.Message):
    __slots__ = ("gallery_id", "identity_id", "template_id")
    GALLERY_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    gallery_id: str
    identity_id: str
    template_id: str
    def __init__(self, gallery_id: _Optional[str] = ..., identity_id: _Optional[str] = ..., template_id: _Optional[str] = ...) -> None: ...

class DeleteTemplateResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyRequest(_message.Message):
    __slots__ = ("gallery_id", "identity_id", "photo")
    GALLERY_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    PHOTO_FIELD_NUMBER: _ClassVar[int]
    gallery_id: str
    identity_id: str
    photo: _common_pb2.Image
    def __init__(self, gallery_id: _Optional[str] = ..., identity_id: _Optional[str] = ..., photo: _Optional[_Union[_common_pb2.Image, _Mapping]] = ...) -> None: ...

class VerifyResponse(_message.Message):
    __slots__ = ("match", "distance", "threshold", "face", "embedding_model")
    MATCH_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    FACE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    match: bool
    distance: float
    threshold: float
    face: Face
    embedding_model: str
    def __init__(self, match: _Optional[bool] = ..., distance: _Optional[float] = ..., threshold: _Optional[float] = ..., face: _Optional[_Union[Face, _Mapping]] = ..., embedding_model: _Optional[str] = ...) -> None: ...

class IdentifyRequest(_message.Message):
    __slots__ = ("gallery_id", "photo", "top_k")
    GALLERY_ID_FIELD_NUMBER: _ClassVar[int]
    PHOTO_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    gallery_id: str
    photo: _common_pb2.Image
    top_k: int
    def __init__(self, gallery_id: _Optional[str] = ..., photo: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., top_k: _Optional[int] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("identity_id", "distance")
    IDENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    identity_id: str
    distance: float
    def __init__(self, identity_id: _Optional[str] = ..., distance: _Optional[float] = ...) -> None: ...

class IdentifiedFace(_message.Message):
    __slots__ = ("face", "identity_id", "distance", "candidates")
    FACE_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    face: Face
    identity_id: str
    distance: float
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    def __init__(self, face: _Optional[_Union[Face, _Mapping]] = ..., identity_id: _Optional[str] = ..., distance: _Optional[float] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ...) -> None: ...

class IdentifyResponse(_message.Message):
    __slots__ = ("faces", "threshold", "embedding_model")
    FACES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    faces: _containers.RepeatedCompositeFieldContainer[IdentifiedFace]
    threshold: float
    embedding_model: str
    def __init__(self, faces: _Optional[_Iterable[_Union[IdentifiedFace, _Mapping]]] = ..., threshold: _Optional[float] = ..., embedding_model: _Optional[str] = ...) -> None: ...

class PadCheck(_message.Message):
    __slots__ = ("check", "verdict", "score", "threshold", "reasons")
    CHECK_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    check: str
    verdict: PadVerdict
    score: float
    threshold: float
    reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, check: _Optional[str] = ..., verdict: _Optional[_Union[PadVerdict, str]] = ..., score: _Optional[float] = ..., threshold: _Optional[float] = ..., reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class PassiveCheck(_message.Message):
    __slots__ = ("check", "score", "threshold", "attack", "reason")
    CHECK_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    ATTACK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    check: str
    score: float
    threshold: float
    attack: bool
    reason: str
    def __init__(self, check: _Optional[str] = ..., score: _Optional[float] = ..., threshold: _Optional[float] = ..., attack: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class VerifyAccessRequest(_message.Message):
    __slots__ = ("door_id", "gallery_id", "claimed_identity_id", "frames", "challenge")
    DOOR_ID_FIELD_NUMBER: _ClassVar[int]
    GALLERY_ID_FIELD_NUMBER: _ClassVar[int]
    CLAIMED_IDENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    door_id: str
    gallery_id: str
    claimed_identity_id: str
    frames: _containers.RepeatedCompositeFieldContainer[_common_pb2.Image]
    challenge: ChallengeAnswer
    def __init__(self, door_id: _Optional[str] = ..., gallery_id: _Optional[str] = ..., claimed_identity_id: _Optional[str] = ..., frames: _Optional[_Iterable[_Union[_common_pb2.Image, _Mapping]]] = ..., challenge: _Optional[_Union[ChallengeAnswer, _Mapping]] = ...) -> None: ...

class VerifyAccessResponse(_message.Message):
    __slots__ = ("decision", "reason", "distance", "threshold", "embedding_model", "request_id", "liveness", "audit_id", "client_request_id", "pad", "reason_kind", "challenge", "passive")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PAD_FIELD_NUMBER: _ClassVar[int]
    REASON_KIND_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    PASSIVE_FIELD_NUMBER: _ClassVar[int]
    decision: AccessDecision
    reason: str
    distance: float
    threshold: float
    embedding_model: str
    request_id: str
    liveness: LivenessResult
    audit_id: str
    client_request_id: str
    pad: PadCheck
    reason_kind: str
    challenge: ChallengeCheck
    passive: PassiveCheck
    def __init__(self, decision: _Optional[_Union[AccessDecision, str]] = ..., reason: _Optional[str] = ..., distance: _Optional[float] = ..., threshold: _Optional[float] = ..., embedding_model: _Optional[str] = ..., request_id: _Optional[str] = ..., liveness: _Optional[_Union[LivenessResult, str]] = ..., audit_id: _Optional[str] = ..., client_request_id: _Optional[str] = ..., pad: _Optional[_Union[PadCheck, _Mapping]] = ..., reason_kind: _Optional[str] = ..., challenge: _Optional[_Union[ChallengeCheck, _Mapping]] = ..., passive: _Optional[_Union[PassiveCheck, _Mapping]] = ...) -> None: ...

class ListAuditRecordsRequest(_message.Message):
    __slots__ = ("door_id", "limit")
    DOOR_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    door_id: str
    limit: int
    def __init__(self, door_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class AuditRecord(_message.Message):
    __slots__ = ("audit_id", "unix_ms", "door_id", "gallery_id", "claimed_identity_id", "decision", "reason", "distance", "threshold", "embedding_model", "request_id", "liveness", "frame_count", "matching_frames", "client_request_id", "pad", "reason_kind", "challenge", "passive")
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    DOOR_ID_FIELD_NUMBER: _ClassVar[int]
    GALLERY_ID_FIELD_NUMBER: _ClassVar[int]
    CLAIMED_IDENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    MATCHING_FRAMES_FIELD_NUMBER: _ClassVar[int]
    CLIENT_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PAD_FIELD_NUMBER: _ClassVar[int]
    REASON_KIND_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    PASSIVE_FIELD_NUMBER: _ClassVar[int]
    audit_id: str
    unix_ms: int
    door_id: str
    gallery_id: str
    claimed_identity_id: str
    decision: AccessDecision
    reason: str
    distance: float
    threshold: float
    embedding_model: str
    request_id: str
    liveness: LivenessResult
    frame_count: int
    matching_frames: int
    client_request_id: str
    pad: PadCheck
    reason_kind: str
    challenge: ChallengeCheck
    passive: PassiveCheck
    def __init__(self, audit_id: _Optional[str] = ..., unix_ms: _Optional[int] = ..., door_id: _Optional[str] = ..., gallery_id: _Optional[str] = ..., claimed_identity_id: _Optional[str] = ..., decision: _Optional[_Union[AccessDecision, str]] = ..., reason: _Optional[str] = ..., distance: _Optional[float] = ..., threshold: _Optional[float] = ..., embedding_model: _Optional[str] = ..., request_id: _Optional[str] = ..., liveness: _Optional[_Union[LivenessResult, str]] = ..., frame_count: _Optional[int] = ..., matching_frames: _Optional[int] = ..., client_request_id: _Optional[str] = ..., pad: _Optional[_Union[PadCheck, _Mapping]] = ..., reason_kind: _Optional[str] = ..., challenge: _Optional[_Union[ChallengeCheck, _Mapping]] = ..., passive: _Optional[_Union[PassiveCheck, _Mapping]] = ...) -> None: ...

class ListAuditRecordsResponse(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[AuditRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[AuditRecord, _Mapping]]] = ...) -> None: ...

class BeginAccessRequest(_message.Message):
    __slots__ = ("door_id",)
    DOOR_ID_FIELD_NUMBER: _ClassVar[int]
    door_id: str
    def __init__(self, door_id: _Optional[str] = ...) -> None: ...

class BeginAccessResponse(_message.Message):
    __slots__ = ("challenge_id", "door_id", "kind", "instruction", "expires_unix_ms", "token")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    DOOR_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    door_id: str
    kind: str
    instruction: str
    expires_unix_ms: int
    token: str
    def __init__(self, challenge_id: _Optional[str] = ..., door_id: _Optional[str] = ..., kind: _Optional[str] = ..., instruction: _Optional[str] = ..., expires_unix_ms: _Optional[int] = ..., token: _Optional[str] = ...) -> None: ...

class ChallengeAnswer(_message.Message):
    __slots__ = ("challenge_id", "token")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    token: str
    def __init__(self, challenge_id: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...

class ChallengeCheck(_message.Message):
    __slots__ = ("challenge_id", "kind", "met", "motion", "threshold", "reason")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MET_FIELD_NUMBER: _ClassVar[int]
    MOTION_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    kind: str
    met: bool
    motion: float
    threshold: float
    reason: str
    def __init__(self, challenge_id: _Optional[str] = ..., kind: _Optional[str] = ..., met: _Optional[bool] = ..., motion: _Optional[float] = ..., threshold: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("event_id", "kind", "unix_ms", "door_id", "gallery_id", "identity_id", "decision", "reason", "audit_id", "reason_kind", "request_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    DOOR_ID_FIELD_NUMBER: _ClassVar[int]
    GALLERY_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_KIND_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    kind: str
    unix_ms: int
    door_id: str
    gallery_id: str
    identity_id: str
    decision: AccessDecision
    reason: str
    audit_id: str
    reason_kind: str
    request_id: str
    def __init__(self, event_id: _Optional[str] = ..., kind: _Optional[str] = ..., unix_ms: _Optional[int] = ..., door_id: _Optional[str] = ..., gallery_id: _Optional[str] = ..., identity_id: _Optional[str] = ..., decision: _Optional[_Union[AccessDecision, str]] = ..., reason: _Optional[str] = ..., audit_id: _Optional[str] = ..., reason_kind: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("door_ids", "gallery_ids", "kinds", "after_event_id")
    DOOR_IDS_FIELD_NUMBER: _ClassVar[int]
    GALLERY_IDS_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    AFTER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    door_ids: _containers.RepeatedScalarFieldContainer[str]
    gallery_ids: _containers.RepeatedScalarFieldContainer[str]
    kinds: _containers.RepeatedScalarFieldContainer[str]
    after_event_id: str
    def __init__(self, door_ids: _Optional[_Iterable[str]] = ..., gallery_ids: _Optional[_Iterable[str]] = ..., kinds: _Optional[_Iterable[str]] = ..., after_event_id: _Optional[str] = ...) -> None: ...

class WebhookDeadLetter(_message.Message):
    __slots__ = ("delivery_id", "endpoint", "event", "attempts", "last_error", "dead_unix_ms")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    DEAD_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    endpoint: str
    event: Event
    attempts: int
    last_error: str
    dead_unix_ms: int
    def __init__(self, delivery_id: _Optional[str] = ..., endpoint: _Optional[str] = ..., event: _Optional[_Union[Event, _Mapping]] = ..., attempts: _Optional[int] = ..., last_error: _Optional[str] = ..., dead_unix_ms: _Optional[int] = ...) -> None: ...

class ListWebhookDeadLettersRequest(_message.Message):
    __slots__ = ("endpoint", "limit")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    limit: int
    def __init__(self, endpoint: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListWebhookDeadLettersResponse(_message.Message):
    __slots__ = ("dead_letters",)
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    dead_letters: _containers.RepeatedCompositeFieldContainer[WebhookDeadLetter]
    def __init__(self, dead_letters: _Optional[_Iterable[_Union[WebhookDeadLetter, _Mapping]]] = ...) -> None: ...

class RedriveWebhookDeadLettersRequest(_message.Message):
    __slots__ = ("endpoint", "delivery_ids")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_IDS_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    delivery_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, endpoint: _Optional[str] = ..., delivery_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RedriveWebhookDeadLettersResponse(_message.Message):
    __slots__ = ("redriven", "skipped", "skipped_delivery_ids")
    REDRIVEN_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_DELIVERY_IDS_FIELD_NUMBER: _ClassVar[int]
    redriven: int
    skipped: int
    skipped_delivery_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, redriven: _Optional[int] = ..., skipped: _Optional[int] = ..., skipped_delivery_ids: _Optional[_Iterable[str]] = ...) -> None: ...
