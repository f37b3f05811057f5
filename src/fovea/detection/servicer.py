"""The detection service's request path: decode -> letterbox -> Triton -> decode head -> NMS -> boxes.

Proto <-> domain only; the computation lives in ``core/`` (pure, unit-tested) and ``pipeline.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import grpc
import numpy as np
from PIL import Image

from fovea.common.errors import InvalidArgument, NotFound
from fovea.common.images import limits_from
from fovea.common.triton import TritonClient
from fovea.common.v1 import common_pb2
from fovea.contracts.detector import MAX_CANDIDATES, DetectorSpec
from fovea.detection.config import DetectionSettings
from fovea.detection.core.preprocess import Transform
from fovea.detection.pipeline import Detections, Options, decode, finish, prepare
from fovea.detection.registry import DetectorRegistry
from fovea.detection.v1 import detection_pb2, detection_pb2_grpc

log = logging.getLogger(__name__)


class DetectionServicer(detection_pb2_grpc.DetectionServiceServicer):
    def __init__(
        self, settings: DetectionSettings, detectors: DetectorRegistry, triton: TritonClient
    ) -> None:
        self.settings = settings
        self.detectors = detectors
        self.triton = triton
        self.limits = limits_from(settings)

    def _options(self, request: detection_pb2.DetectRequest) -> tuple[DetectorSpec, Options]:
        name = request.model or self.settings.default_model
        spec = self.detectors.get(name)  # an unknown name rescans the repositories (imported models)
        if spec is None:
            raise NotFound(f"unknown detector {name!r}; available: {', '.join(sorted(self.detectors.specs))}")
        for value, what in [(request.min_score, "min_score"), (request.iou_threshold, "iou_threshold")]:
            if not 0.0 <= value <= 1.0:
                raise InvalidArgument(f"{what} must be within [0, 1], got {value}")
        if request.max_detections < 0:
            raise InvalidArgument(f"max_detections must be >= 0, got {request.max_detections}")
        if not 0 <= request.max_candidates <= MAX_CANDIDATES:
            raise InvalidArgument(
                f"max_candidates must be within [1, {MAX_CANDIDATES}] (0 = the detector's default "
                f"{spec.max_candidates}), got {request.max_candidates}"
            )
        if request.max_candidates:  # the decoders read the cap from the spec: this request's copy
            spec = spec.model_copy(update={"max_candidates": request.max_candidates})
        unknown = sorted(set(request.classes) - set(spec.labels))
        if unknown:
            raise InvalidArgument(
                f"detector {name!r} has no classes {unknown}; see ListDetectors for its labels"
            )
        return spec, Options(
            min_score=request.min_score or self.settings.min_score,
            iou_threshold=request.iou_threshold or self.settings.iou_threshold,
            max_detections=min(
                request.max_detections or spec.max_detections or self.settings.max_detections,
                self.settings.max_detections,
            ),
            class_filter=frozenset(spec.labels.index(c) for c in request.classes) or None,
            annotate=request.annotate,
        )

    def _prepare(
        self, data: bytes, spec: DetectorSpec, options: Options
    ) -> tuple[Image.Image, np.ndarray, Transform]:
        """Decode (JPEGs at a reduced scale when the network input allows it) and letterbox, in one thread hop."""
        decoded = decode(data, self.limits, spec, options.annotate)
        batch, transform = prepare(decoded.picture, spec, decoded.original_size)
        return decoded.picture, batch, transform

    async def _detect(self, request: detection_pb2.DetectRequest) -> detection_pb2.DetectResponse:
        spec, options = self._options(request)
        image, batch, transform = await asyncio.to_thread(self._prepare, request.image.data, spec, options)
        start = time.perf_counter()
        outputs = await self.triton.infer(
            spec.name, {spec.input_name: batch}, spec.output_names, timeout_s=self.settings.triton_timeout_s
        )
        seconds = time.perf_counter() - start
        result = await asyncio.to_thread(finish, outputs, spec, transform, options, image)
        return self._response(result, spec, request.client_tag, seconds)

    @staticmethod
    def _response(
        result: Detections, spec: DetectorSpec, tag: str, seconds: float
    ) -> detection_pb2.DetectResponse:
        return detection_pb2.DetectResponse(
            image_size=common_pb2.ImageSize(width=result.width, height=result.height),
            model=spec.name,
            detections=[
                detection_pb2.Detection(
                    label=spec.labels[c],
                    class_id=c,
                    score=s,
                    box=common_pb2.BoundingBox(x1=b[0], y1=b[1], x2=b[2], y2=b[3]),
                )
                for b, s, c in zip(result.boxes, result.scores, result.class_ids, strict=True)
            ],
            annotated_png=result.annotated_png or b"",
            client_tag=tag,
            inference_seconds=seconds,
        )

    async def Detect(
        self, request: detection_pb2.DetectRequest, context: grpc.aio.ServicerContext
    ) -> detection_pb2.DetectResponse:
        return await self._detect(request)

    async def DetectStream(
        self, request_iterator: AsyncIterator[detection_pb2.DetectRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[detection_pb2.DetectResponse]:
        # Up to 8 images in flight, so Triton's dynamic batcher can merge them; answers in request order.
        pending: list[asyncio.Task[detection_pb2.DetectResponse]] = []
        try:
            async for request in request_iterator:
                pending.append(asyncio.create_task(self._detect(request)))
                if len(pending) >= 8:
                    yield await pending.pop(0)
            while pending:
                yield await pending.pop(0)
        finally:  # the stream failed or was cancelled: nothing of it keeps running
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def ListDetectors(
        self, request: detection_pb2.ListDetectorsRequest, context: grpc.aio.ServicerContext
    ) -> detection_pb2.ListDetectorsResponse:
        await asyncio.to_thread(self.detectors.rescan)
        return detection_pb2.ListDetectorsResponse(
            detectors=[
                detection_pb2.DetectorInfo(
                    name=spec.name,
                    family=(spec.decoded_from or spec.family).value,  # an import's own family
                    input_size=common_pb2.ImageSize(width=spec.input_size[0], height=spec.input_size[1]),
                    labels=list(spec.labels),
                    is_default=spec.name == self.settings.default_model,
                )
                for spec in self.detectors.specs.values()
            ]
        )
