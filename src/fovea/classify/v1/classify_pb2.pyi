from fovea.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrainingState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAINING_STATE_UNSPECIFIED: _ClassVar[TrainingState]
    TRAINING_QUEUED: _ClassVar[TrainingState]
    TRAINING_RUNNING: _ClassVar[TrainingState]
    TRAINING_SUCCEEDED: _ClassVar[TrainingState]
    TRAINING_FAILED: _ClassVar[TrainingState]
TRAINING_STATE_UNSPECIFIED: TrainingState
TRAINING_QUEUED: TrainingState
TRAINING_RUNNING: TrainingState
TRAINING_SUCCEEDED: TrainingState
TRAINING_FAILED: TrainingState

class ClassifyRequest(_message.Message):
    __slots__ = ("image", "model", "top_k", "version")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    image: _common_pb2.Image
    model: str
    top_k: int
    version: int
    def __init__(self, image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., model: _Optional[str] = ..., top_k: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("image_size", "model", "classifications", "inference_seconds", "version")
    IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    image_size: _common_pb2.ImageSize
    model: str
    classifications: _containers.RepeatedCompositeFieldContainer[Classification]
    inference_seconds: float
    version: int
    def __init__(self, image_size: _Optional[_Union[_common_pb2.ImageSize, _Mapping]] = ..., model: _Optional[str] = ..., classifications: _Optional[_Iterable[_Union[Classification, _Mapping]]] = ..., inference_seconds: _Optional[float] = ..., version: _Optional[int] = ...) -> None: ...

class ListClassifiersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClassifierInfo(_message.Message):
    __slots__ = ("name", "input_size", "resize_side", "labels", "is_default", "trained", "active_version", "versions")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_SIZE_FIELD_NUMBER: _ClassVar[int]
    RESIZE_SIDE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    TRAINED_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    input_size: int
    resize_side: int
    labels: _containers.RepeatedScalarFieldContainer[str]
    is_default: bool
    trained: bool
    active_version: int
    versions: _containers.RepeatedCompositeFieldContainer[ClassifierVersion]
    def __init__(self, name: _Optional[str] = ..., input_size: _Optional[int] = ..., resize_side: _Optional[int] = ..., labels: _Optional[_Iterable[str]] = ..., is_default: _Optional[bool] = ..., trained: _Optional[bool] = ..., active_version: _Optional[int] = ..., versions: _Optional[_Iterable[_Union[ClassifierVersion, _Mapping]]] = ...) -> None: ...

class ClassifierVersion(_message.Message):
    __slots__ = ("version", "labels", "created", "validation_accuracy", "job_id", "train_images")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TRAIN_IMAGES_FIELD_NUMBER: _ClassVar[int]
    version: int
    labels: _containers.RepeatedScalarFieldContainer[str]
    created: float
    validation_accuracy: float
    job_id: str
    train_images: int
    def __init__(self, version: _Optional[int] = ..., labels: _Optional[_Iterable[str]] = ..., created: _Optional[float] = ..., validation_accuracy: _Optional[float] = ..., job_id: _Optional[str] = ..., train_images: _Optional[int] = ...) -> None: ...

class ListClassifiersResponse(_message.Message):
    __slots__ = ("classifiers",)
    CLASSIFIERS_FIELD_NUMBER: _ClassVar[int]
    classifiers: _containers.RepeatedCompositeFieldContainer[ClassifierInfo]
    def __init__(self, classifiers: _Optional[_Iterable[_Union[ClassifierInfo, _Mapping]]] = ...) -> None: ...

class LabelledImage(_message.Message):
    __slots__ = ("label", "image", "group", "source")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    label: str
    image: _common_pb2.Image
    group: str
    source: str
    def __init__(self, label: _Optional[str] = ..., image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., group: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class TrainingOptions(_message.Message):
    __slots__ = ("epochs", "learning_rate", "validation_fraction", "augment_copies", "weight_decay", "seed", "recipe")
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FRACTION_FIELD_NUMBER: _ClassVar[int]
    AUGMENT_COPIES_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    RECIPE_FIELD_NUMBER: _ClassVar[int]
    epochs: int
    learning_rate: float
    validation_fraction: float
    augment_copies: int
    weight_decay: float
    seed: int
    recipe: str
    def __init__(self, epochs: _Optional[int] = ..., learning_rate: _Optional[float] = ..., validation_fraction: _Optional[float] = ..., augment_copies: _Optional[int] = ..., weight_decay: _Optional[float] = ..., seed: _Optional[int] = ..., recipe: _Optional[str] = ...) -> None: ...

class TrainClassifierRequest(_message.Message):
    __slots__ = ("name", "images", "options")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    images: _containers.RepeatedCompositeFieldContainer[LabelledImage]
    options: TrainingOptions
    def __init__(self, name: _Optional[str] = ..., images: _Optional[_Iterable[_Union[LabelledImage, _Mapping]]] = ..., options: _Optional[_Union[TrainingOptions, _Mapping]] = ...) -> None: ...

class GetTrainingJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ClassMetrics(_message.Message):
    __slots__ = ("label", "accuracy", "precision", "validation_images", "train_images")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_IMAGES_FIELD_NUMBER: _ClassVar[int]
    TRAIN_IMAGES_FIELD_NUMBER: _ClassVar[int]
    label: str
    accuracy: float
    precision: float
    validation_images: int
    train_images: int
    def __init__(self, label: _Optional[str] = ..., accuracy: _Optional[float] = ..., precision: _Optional[float] = ..., validation_images: _Optional[int] = ..., train_images: _Optional[int] = ...) -> None: ...

class TrainingResult(_message.Message):
    __slots__ = ("version", "validation_accuracy", "train_accuracy", "classes", "confusion", "labels", "feature_seconds", "train_seconds", "features_cached", "features_computed", "pad")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    CONFUSION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_CACHED_FIELD_NUMBER: _ClassVar[int]
    FEATURES_COMPUTED_FIELD_NUMBER: _ClassVar[int]
    PAD_FIELD_NUMBER: _ClassVar[int]
    version: int
    validation_accuracy: float
    train_accuracy: float
    classes: _containers.RepeatedCompositeFieldContainer[ClassMetrics]
    confusion: _containers.RepeatedScalarFieldContainer[int]
    labels: _containers.RepeatedScalarFieldContainer[str]
    feature_seconds: float
    train_seconds: float
    features_cached: int
    features_computed: int
    pad: PadCalibration
    def __init__(self, version: _Optional[int] = ..., validation_accuracy: _Optional[float] = ..., train_accuracy: _Optional[float] = ..., classes: _Optional[_Iterable[_Union[ClassMetrics, _Mapping]]] = ..., confusion: _Optional[_Iterable[int]] = ..., labels: _Optional[_Iterable[str]] = ..., feature_seconds: _Optional[float] = ..., train_seconds: _Optional[float] = ..., features_cached: _Optional[int] = ..., features_computed: _Optional[int] = ..., pad: _Optional[_Union[PadCalibration, _Mapping]] = ...) -> None: ...

class PadCalibration(_message.Message):
    __slots__ = ("train_bona_fide_bursts", "train_attack_bursts", "validation_bona_fide_bursts", "validation_attack_bursts", "logit_shift", "bpcer", "apcer", "crop_bpcer", "crop_apcer", "apcer_by_species")
    class ApcerBySpeciesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TRAIN_BONA_FIDE_BURSTS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ATTACK_BURSTS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_BONA_FIDE_BURSTS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_ATTACK_BURSTS_FIELD_NUMBER: _ClassVar[int]
    LOGIT_SHIFT_FIELD_NUMBER: _ClassVar[int]
    BPCER_FIELD_NUMBER: _ClassVar[int]
    APCER_FIELD_NUMBER: _ClassVar[int]
    CROP_BPCER_FIELD_NUMBER: _ClassVar[int]
    CROP_APCER_FIELD_NUMBER: _ClassVar[int]
    APCER_BY_SPECIES_FIELD_NUMBER: _ClassVar[int]
    train_bona_fide_bursts: int
    train_attack_bursts: int
    validation_bona_fide_bursts: int
    validation_attack_bursts: int
    logit_shift: float
    bpcer: float
    apcer: float
    crop_bpcer: float
    crop_apcer: float
    apcer_by_species: _containers.ScalarMap[str, float]
    def __init__(self, train_bona_fide_bursts: _Optional[int] = ..., train_attack_bursts: _Optional[int] = ..., validation_bona_fide_bursts: _Optional[int] = ..., validation_attack_bursts: _Optional[int] = ..., logit_shift: _Optional[float] = ..., bpcer: _Optional[float] = ..., apcer: _Optional[float] = ..., crop_bpcer: _Optional[float] = ..., crop_apcer: _Optional[float] = ..., apcer_by_species: _Optional[_Mapping[str, float]] = ...) -> None: ...

class TrainingJob(_message.Message):
    __slots__ = ("job_id", "name", "state", "stage", "epoch", "epochs", "loss", "validation_accuracy", "result", "error", "created", "updated")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    name: str
    state: TrainingState
    stage: str
    epoch: int
    epochs: int
    loss: float
    validation_accuracy: float
    result: TrainingResult
    error: str
    created: float
    updated: float
    def __init__(self, job_id: _Optional[str] = ..., name: _Optional[str] = ..., state: _Optional[_Union[TrainingState, str]] = ..., stage: _Optional[str] = ..., epoch: _Optional[int] = ..., epochs: _Optional[int] = ..., loss: _Optional[float] = ..., validation_accuracy: _Optional[float] = ..., result: _Optional[_Union[TrainingResult, _Mapping]] = ..., error: _Optional[str] = ..., created: _Optional[float] = ..., updated: _Optional[float] = ...) -> None: ...

class RollbackClassifierRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class DeleteClassifierRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteClassifierResponse(_message.Message):
    __slots__ = ("versions_deleted",)
    VERSIONS_DELETED_FIELD_NUMBER: _ClassVar[int]
    versions_deleted: int
    def __init__(self, versions_deleted: _Optional[int] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("image", "model", "label", "render")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    RENDER_FIELD_NUMBER: _ClassVar[int]
    image: _common_pb2.Image
    model: str
    label: str
    render: bool
    def __init__(self, image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., model: _Optional[str] = ..., label: _Optional[str] = ..., render: _Optional[bool] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("image_size", "model", "explained", "top", "map_height", "map_width", "heatmap", "peak", "crop", "png", "inference_seconds")
    IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    EXPLAINED_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    MAP_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAP_WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEATMAP_FIELD_NUMBER: _ClassVar[int]
    PEAK_FIELD_NUMBER: _ClassVar[int]
    CROP_FIELD_NUMBER: _ClassVar[int]
    PNG_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    image_size: _common_pb2.ImageSize
    model: str
    explained: Classification
    top: Classification
    map_height: int
    map_width: int
    heatmap: _containers.RepeatedScalarFieldContainer[float]
    peak: float
    crop: _common_pb2.BoundingBox
    png: bytes
    inference_seconds: float
    def __init__(self, image_size: _Optional[_Union[_common_pb2.ImageSize, _Mapping]] = ..., model: _Optional[str] = ..., explained: _Optional[_Union[Classification, _Mapping]] = ..., top: _Optional[_Union[Classification, _Mapping]] = ..., map_height: _Optional[int] = ..., map_width: _Optional[int] = ..., heatmap: _Optional[_Iterable[float]] = ..., peak: _Optional[float] = ..., crop: _Optional[_Union[_common_pb2.BoundingBox, _Mapping]] = ..., png: _Optional[bytes] = ..., inference_seconds: _Optional[float] = ...) -> None: ...
