"""Which detector should be the default: the variants the registries give us, on speed and on accuracy.

For each model directory (NanoDet-g 416 as float32 and as static INT8, CenterNet-MobileNetV3 512): the
in-process pipeline p50 (decode, letterbox, onnxruntime, head, NMS; the service's own code, as
bench/detection.py's reference) on the five darknet photos, the model alone, and, on the photos labelled by
eye, COCO mAP@0.5 / mAP@[.5:.95] at min score 0.001 and the boxes right at the service's defaults (min score,
NMS IoU, max detections of ``DetectionSettings``): labelled boxes matched by a detection of the same class with
IoU >= 0.5, each detection matching one box at most, best scores first (what a user gets back without asking
for a threshold). The labels: ``fovea.convert.labelled.LABELLED_SET`` (10 photos, 36 boxes; ``--labels
twelve``: ``fovea.convert.samples.LABELLED_BOXES``, 4 photos, 12 boxes); none of the photos used to calibrate
INT8. The models take turns call by call, so a shared, noisy machine loads them alike; the model is also
timed on one onnxruntime thread in CPU time (``time.thread_time``), which other processes on the machine
barely change.

With ``--gateway`` the models also take turns through the whole platform (a private stack, as
bench/detection.py starts): Detect p50 through the gateway, each request naming its model.

    .venv/bin/python bench/detectors.py [--repeats 30] [--models nanodet,nanodet_int8,centernet] [--gateway]
        [--labels set|twelve]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from _stack import private_stack  # noqa: E402
from detection import IMAGES, InProcess  # noqa: E402

from fovea.client import FoveaClient  # noqa: E402
from fovea.common.paths import project_root  # noqa: E402
from fovea.contracts.tensors import model_parameters
from fovea.convert.labelled import LABELLED_SET, Boxes
from fovea.convert.samples import LABELLED_BOXES, sample
from fovea.detection.config import DetectionSettings
from fovea.detection.core.mean_ap import evaluate
from fovea.detection.pipeline import Detections, Options, decode, finish, prepare  # noqa: E402
from fovea.serving.base import onnx_session, read_config

LOW = Options(min_score=0.001, iou_threshold=0.6, max_detections=100, class_filter=None, annotate=False)
_SETTINGS = DetectionSettings()
DEFAULTS = Options(
    min_score=_SETTINGS.min_score,
    iou_threshold=_SETTINGS.iou_threshold,
    max_detections=_SETTINGS.max_detections,
    class_filter=None,
    annotate=False,
)
LABELS: dict[str, Boxes] = {"set": LABELLED_SET, "twelve": LABELLED_BOXES}


def interleaved_p50_ms(
    fns: dict[str, Callable[[int], object]], repeats: int, clock: Callable[[], float] = time.perf_counter
) -> dict[str, float]:
    """p50 (ms) of each function over ``repeats`` calls after 3 warm-up calls, the functions taking turns
    (call ``i`` of every one, then call ``i + 1``...): on a shared, noisy machine each sees the same load.
    ``clock``: wall time by default; ``time.thread_time`` counts only this thread's CPU time."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(repeats + 3):
        for name, fn in fns.items():
            start = clock()
            fn(i)
            if i >= 3:
                times[name].append(clock() - start)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def gateway_p50_ms(names: list[str], encoded: list[bytes], repeats: int) -> dict[str, float]:
    """Detect p50 (ms) through the gateway of a private stack, the models taking turns (service defaults)."""
    with private_stack() as (settings, key):
        client = FoveaClient(f"{settings.host}:{settings.gateway_port}", key, 60.0)

        def detect(name: str) -> Callable[[int], object]:
            return lambda i: client.detect(encoded[i % len(encoded)], model=name)

        return interleaved_p50_ms({name: detect(name) for name in names}, repeats)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two xyxy boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def boxes_right(
    truth: list[tuple[int, tuple[float, ...]]], found: Detections, threshold: float = 0.5
) -> tuple[list[bool], int]:
    """Which labelled boxes (class id, xyxy) a detection of the same class covers with IoU >= ``threshold``,
    detections taken best score first, each matching the still unmatched box it overlaps most (COCO's
    greedy matching); and how many detections matched no box."""
    matched = [False] * len(truth)
    unmatched = 0
    order = sorted(range(len(found.scores)), key=lambda i: -found.scores[i])
    for i in order:
        box, class_id = tuple(found.boxes[i]), found.class_ids[i]
        best, best_iou = -1, threshold
        for j, (truth_class, truth_box) in enumerate(truth):
            overlap = iou(box, truth_box)
            if not matched[j] and truth_class == class_id and overlap >= best_iou:
                best, best_iou = j, overlap
        if best < 0:
            unmatched += 1
        else:
            matched[best] = True
    return matched, unmatched


@dataclass
class Accuracy:
    map50: float
    map50_95: float
    per_class: dict[str, tuple[float, float]]
    right: int
    """Labelled boxes found at the service's defaults (``boxes_right``)."""
    boxes: int
    unmatched: int
    """Detections at the service's defaults that matched no labelled box."""
    missed: list[str] = field(default_factory=list)
    """``photo:class`` of each labelled box not found at the defaults."""


