"""The classify service's request path: decode -> centre crop -> Triton -> top-k; training jobs
(queued to the classify worker), versions, rollback and delete of trained classifiers.

Proto <-> domain only; the computation lives in ``core/`` (pure, unit-tested), ``pipeline.py`` and
``trainer.py`` (the worker's side).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
import numpy as np
from celery import Celery

from fovea.classify.config import ClassifySettings
from fovea.classify.core.classify import Prediction
from fovea.classify.core.explain import class_index
from fovea.classify.core.pad_training import burst_kinds
from fovea.classify.core.training import check_labels, check_name
from fovea.classify.pipeline import Classifier, finish, finish_explain, load_head, prepare, prepare_explain
from fovea.classify.replicas import TritonReplicas
from fovea.classify.store import TERMINAL, TrainingJob, TrainingStore, check_job_id
from fovea.classify.tasks import QUEUE, TASK_NAME
from fovea.classify.trained import TrainedClassifier, TrainedRepository, model_name
from fovea.classify.v1 import classify_pb2, classify_pb2_grpc
from fovea.common.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    InvalidImage,
    NotFound,
    ResourceExhausted,
    UpstreamUnavailable,
    clip,
)
from fovea.common.images import decode_image_reduced, limits_from
from fovea.common.triton import TritonClient
from fovea.common.v1 import common_pb2
from fovea.contracts.classifier import FEATURE_MAP_OUTPUT, RESIZE_SIDE
from fovea.contracts.pad_classifier import RECIPE

STATES = {
    "QUEUED": classify_pb2.TRAINING_QUEUED,
    "RUNNING": classify_pb2.TRAINING_RUNNING,
    "SUCCEEDED": classify_pb2.TRAINING_SUCCEEDED,
    "FAILED": classify_pb2.TRAINING_FAILED,
}


@dataclass
class Training:
    """What the training RPCs need: the job store (Redis), the Celery app that queues jobs, the trained
    classifiers' repository."""

    store: TrainingStore
    celery: Celery
    repository: TrainedRepository


