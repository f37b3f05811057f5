"""CPU work around the Triton call of one detection request (run in a worker thread).

``prepare`` and ``finish`` need no gRPC or Triton: a benchmark can run the same pre- and post-processing
around an in-process model (``fovea.serving.triton_adapter.load_served``)::

    decoded = decode(data, limits, spec, options.annotate)
    batch, transform = prepare(decoded.picture, spec, decoded.original_size)
    outputs = served.execute([{spec.input_name: batch}])[0]
    detections = finish(outputs, spec, transform, options, decoded.picture)
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from fovea.common.detectors.heads import DECODERS, rank_final
from fovea.common.images import Decoded, ImageLimits, as_picture, decode_image_reduced
from fovea.contracts.detector import DetectorSpec
from fovea.detection.core.annotate import draw_detections
from fovea.detection.core.postprocess import Detection, postprocess
from fovea.detection.core.preprocess import Transform, letterbox, normalise, resized_size, to_original


@dataclass(frozen=True)
class Options:
    min_score: float
    iou_threshold: float
    max_detections: int
    class_filter: frozenset[int] | None
    annotate: bool


@dataclass(frozen=True)
class Detections:
    width: int
    height: int
    boxes: list[list[float]]  # xyxy, absolute pixels of the original image
    scores: list[float]
    class_ids: list[int]
    annotated_png: bytes | None


def decode(data: bytes, limits: ImageLimits, spec: DetectorSpec, annotate: bool = False) -> Decoded:
    """The request's image, JPEGs decoded at 1/2..1/8 scale when that still leaves the size the letterbox
    resizes it to (:func:`resized_size`: 416x312 for a 4:3 photo and a 416x416 input), and the full image's
    size; full size when ``annotate`` (the drawing is at full size). A 1024x768 photo is decoded at 1/2,
    a 4032x3024 one at 1/8: 2.2 and 3.2 ms less decoding and letterboxing than when both sides had to keep
    the whole input (bench/README.md, bench/letterbox_decode.py).

    Pass ``decoded.original_size`` to :func:`prepare` so boxes come back in full-size pixels.
    """
    if annotate:
        return decode_image_reduced(data, limits, None)
    return decode_image_reduced(data, limits, lambda size: resized_size(size[0], size[1], spec))


def prepare(
    image: np.ndarray | Image.Image, spec: DetectorSpec, original_size: tuple[int, int] | None = None
) -> tuple[np.ndarray, Transform]:
    """The model input for one image, batch of 1, and the transform back to original pixels.

    Args:
        image: ``(H, W, 3)`` uint8 RGB, or the decoded Pillow RGB image (``Decoded.picture``: no copy of
            every pixel as an array is made).
        spec: the detector; ``spec.input_format`` picks the input: ``uint8_nhwc`` -> ``(1, IH, IW, 3)``
            uint8 (the letterboxed canvas), ``float_nchw`` -> ``(1, 3, IH, IW)`` float32, normalised.
        original_size: ``(width, height)`` of the full image when ``image`` was decoded at a reduced scale
            (boxes then come back in full-size pixels).
    """
    canvas, transform = letterbox(image, spec, original_size)
    batch = canvas if spec.input_format == "uint8_nhwc" else normalise(canvas, spec)
    return batch[None], transform


def finish(
    outputs: dict[str, np.ndarray],
    spec: DetectorSpec,
    transform: Transform,
    options: Options,
    image: np.ndarray | Image.Image,
) -> Detections:
    """Decode the head, run class-aware NMS (not for end-to-end families, whose outputs are final), map
    boxes back to the original image."""
    per_image = {name: torch.from_numpy(array[0]) for name, array in outputs.items()}
    boxes, scores, class_ids = DECODERS[spec.family](per_image, spec, options.min_score)
    class_filter = set(options.class_filter) if options.class_filter else None
    if spec.family.end_to_end:
        boxes, scores, class_ids = rank_final(
            boxes, scores, class_ids, max_detections=options.max_detections, class_filter=class_filter
        )
    else:
        boxes, scores, class_ids = postprocess(
            boxes,
            scores,
            class_ids,
            iou_threshold=options.iou_threshold,
            max_detections=options.max_detections,
            class_filter=class_filter,
        )
    boxes = to_original(boxes, transform)
    width, height = transform.original_size
    result = Detections(
        width=width,
        height=height,
        boxes=boxes.tolist(),
        scores=scores.tolist(),
        class_ids=[int(c) for c in class_ids.tolist()],
        annotated_png=None,
    )
    if not options.annotate:
        return result
    drawn = draw_detections(
        as_picture(image),
        [
            Detection(box=(b[0], b[1], b[2], b[3]), score=s, class_id=c, label=spec.labels[c])
            for b, s, c in zip(result.boxes, result.scores, result.class_ids, strict=True)
        ],
    )
    buf = io.BytesIO()
    drawn.save(buf, format="PNG", compress_level=1)  # speed over size
    return Detections(width, height, result.boxes, result.scores, result.class_ids, buf.getvalue())
