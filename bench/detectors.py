"""Which detector should be the default: the variants the registries give us, on speed and on accuracy.

For each model directory (NanoDet-g 416 as float32 and as static INT8, CenterNet-MobileNetV3 512): the
in-process pipeline p50 (decode, letterbox, onnxruntime, head, NMS; the service's own code, as
bench/detection.py's reference) on the five darknet photos, the model alone, and COCO mAP@0.5 / mAP@[.5:.95] at
min score 0.001 on the photos labelled by eye in ``fovea.models.samples.LABELLED_BOXES`` (4 photos, 12 boxes;
none of them used to calibrate INT8).

    .venv/bin/python bench/detectors.py [--repeats 30] [--models nanodet,nanodet_int8,centernet]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from detection import IMAGES, InProcess  # noqa: E402

from fovea.detection.core.evaluate import evaluate  # noqa: E402
from fovea.detection.pipeline import Options, decode, finish, prepare  # noqa: E402
from fovea.models.samples import LABELLED_BOXES, sample  # noqa: E402
from fovea.stack.config import REPO_ROOT  # noqa: E402

LOW = Options(min_score=0.001, iou_threshold=0.6, max_detections=100, class_filter=None, annotate=False)


def p50_ms(fn: object, repeats: int) -> float:
    times = []
    for i in range(repeats + 3):
        start = time.perf_counter()
        fn(i)  # type: ignore[operator]
        if i >= 3:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def accuracy(model: InProcess) -> tuple[float, float, dict[str, tuple[float, float]]]:
    truth, predictions, sizes = [], [], []
    labels = list(model.spec.labels)
    for name, boxes in LABELLED_BOXES.items():
        decoded = decode(sample(name).read_bytes(), model.limits, model.spec)
        x, transform = prepare(decoded.pixels, model.spec, decoded.original_size)
        outputs = dict(zip(model.onnx_outputs, model.session.run(None, {model.input: x}), strict=True))
        found = finish(outputs, model.spec, transform, LOW, decoded.pixels)
        predictions.append(
            (
                torch.tensor(found.boxes).reshape(-1, 4),
                torch.tensor(found.scores),
                torch.tensor(found.class_ids),
            )
        )
        truth.append(
            (
                torch.tensor([b for _, b in boxes], dtype=torch.float32),
                torch.tensor([labels.index(c) for c, _ in boxes]),
            )
        )
        sizes.append(decoded.original_size)
    result = evaluate(truth, predictions, labels, sizes)
    return result.map50, result.map50_95, result.per_class


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--models", default="nanodet,nanodet_int8,centernet")
    args = parser.parse_args()
    torch.set_num_threads(1)
    encoded = [sample(n).read_bytes() for n in IMAGES]
    rows = []
    for name in args.models.split(","):
        model = InProcess(REPO_ROOT / "model_repository" / name, "cpu")
        width, height = model.spec.input_size
        canvas = prepare(np.zeros((height, width, 3), np.uint8), model.spec)[0]
        model_only = p50_ms(lambda i, m=model, c=canvas: m.session.run(None, {m.input: c}), args.repeats)
        pipeline = p50_ms(lambda i, m=model: m.detect(encoded[i % len(encoded)]), args.repeats)
        map50, map50_95, per_class = accuracy(model)
        rows.append((name, model_only, pipeline, map50, map50_95, per_class))
        print(
            f"{name}: model {model_only:.1f} ms, pipeline {pipeline:.1f} ms, mAP@0.5 {map50:.3f}, "
            f"mAP@[.5:.95] {map50_95:.3f}",
            flush=True,
        )
    print(
        "\n| model | model only p50 ms | in-process pipeline p50 ms | mAP@0.5 | mAP@[.5:.95] | per class AP@0.5 |"
    )
    print("|---|---|---|---|---|---|")
    for name, model_only, pipeline, map50, map50_95, per_class in rows:
        classes = ", ".join(f"{c} {ap50:.2f}" for c, (ap50, _) in sorted(per_class.items()))
        print(f"| {name} | {model_only:.1f} | {pipeline:.1f} | {map50:.3f} | {map50_95:.3f} | {classes} |")


if __name__ == "__main__":
    main()
