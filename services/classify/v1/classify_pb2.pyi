from fovea.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClassifyRequest(_message.Message):
    __slots__ = ("image", "model", "top_k")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    image: _common_pb2.Image
    model: str
    top_k: int
    def __init__(self, image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., model: _Optional[str] = ..., top_k: _Optional[int] = ...) -> None: ...

class Classification(_message.Message):
    __slots__ = ("label", "class_id", "probability")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    label: str
    class_id: int
    probability: float
    def __init__(self, label: _Optional[str] = ..., class_id: _Optional[int] = ..., probability: _Optional[float] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("image_size", "model", "classifications", "inference_seconds")
    IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    image_size: _common_pb2.ImageSize
    model: str
    classifications: _containers.RepeatedCompositeFieldContainer[Classification]
    inference_seconds: float
    def __init__(self, image_size: _Optional[_Union[_common_pb2.ImageSize, _Mapping]] = ..., model: _Optional[str] = ..., classifications: _Optional[_Iterable[_Union[Classification, _Mapping]]] = ..., inference_seconds: _Optional[float] = ...) -> None: ...

class ListClassifiersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClassifierInfo(_message.Message):
    __slots__ = ("name", "input_size", "resize_side", "labels", "is_default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_SIZE_FIELD_NUMBER: _ClassVar[int]
    RESIZE_SIDE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    input_size: int
    resize_side: int
    labels: _containers.RepeatedScalarFieldContainer[str]
    is_default: bool
    def __init__(self, name: _Optional[str] = ..., input_size: _Optional[int] = ..., resize_side: _Optional[int] = ..., labels: _Optional[_Iterable[str]] = ..., is_default: _Optional[bool] = ...) -> None: ...

class ListClassifiersResponse(_message.Message):
    __slots__ = ("classifiers",)
    CLASSIFIERS_FIELD_NUMBER: _ClassVar[int]
    classifiers: _containers.RepeatedCompositeFieldContainer[ClassifierInfo]
    def __init__(self, classifiers: _Optional[_Iterable[_Union[ClassifierInfo, _Mapping]]] = ...) -> None: ...
