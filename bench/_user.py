"""What a user runs instead of Fovea: their own detector script, in its own process, nothing from Fovea.

The reference of the ratios in ``bench/detection.py`` (issue 23): a user with an exported NanoDet (float32
NCHW input, the six raw head outputs, as ``bench/detection.py`` exports it) writes the obvious script:
Pillow decodes the JPEG, numpy letterboxes and normalises, ``onnxruntime.InferenceSession(path)`` with
onnxruntime's defaults (every core, full graph optimisation, threads that spin) runs the network, numpy
decodes the GFL head and runs class-aware NMS, boxes go back to the photo. One photo at a time, the way a
script calls a model. It imports numpy, Pillow and onnxruntime only (and the bench's timing loop,
``_timing.sequential``, standard library only).

    python bench/_user.py MODEL.onnx PHOTO... [--requests 64] [--min-score 0.3] [--iou 0.6] [--serve]

Prints one JSON object: ``p50_ms``, ``p95_ms``, ``per_s`` (sequential) and ``classes`` (the class ids found
in each photo, best first), so the caller checks both sides found the same things. With ``--serve`` it prints
the classes alone and then times blocks of requests as stdin asks (``_timing.serve_blocks``), for a run
interleaved with the platform's.
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
from _timing import sequential, serve_blocks  # bench/ is sys.path[0]
from PIL import Image

SIZE = 416
STRIDES = (8, 16, 32)
REG_MAX = 10
MEAN = np.array([103.53, 116.28, 123.675], dtype=np.float32)  # BGR, as NanoDet was trained
STD = np.array([57.375, 57.12, 58.395], dtype=np.float32)


def letterbox(image: Image.Image) -> tuple[np.ndarray, float, int, int]:
    """The photo scaled to fit 416x416, centred on grey (114); the scale and the offsets to undo it."""
    scale = min(SIZE / image.width, SIZE / image.height)
    w, h = round(image.width * scale), round(image.height * scale)
    canvas = np.full((SIZE, SIZE, 3), 114, dtype=np.uint8)
    left, top = (SIZE - w) // 2, (SIZE - h) // 2
    canvas[top : top + h, left : left + w] = np.asarray(image.resize((w, h), Image.BILINEAR))
    return canvas, scale, left, top


def priors() -> tuple[np.ndarray, np.ndarray]:
    centres, strides = [], []
    for s in STRIDES:
        n = SIZE // s
        row, col = np.divmod(np.arange(n * n), n)
        centres.append((np.stack((col, row), axis=1) + 0.5) * s)  # this NanoDet: cell centres
        strides.append(np.full(n * n, s))
    return np.concatenate(centres).astype(np.float32), np.concatenate(strides).astype(np.float32)


CENTRES, STRIDE = priors()


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    order = scores.argsort()[::-1]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        xy1 = np.maximum(boxes[i, :2], boxes[order[1:], :2])
        xy2 = np.minimum(boxes[i, 2:], boxes[order[1:], 2:])
        inter = np.prod(np.clip(xy2 - xy1, 0, None), axis=1)
        order = order[1:][inter / (area[i] + area[order[1:]] - inter) <= iou]
    return keep


def detect(session: ort.InferenceSession, data: bytes, min_score: float, iou: float) -> list[int]:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    canvas, scale, left, top = letterbox(image)
    x = ((canvas[..., ::-1].astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None]
    out = session.run(None, {session.get_inputs()[0].name: x})
    cls = np.concatenate([o[0] for o in out[0::2]])  # (A, 80), already sigmoid
    reg = np.concatenate([o[0] for o in out[1::2]])  # (A, 44)
    anchor, class_id = np.nonzero(cls > min_score)
    scores = cls[anchor, class_id]
    bins = reg[anchor].reshape(-1, 4, REG_MAX + 1)
    bins = np.exp(bins - bins.max(axis=-1, keepdims=True))
    dist = (bins / bins.sum(axis=-1, keepdims=True)) @ np.arange(REG_MAX + 1, dtype=np.float32)
    dist *= STRIDE[anchor, None]
    centre = CENTRES[anchor]
    boxes = np.concatenate((centre - dist[:, :2], centre + dist[:, 2:]), axis=1)
    offset = boxes + class_id[:, None] * 4096.0  # class-aware NMS in one pass
    keep = nms(offset, scores, iou)[:100]
    boxes = (boxes[keep] - [left, top, left, top]) / scale  # back to the photo's pixels
    return [int(c) for c in class_id[keep]]


def script_main(doc: str, detect: Callable[[ort.InferenceSession, bytes, float, float], list[int]]) -> None:
    """The command line of a user's detector script (this one's and ``_user_yolox.py``'s)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("photos", nargs="+")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--min-score", type=float, default=0.3)
    parser.add_argument("--iou", type=float, default=0.6)
    parser.add_argument("--serve", action="store_true", help="time blocks of requests as stdin asks")
    args = parser.parse_args()
    session = ort.InferenceSession(args.model)  # onnxruntime's defaults
    photos = [Path(p).read_bytes() for p in args.photos]
    classes = [detect(session, p, args.min_score, args.iou) for p in photos]  # also the warm-up
    if args.serve:
        serve_blocks(
            lambda i: detect(session, photos[i % len(photos)], args.min_score, args.iou),
            {"classes": classes},
        )
        return
    figures = sequential(
        lambda i: detect(session, photos[i % len(photos)], args.min_score, args.iou), args.requests
    )
    print(json.dumps({**figures, "classes": classes}))


if __name__ == "__main__":
    script_main(__doc__ or "", detect)
