from fovea.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    QUEUED: _ClassVar[JobState]
    RUNNING: _ClassVar[JobState]
    SUCCEEDED: _ClassVar[JobState]
    FAILED: _ClassVar[JobState]
    CANCELLED: _ClassVar[JobState]

class Optimizer(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPTIMIZER_UNSPECIFIED: _ClassVar[Optimizer]
    LBFGS: _ClassVar[Optimizer]
    ADAM: _ClassVar[Optimizer]

class Init(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INIT_UNSPECIFIED: _ClassVar[Init]
    CONTENT: _ClassVar[Init]
    NOISE: _ClassVar[Init]
JOB_STATE_UNSPECIFIED: JobState
QUEUED: JobState
RUNNING: JobState
SUCCEEDED: JobState
FAILED: JobState
CANCELLED: JobState
OPTIMIZER_UNSPECIFIED: Optimizer
LBFGS: Optimizer
ADAM: Optimizer
INIT_UNSPECIFIED: Init
CONTENT: Init
NOISE: Init

class GatysParams(_message.Message):
    __slots__ = ("iterations", "alpha", "beta", "optimizer", "init", "max_side", "learning_rate", "content_layer", "style_layers", "preview_every")
    class StyleLayersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    BETA_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    INIT_FIELD_NUMBER: _ClassVar[int]
    MAX_SIDE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_LAYER_FIELD_NUMBER: _ClassVar[int]
    STYLE_LAYERS_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_EVERY_FIELD_NUMBER: _ClassVar[int]
    iterations: int
    alpha: float
    beta: float
    optimizer: Optimizer
    init: Init
    max_side: int
    learning_rate: float
    content_layer: str
    style_layers: _containers.ScalarMap[str, float]
    preview_every: int
    def __init__(self, iterations: _Optional[int] = ..., alpha: _Optional[float] = ..., beta: _Optional[float] = ..., optimizer: _Optional[_Union[Optimizer, str]] = ..., init: _Optional[_Union[Init, str]] = ..., max_side: _Optional[int] = ..., learning_rate: _Optional[float] = ..., content_layer: _Optional[str] = ..., style_layers: _Optional[_Mapping[str, float]] = ..., preview_every: _Optional[int] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("content", "style_name", "style_image", "gatys", "idempotency_key", "max_side", "preserve_color")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    STYLE_NAME_FIELD_NUMBER: _ClassVar[int]
    STYLE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    GATYS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    MAX_SIDE_FIELD_NUMBER: _ClassVar[int]
    PRESERVE_COLOR_FIELD_NUMBER: _ClassVar[int]
    content: _common_pb2.Image
    style_name: str
    style_image: _common_pb2.Image
    gatys: GatysParams
    idempotency_key: str
    max_side: int
    preserve_color: bool
    def __init__(self, content: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., style_name: _Optional[str] = ..., style_image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., gatys: _Optional[_Union[GatysParams, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., max_side: _Optional[int] = ..., preserve_color: _Optional[bool] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("iteration", "total_iterations", "content_cost", "style_cost", "total_cost", "preview_png")
    ITERATION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_COST_FIELD_NUMBER: _ClassVar[int]
    STYLE_COST_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_PNG_FIELD_NUMBER: _ClassVar[int]
    iteration: int
    total_iterations: int
    content_cost: float
    style_cost: float
    total_cost: float
    preview_png: bytes
    def __init__(self, iteration: _Optional[int] = ..., total_iterations: _Optional[int] = ..., content_cost: _Optional[float] = ..., style_cost: _Optional[float] = ..., total_cost: _Optional[float] = ..., preview_png: _Optional[bytes] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "state", "progress", "result_png", "error", "created_unix_ms", "updated_unix_ms", "kind", "result_expired", "preserve_color")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_PNG_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RESULT_EXPIRED_FIELD_NUMBER: _ClassVar[int]
    PRESERVE_COLOR_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: JobState
    progress: Progress
    result_png: bytes
    error: str
    created_unix_ms: int
    updated_unix_ms: int
    kind: str
    result_expired: bool
    preserve_color: bool
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., result_png: _Optional[bytes] = ..., error: _Optional[str] = ..., created_unix_ms: _Optional[int] = ..., updated_unix_ms: _Optional[int] = ..., kind: _Optional[str] = ..., result_expired: _Optional[bool] = ..., preserve_color: _Optional[bool] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id", "omit_result")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OMIT_RESULT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    omit_result: bool
    def __init__(self, job_id: _Optional[str] = ..., omit_result: _Optional[bool] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListStylesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StyleInfo(_message.Message):
    __slots__ = ("name", "index", "description", "aliases")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    name: str
    index: int
    description: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., index: _Optional[int] = ..., description: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class ListStylesResponse(_message.Message):
    __slots__ = ("styles",)
    STYLES_FIELD_NUMBER: _ClassVar[int]
    styles: _containers.RepeatedCompositeFieldContainer[StyleInfo]
    def __init__(self, styles: _Optional[_Iterable[_Union[StyleInfo, _Mapping]]] = ...) -> None: ...
