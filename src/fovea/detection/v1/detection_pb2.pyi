from fovea.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DetectRequest(_message.Message):
    __slots__ = ("image", "model", "min_score", "iou_threshold", "max_detections", "classes", "annotate", "client_tag", "max_candidates")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    IOU_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAX_DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    ANNOTATE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_TAG_FIELD_NUMBER: _ClassVar[int]
    MAX_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    image: _common_pb2.Image
    model: str
    min_score: float
    iou_threshold: float
    max_detections: int
    classes: _containers.RepeatedScalarFieldContainer[str]
    annotate: bool
    client_tag: str
    max_candidates: int
    def __init__(self, image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., model: _Optional[str] = ..., min_score: _Optional[float] = ..., iou_threshold: _Optional[float] = ..., max_detections: _Optional[int] = ..., classes: _Optional[_Iterable[str]] = ..., annotate: _Optional[bool] = ..., client_tag: _Optional[str] = ..., max_candidates: _Optional[int] = ...) -> None: ...

class Detection(_message.Message):
    __slots__ = ("label", "class_id", "score", "box")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    label: str
    class_id: int
    score: float
    box: _common_pb2.BoundingBox
    def __init__(self, label: _Optional[str] = ..., class_id: _Optional[int] = ..., score: _Optional[float] = ..., box: _Optional[_Union[_common_pb2.BoundingBox, _Mapping]] = ...) -> None: ...

class DetectResponse(_message.Message):
    __slots__ = ("image_size", "model", "detections", "annotated_png", "client_tag", "inference_seconds")
    IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    ANNOTATED_PNG_FIELD_NUMBER: _ClassVar[int]
    CLIENT_TAG_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    image_size: _common_pb2.ImageSize
    model: str
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    annotated_png: bytes
    client_tag: str
    inference_seconds: float
    def __init__(self, image_size: _Optional[_Union[_common_pb2.ImageSize, _Mapping]] = ..., model: _Optional[str] = ..., detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ..., annotated_png: _Optional[bytes] = ..., client_tag: _Optional[str] = ..., inference_seconds: _Optional[float] = ...) -> None: ...

class ListDetectorsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DetectorInfo(_message.Message):
    __slots__ = ("name", "family", "input_size", "labels", "is_default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    INPUT_SIZE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    family: str
    input_size: _common_pb2.ImageSize
    labels: _containers.RepeatedScalarFieldContainer[str]
    is_default: bool
    def __init__(self, name: _Optional[str] = ..., family: _Optional[str] = ..., input_size: _Optional[_Union[_common_pb2.ImageSize, _Mapping]] = ..., labels: _Optional[_Iterable[str]] = ..., is_default: _Optional[bool] = ...) -> None: ...

class ListDetectorsResponse(_message.Message):
    __slots__ = ("detectors",)
    DETECTORS_FIELD_NUMBER: _ClassVar[int]
    detectors: _containers.RepeatedCompositeFieldContainer[DetectorInfo]
    def __init__(self, detectors: _Optional[_Iterable[_Union[DetectorInfo, _Mapping]]] = ...) -> None: ...