def accuracy(model: InProcess, labelled: Boxes) -> Accuracy:
    truth, predictions, sizes = [], [], []
    labels = list(model.spec.labels)
    right = unmatched = 0
    missed = []
    for name, boxes in labelled.items():
        decoded = decode(sample(name).read_bytes(), model.limits, model.spec)
        x, transform = prepare(decoded.picture, model.spec, decoded.original_size)
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
        at_defaults = finish(outputs, model.spec, transform, DEFAULTS, decoded.pixels)
        matched, extra = boxes_right([(labels.index(c), tuple(map(float, b))) for c, b in boxes], at_defaults)
        right += sum(matched)
        unmatched += extra
        missed += [f"{name}:{c}" for (c, _), ok in zip(boxes, matched, strict=True) if not ok]
    result = evaluate(truth, predictions, labels, sizes)
    total = sum(len(b) for b in labelled.values())
    return Accuracy(result.map50, result.map50_95, result.per_class, right, total, unmatched, missed)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--models", default="nanodet,nanodet_int8,centernet")
    parser.add_argument("--gateway", action="store_true", help="also time Detect through a private stack")
    parser.add_argument(
        "--labels", choices=sorted(LABELS), default="set", help="set: 36 boxes on 10 photos; twelve: 12 on 4"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    encoded = [sample(n).read_bytes() for n in IMAGES]
    names = args.models.split(",")
    models = {name: InProcess(project_root() / "model_repository" / name, "cpu") for name in names}

    def inputs(model: InProcess) -> list[np.ndarray]:
        # the photos as the model sees them, what the pipeline sends it
        decoded = [decode(data, model.limits, model.spec) for data in encoded]
        return [prepare(d.picture, model.spec, d.original_size)[0] for d in decoded]

    def model_only(model: InProcess) -> Callable[[int], object]:
        batches = inputs(model)
        return lambda i: model.session.run(None, {model.input: batches[i % len(batches)]})

    def pipeline(model: InProcess) -> Callable[[int], object]:
        return lambda i: model.detect(encoded[i % len(encoded)])

    def one_thread(name: str, model: InProcess) -> Callable[[int], object]:
        # onnxruntime with one intra-op thread runs the graph in the calling thread: its CPU time is the
        # model's cost whatever else the machine runs
        directory = project_root() / "model_repository" / name
        weights = model_parameters(read_config(directory / "config.pbtxt"))["WEIGHTS"]
        session = onnx_session(directory / "1" / weights, threads=1)
        batches = inputs(model)
        return lambda i: session.run(None, {model.input: batches[i % len(batches)]})

    alone = interleaved_p50_ms({n: model_only(m) for n, m in models.items()}, args.repeats)
    piped = interleaved_p50_ms({n: pipeline(m) for n, m in models.items()}, args.repeats)
    cpu = interleaved_p50_ms(
        {n: one_thread(n, m) for n, m in models.items()}, args.repeats, clock=time.thread_time
    )
    gateway = gateway_p50_ms(names, encoded, args.repeats) if args.gateway else {}
    rows = []
    labelled = LABELS[args.labels]
    total = sum(len(b) for b in labelled.values())
    for name, model in models.items():
        if gateway:
            print(f"{name}: Detect through the gateway p50 {gateway[name]:.1f} ms", flush=True)
        acc = accuracy(model, labelled)
        rows.append((name, alone[name], piped[name], cpu[name], acc))
        print(
            f"{name}: model {alone[name]:.1f} ms, pipeline {piped[name]:.1f} ms, model on one thread "
            f"{cpu[name]:.1f} ms CPU, mAP@0.5 {acc.map50:.3f}, mAP@[.5:.95] {acc.map50_95:.3f}, "
            f"boxes right at min score {DEFAULTS.min_score} {acc.right} of {acc.boxes}, "
            f"{acc.unmatched} detections matching no box; missed: {', '.join(acc.missed) or 'none'}",
            flush=True,
        )
    via = " Detect via gateway p50 ms |" if gateway else ""
    print(
        f"\n{len(labelled)} photos, {total} boxes ({args.labels}); boxes right at the service's defaults "
        f"(min score {DEFAULTS.min_score}, NMS IoU {DEFAULTS.iou_threshold}), IoU >= 0.5, same class"
    )
    print(
        "\n| model | model only p50 ms | in-process pipeline p50 ms | model, 1 thread, CPU p50 ms |"
        f"{via} mAP@0.5 | mAP@[.5:.95] | boxes right | detections matching no box | missed, by class |"
    )
    print("|---" * (9 + bool(gateway)) + "|")
    for name, alone_ms, piped_ms, cpu_ms, acc in rows:
        missed = Counter(m.split(":", 1)[1] for m in acc.missed)
        by_class = ", ".join(f"{c} {n}" for c, n in sorted(missed.items())) or "none"
        through = f" {gateway[name]:.1f} |" if gateway else ""
        print(
            f"| {name} | {alone_ms:.1f} | {piped_ms:.1f} | {cpu_ms:.1f} |{through} {acc.map50:.3f} "
            f"| {acc.map50_95:.3f} | {acc.right} of {acc.boxes} | {acc.unmatched} | {by_class} |"
        )
    print("\nper class AP@0.5:")
    for name, *_, acc in rows:
        print(f"  {name}: " + ", ".join(f"{c} {a:.2f}" for c, (a, _) in sorted(acc.per_class.items())))


if __name__ == "__main__":
    main()