class ClassifyServicer(classify_pb2_grpc.ClassifyServiceServicer):
    def __init__(
        self,
        settings: ClassifySettings,
        classifiers: dict[str, Classifier],
        triton: TritonClient,
        training: Training | None = None,
        replicas: TritonReplicas | None = None,
    ) -> None:
        self.settings = settings
        self.classifiers = classifiers
        self.triton = triton
        self.training = training
        self.replicas = replicas  # set: rollback checks, and delete unloads, on every Triton replica
        self.limits = limits_from(settings)
        self._heads: dict[str, np.ndarray] = {}  # Explain: each built-in classifier's head, read once
        self._checks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="classify-training-check")
        self._watches = 0  # WatchTrainingJob streams open now

    def _training(self) -> Training:
        if self.training is None:
            raise FailedPrecondition("training is not configured on this classify service")
        return self.training

    def _trained(self, name: str) -> TrainedClassifier | None:
        if self.training is None or name in self.classifiers:
            return None
        try:
            return self.training.repository.get(name)
        except (NotFound, InvalidArgument):
            return None

    def _classifier(self, request: classify_pb2.ClassifyRequest) -> tuple[Classifier, int, int]:
        """The classifier to run, ``k``, and the version (0 for a built-in classifier)."""
        name = request.model or self.settings.default_model
        classifier = self.classifiers.get(name)
        version = 0
        if classifier is None and (trained := self._trained(name)) is not None:
            info = trained.version(request.version)
            classifier, version = Classifier(model_name(name), tuple(info.labels)), info.version
        if classifier is None:
            known = sorted(self.classifiers) + (
                [c.name for c in self.training.repository.classifiers()] if self.training else []
            )
            raise NotFound(f"unknown classifier {clip(name)!r}; available: {', '.join(known)}")
        if request.version and not version:
            raise InvalidArgument(f"classifier {name!r} is built in and has no versions; leave version unset")
        classes = len(classifier.labels)
        if not 0 <= request.top_k <= classes:
            raise InvalidArgument(
                f"top_k must be within [1, {classes}] (0 = the default {self.settings.top_k}), got {request.top_k}"
            )
        return classifier, request.top_k or min(self.settings.top_k, classes), version

    async def Classify(
        self, request: classify_pb2.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> classify_pb2.ClassifyResponse:
        classifier, k, version = await asyncio.to_thread(self._classifier, request)
        batch, (width, height) = await asyncio.to_thread(prepare, request.image.data, self.limits, classifier)
        start = time.perf_counter()
        outputs = await self.triton.infer(
            classifier.name,
            {classifier.input_name: batch},
            [classifier.output_name],
            timeout_s=self.settings.triton_timeout_s,
            **({"model_version": str(version)} if version else {}),
        )
        seconds = time.perf_counter() - start
        predictions = finish(outputs, classifier, k)
        return classify_pb2.ClassifyResponse(
            image_size=common_pb2.ImageSize(width=width, height=height),
            model=request.model or self.settings.default_model,
            version=version,
            classifications=[
                classify_pb2.Classification(label=p.label, class_id=p.class_id, probability=p.probability)
                for p in predictions
            ],
            inference_seconds=seconds,
        )

    async def ListClassifiers(
        self, request: classify_pb2.ListClassifiersRequest, context: grpc.aio.ServicerContext
    ) -> classify_pb2.ListClassifiersResponse:
        built_in = [
            classify_pb2.ClassifierInfo(
                name=c.name,
                input_size=c.input_size,
                resize_side=c.resize_side,
                labels=list(c.labels),
                is_default=c.name == self.settings.default_model,
            )
            for c in self.classifiers.values()
        ]
        trained = await asyncio.to_thread(self.training.repository.classifiers) if self.training else []
        return classify_pb2.ListClassifiersResponse(classifiers=built_in + [self._info(c) for c in trained])

    def _info(self, classifier: TrainedClassifier) -> classify_pb2.ClassifierInfo:
        active = classifier.version()
        return classify_pb2.ClassifierInfo(
            name=classifier.name,
            input_size=Classifier.input_size,
            resize_side=Classifier.resize_side,
            labels=active.labels,
            trained=True,
            active_version=classifier.active,
            versions=[
                classify_pb2.ClassifierVersion(
                    version=v.version,
                    labels=v.labels,
                    created=v.created,
                    validation_accuracy=v.validation_accuracy,
                    job_id=v.job_id,
                    train_images=v.train_images,
                )
                for v in classifier.versions
            ],
        )

    # ------------------------------------------------------------------------------------------ training
    def _options(self, options: classify_pb2.TrainingOptions) -> dict[str, float | int | str]:
        s = self.settings
        if not 0 <= options.epochs <= s.max_epochs:
            raise InvalidArgument(f"epochs must be within [1, {s.max_epochs}] (0 = {s.default_epochs})")
        if not 0 <= options.learning_rate <= 1:  # NaN fails too
            raise InvalidArgument("learning_rate must be within (0, 1] (0 = the default)")
        if options.validation_fraction and not 0.05 <= options.validation_fraction <= 0.5:
            raise InvalidArgument("validation_fraction must be within [0.05, 0.5] (0 = the default)")
        if not -1 <= options.augment_copies <= 8:
            raise InvalidArgument("augment_copies must be within [0, 8] (-1 = none, 0 = the default)")
        if not 0 <= options.weight_decay <= 1:
            raise InvalidArgument("weight_decay must be within [0, 1] (0 = the default)")
        if options.recipe not in ("", RECIPE):
            raise InvalidArgument(f"unknown recipe {clip(options.recipe)!r}; known: '' (classes), {RECIPE!r}")
        copies = options.augment_copies
        return {
            "recipe": options.recipe,
            "epochs": options.epochs or s.default_epochs,
            "learning_rate": options.learning_rate or s.default_learning_rate,
            "validation_fraction": options.validation_fraction or s.default_validation_fraction,
            "augment_copies": 0 if copies == -1 else (copies or s.default_augment_copies),
            "weight_decay": options.weight_decay or s.default_weight_decay,
            "seed": options.seed,
        }

    def _check_training(self, request: classify_pb2.TrainClassifierRequest) -> dict[str, float | int | str]:
        """Everything a job could be refused for, before anything is stored."""
        s = self.settings
        name = check_name(request.name)
        if name in self.classifiers or model_name(name) in self.classifiers:
            raise InvalidArgument(
                f"{name!r} is a built-in classifier's name; choose another name for a trained classifier"
            )
        options = self._options(request.options)
        labels = [item.label for item in request.images]
        check_labels(labels, s.min_images_per_class, s.max_training_images)
        if options["recipe"] == RECIPE:
            burst_kinds(labels, [item.group for item in request.images], s.min_pad_bursts)
        total = sum(len(item.image.data) for item in request.images)
        if total > s.max_training_bytes:
            raise InvalidArgument(
                f"the images hold {total} bytes, more than the {s.max_training_bytes} a training set may have: "
                "send smaller photos (e.g. 512 px on the longer side is plenty)"
            )
        self._training().repository.check_trainable(name)
        for i, item in enumerate(request.images):
            try:  # as the worker decodes it: a JPEG at 1/2..1/8 scale where the crop allows
                decode_image_reduced(item.image.data, self.limits, (RESIZE_SIDE, RESIZE_SIDE))
            except InvalidImage as exc:
                named = clip(item.source, 200) if item.source else f"image {i}"
                raise InvalidImage(f"{named} (class {item.label!r}): {exc}") from exc
        return options

    async def TrainClassifier(
        self, request: classify_pb2.TrainClassifierRequest, context: grpc.aio.ServicerContext
    ) -> classify_pb2.TrainingJob:
        training = self._training()
        # Up to max_training_images decodes: on their own small pool, not the one Classify's requests use.
        loop = asyncio.get_running_loop()
        options = await loop.run_in_executor(self._checks, self._check_training, request)
        if await asyncio.to_thread(training.store.queued, QUEUE) >= self.settings.max_queued_jobs:
            raise ResourceExhausted(
                f"{self.settings.max_queued_jobs} training jobs are queued, the most the service takes "
                "(FOVEA_CLASSIFY_MAX_QUEUED_JOBS): retry when some have run (minutes)"
            )
        job_id = await asyncio.to_thread(
            training.store.create,
            request.name,
            [item.image.data for item in request.images],
            [item.label for item in request.images],
            options,
            [item.group for item in request.images],
            [item.source for item in request.images],
        )
        try:
            await asyncio.to_thread(training.celery.send_task, TASK_NAME, args=[job_id], queue=QUEUE)
        except Exception as exc:
            await asyncio.to_thread(training.store.drop, job_id)
            raise UpstreamUnavailable(f"the training job could not be queued: {exc}") from exc
        return self._job(await asyncio.to_thread(training.store.get, job_id))

    @staticmethod
    def _job(job: TrainingJob) -> classify_pb2.TrainingJob:
        message = classify_pb2.TrainingJob(
            job_id=job.job_id,
            name=job.name,
            state=STATES.get(job.state, classify_pb2.TRAINING_STATE_UNSPECIFIED),
            stage=job.stage,
            epoch=job.epoch,
            epochs=job.epochs,
            loss=job.loss,
            validation_accuracy=job.validation_accuracy,
            error=job.error,
            created=job.created,
            updated=job.updated,
        )
        if job.result is not None:
            r = job.result
            message.result.CopyFrom(
                classify_pb2.TrainingResult(
                    version=r["version"],
                    validation_accuracy=r["validation_accuracy"],
                    train_accuracy=r["train_accuracy"],
                    classes=[classify_pb2.ClassMetrics(**c) for c in r["classes"]],
                    confusion=r["confusion"],
                    labels=r["labels"],
                    feature_seconds=r["feature_seconds"],
                    train_seconds=r["train_seconds"],
                    features_cached=r["features_cached"],
                    features_computed=r["features_computed"],
                    **({"pad": classify_pb2.PadCalibration(**r["pad"])} if "pad" in r else {}),
                )
            )
        return message

    async def GetTrainingJob(
        self, request: classify_pb2.GetTrainingJobRequest, context: grpc.aio.ServicerContext
    ) -> classify_pb2.TrainingJob:
        return self._job(await asyncio.to_thread(self._training().store.get, request.job_id))

    async def WatchTrainingJob(
        self, request: classify_pb2.GetTrainingJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[classify_pb2.TrainingJob]:
        """Progress until the job ends, its record is gone (expired), or ``watch_max_s`` passed; at most
        ``max_watch_streams`` at once (RESOURCE_EXHAUSTED beyond)."""
        store = self._training().store
        check_job_id(request.job_id)
        if self._watches >= self.settings.max_watch_streams:
            raise ResourceExhausted(
                f"{self.settings.max_watch_streams} training jobs are watched already; retry later, or poll "
                "with GetTrainingJob"
            )
        self._watches += 1
        try:
            deadline = time.monotonic() + self.settings.watch_max_s
            last = None
            while True:
                try:
                    job = await asyncio.to_thread(store.get, request.job_id)
                except NotFound:
                    if last is None:
                        raise
                    return  # the record expired while watched
                seen = (job.state, job.stage, job.epoch, job.updated)
                if seen != last:
                    last = seen
                    yield self._job(job)
                    if job.state in TERMINAL:
                        return
                if time.monotonic() >= deadline:
                    raise DeadlineExceeded(
                        f"watched for {self.settings.watch_max_s:.0f} s and the job has not ended; watch again"
                    )
                await asyncio.sleep(self.settings.watch_poll_s)
        finally:
            self._watches -= 1

    async def RollbackClassifier(
        self, request: classify_pb2.RollbackClassifierRequest, context: grpc.aio.ServicerContext
    ) -> classify_pb2.ClassifierInfo:
        repository = self._training().repository
        check_name(request.name)
        if request.version < 0:
            raise InvalidArgument("version must be a version number, or 0 for the one before the active one")
        current = await asyncio.to_thread(repository.get, request.name)
        wanted = request.version or max(
            [v.version for v in current.versions if v.version < current.active], default=0
        )
        if not wanted:
            raise FailedPrecondition(
                f"classifier {request.name!r} has no version before {current.active}; name one with --to"
            )
        current.version(wanted)  # NotFound naming the versions there are
        control = self.triton if self.replicas is None else self.replicas
        if not await control.is_model_ready(current.model, str(wanted)):
            raise FailedPrecondition(
                f"version {wanted} of {request.name!r} is not loaded in Triton; train again or load the model"
            )
        # ``wanted``, not 0: the version checked, even if another rollback moved the active one meanwhile
        classifier = await asyncio.to_thread(repository.set_active, request.name, wanted)
        return self._info(classifier)

    async def DeleteClassifier(
        self, request: classify_pb2.DeleteClassifierRequest, context: grpc.aio.ServicerContext
    ) -> classify_pb2.DeleteClassifierResponse:
        repository = self._training().repository
        check_name(request.name)
        classifier = await asyncio.to_thread(repository.get, request.name)
        await (self.triton if self.replicas is None else self.replicas).unload_model(classifier.model)
        deleted = await asyncio.to_thread(repository.delete, request.name)
        return classify_pb2.DeleteClassifierResponse(versions_deleted=deleted)

    # ------------------------------------------------------------------------------------------ explain
    def _head(self, classifier: Classifier) -> np.ndarray:
        """The classifier's final linear weights, read from its ONNX file once (Grad-CAM's class weights)."""
        heads = self._heads
        if classifier.name not in heads:
            try:
                heads[classifier.name] = load_head(self.settings.model_repository, classifier)
            except ValueError as exc:
                raise FailedPrecondition(
                    f"classifier {classifier.name!r} cannot be explained: {exc}"
                ) from exc
        return heads[classifier.name]

    async def Explain(
        self, request: classify_pb2.ExplainRequest, context: grpc.aio.ServicerContext
    ) -> classify_pb2.ExplainResponse:
        name = request.model or self.settings.default_model
        classifier = self.classifiers.get(name)
        if classifier is None:
            raise NotFound(
                f"unknown built-in classifier {clip(name)!r} (Explain runs on: {', '.join(sorted(self.classifiers))})"
            )
        if request.label:
            try:
                class_index(classifier.labels, request.label)
            except ValueError as exc:
                raise InvalidArgument(clip(str(exc), 300)) from exc
        head = await asyncio.to_thread(self._head, classifier)
        batch, photo, size = await asyncio.to_thread(
            prepare_explain, request.image.data, self.limits, classifier, request.render
        )
        start = time.perf_counter()
        outputs = await self.triton.infer(
            classifier.name,
            {classifier.input_name: batch},
            [classifier.output_name, FEATURE_MAP_OUTPUT],
            timeout_s=self.settings.triton_timeout_s,
        )
        seconds = time.perf_counter() - start
        found = await asyncio.to_thread(
            finish_explain, outputs, classifier, head, photo, size, request.label, request.render
        )
        x1, y1, x2, y2 = found.crop
        return classify_pb2.ExplainResponse(
            image_size=common_pb2.ImageSize(width=size[0], height=size[1]),
            model=classifier.name,
            explained=_classification(found.explained),
            top=_classification(found.top),
            map_height=found.heatmap.shape[0],
            map_width=found.heatmap.shape[1],
            heatmap=found.heatmap.ravel().tolist(),
            peak=found.peak,
            crop=common_pb2.BoundingBox(x1=x1, y1=y1, x2=x2, y2=y2),
            png=found.png or b"",
            inference_seconds=seconds,
        )


def _classification(p: Prediction) -> classify_pb2.Classification:
    return classify_pb2.Classification(label=p.label, class_id=p.class_id, probability=p.probability)
