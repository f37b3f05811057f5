"""The classify service's request path: decode -> centre crop -> Triton -> top-k.

Proto <-> domain only; the computation lives in ``core/`` (pure, unit-tested) and ``pipeline.py``.
"""

from __future__ import annotations

import asyncio
import time

import grpc

from fovea.classify.config import ClassifySettings
from fovea.classify.pipeline import Classifier, finish, prepare
from fovea.classify.v1 import classify_pb2, classify_pb2_grpc
from fovea.common.errors import InvalidArgument, NotFound, clip
from fovea.common.images import limits_from
from fovea.common.triton import TritonClient
from fovea.common.v1 import common_pb2


class ClassifyServicer(classify_pb2_grpc.ClassifyServiceServicer):
    def __init__(
        self, settings: ClassifySettings, classifiers: dict[str, Classifier], triton: TritonClient
    ) -> None:
        self.settings = settings
        self.classifiers = classifiers
        self.triton = triton
        self.limits = limits_from(settings)

    def _classifier(self, request: classify_pb2.ClassifyRequest) -> tuple[Classifier, int]:
        name = request.model or self.settings.default_model
        classifier = self.classifiers.get(name)
        if classifier is None:
            raise NotFound(
                f"unknown classifier {clip(name)!r}; available: {', '.join(sorted(self.classifiers))}"
            )
        classes = len(classifier.labels)
        if not 0 <= request.top_k <= classes:
            raise InvalidArgument(
                f"top_k must be within [1, {classes}] (0 = the default {self.settings.top_k}), got {request.top_k}"
            )
        return classifier, request.top_k or min(self.settings.top_k, classes)

    async def Classify(
        self, request: classify_pb2.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> classify_pb2.ClassifyResponse:
        classifier, k = self._classifier(request)
        batch, (width, height) = await asyncio.to_thread(prepare, request.image.data, self.limits, classifier)
        start = time.perf_counter()
        outputs = await self.triton.infer(
            classifier.name,
            {classifier.input_name: batch},
            [classifier.output_name],
            timeout_s=self.settings.triton_timeout_s,
        )
        seconds = time.perf_counter() - start
        predictions = finish(outputs, classifier, k)
        return classify_pb2.ClassifyResponse(
            image_size=common_pb2.ImageSize(width=width, height=height),
            model=classifier.name,
            classifications=[
                classify_pb2.Classification(label=p.label, class_id=p.class_id, probability=p.probability)
                for p in predictions
            ],
            inference_seconds=seconds,
        )

    async def ListClassifiers(
        self, request: classify_pb2.ListClassifiersRequest, context: grpc.aio.ServicerContext
    ) -> classify_pb2.ListClassifiersResponse:
        return classify_pb2.ListClassifiersResponse(
            classifiers=[
                classify_pb2.ClassifierInfo(
                    name=c.name,
                    input_size=c.input_size,
                    resize_side=c.resize_side,
                    labels=list(c.labels),
                    is_default=c.name == self.settings.default_model,
                )
                for c in self.classifiers.values()
            ]
        )
