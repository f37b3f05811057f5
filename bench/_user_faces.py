"""What a user runs instead of Fovea's Verify: their own face script, in its own process, nothing from Fovea.

The reference of ``bench/verify_user.py`` (issue 23). A user with a RetinaFace-mobilenet0.25 ONNX and a face
embedder ONNX writes the obvious script: Pillow decodes the JPEG and shrinks it to 320 pixels on the longer
side, ``onnxruntime.InferenceSession(path)`` with onnxruntime's defaults (every core, full graph optimisation,
threads that spin) runs RetinaFace, numpy decodes the priors and keeps the best face, a similarity transform
(least squares on the five points) takes the face onto a 150x150 chip with Pillow, the embedder runs on the
chip, and the L2 distance to the enrolled photo's embedding decides (< 0.6). One photo at a time. It imports
numpy, Pillow and onnxruntime only (and the bench's timing loop, ``_timing.sequential``); the template is
the five points' place on the chip, hard-coded. An embedder that takes float32 NCHW 112x112 (InsightFace's
layout, e.g. a MobileFaceNet) gets ArcFace's 112-pixel template, pixels (x - 127.5) / 127.5, and its
embeddings normalised to unit length, as InsightFace's scripts do.

    python bench/_user_faces.py DETECTOR.onnx EMBEDDER.onnx ENROLLED.jpg PROBE... [--requests 48] [--serve]

Prints one JSON object: ``p50_ms``, ``p95_ms``, ``per_s`` (sequential) and ``distances`` (one per probe), so
the caller checks both sides took the same decisions. With ``--serve`` it prints the distances alone and then
times blocks of requests as stdin asks (``_timing.serve_blocks``), for a run interleaved with the platform's.
"""

from __future__ import annotations

import argparse
import io
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnxruntime as ort
from _timing import sequential, serve_blocks  # the bench's timing loops, standard library only
from PIL import Image

SIDE = 320
BGR_MEAN = np.array([104.0, 117.0, 127.0], np.float32)
LEVELS = ((8, (16.0, 32.0)), (16, (64.0, 128.0)), (32, (256.0, 512.0)))
VARIANCES = (0.1, 0.2)
CHIP = 150
ARCFACE_CHIP = 112
ARCFACE_TEMPLATE = np.array(  # InsightFace's five points on a 112x112 chip
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
TEMPLATE = np.array(  # where the eyes, nose and mouth corners go on the chip
    [[46.721, 42.322], [101.302, 42.322], [74.011, 74.592], [47.944, 99.404], [100.078, 99.404]]
)


@lru_cache(maxsize=8)
def priors(height: int, width: int) -> np.ndarray:
    rows = []
    for stride, sizes in LEVELS:
        fh, fw = -(-height // stride), -(-width // stride)
        for i in range(fh):
            for j in range(fw):
                for s in sizes:
                    rows.append(((j + 0.5) * stride, (i + 0.5) * stride, s, s))
    return np.array(rows, np.float32)


def best_face(session: ort.InferenceSession, image: Image.Image) -> np.ndarray:
    """The five points of the highest-scoring face, in the photo's pixels."""
    scale = SIDE / max(image.size)
    small = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
    x = (np.asarray(small)[..., ::-1].astype(np.float32) - BGR_MEAN).transpose(2, 0, 1)[None]
    loc, conf, marks = session.run(None, {session.get_inputs()[0].name: x})
    p = priors(small.height, small.width)
    best = int(conf[0, :, 1].argmax())
    points = p[best, :2] + marks[0, best].reshape(5, 2) * VARIANCES[0] * p[best, 2:]
    return points / np.array([small.width / image.width, small.height / image.height])


def chip(
    image: Image.Image, points: np.ndarray, size: int = CHIP, template: np.ndarray = TEMPLATE
) -> np.ndarray:
    """Least-squares similarity transform of the five points onto the template, the chip cut with it."""
    src, dst = points - points.mean(0), template - template.mean(0)
    u, s, vt = np.linalg.svd(dst.T @ src)
    rotation = u @ vt
    scale = s.sum() / (src**2).sum()
    a = scale * rotation  # chip = a @ photo + t
    t = template.mean(0) - a @ points.mean(0)
    inverse = np.linalg.inv(a)  # Pillow wants photo = inverse @ (chip - t)
    coeffs = (*inverse[0], -(inverse[0] @ t), *inverse[1], -(inverse[1] @ t))
    warped = image.transform((size, size), Image.AFFINE, coeffs, Image.BILINEAR)
    return np.asarray(warped)[None]


def embed(detector: ort.InferenceSession, embedder: ort.InferenceSession, data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    points = best_face(detector, image)
    if embedder.get_inputs()[0].type == "tensor(float)":  # InsightFace's layout: NCHW, 112x112, [-1, 1]
        x = chip(image, points, ARCFACE_CHIP, ARCFACE_TEMPLATE)
        x = ((x.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2)
        e = np.asarray(embedder.run(None, {embedder.get_inputs()[0].name: x})[0][0])
        return e / np.linalg.norm(e)
    x = chip(image, points)
    return np.asarray(embedder.run(None, {embedder.get_inputs()[0].name: x})[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("detector")
    parser.add_argument("embedder")
    parser.add_argument("enrolled")
    parser.add_argument("probes", nargs="+")
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--serve", action="store_true", help="time blocks of requests as stdin asks")
    args = parser.parse_args()
    detector = ort.InferenceSession(args.detector)  # onnxruntime's defaults
    embedder = ort.InferenceSession(args.embedder)
    reference = embed(detector, embedder, Path(args.enrolled).read_bytes())
    probes = [Path(p).read_bytes() for p in args.probes]
    distances = [float(np.linalg.norm(embed(detector, embedder, p) - reference)) for p in probes]
    if args.serve:
        serve_blocks(
            lambda i: np.linalg.norm(embed(detector, embedder, probes[i % len(probes)]) - reference),
            {"distances": distances},
        )
        return
    figures = sequential(
        lambda i: np.linalg.norm(embed(detector, embedder, probes[i % len(probes)]) - reference),
        args.requests,
    )
    print(json.dumps({**figures, "distances": distances}))


if __name__ == "__main__":
    main()
