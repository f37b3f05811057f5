"""Classification benchmark: the platform against the fastest in-process pipeline of the same model, same run.

- reference: what a user's own script does, in this process: decode the photo (the service's reduced JPEG
  decode), the centre crop, ``model_repository/classifier_imagenet/1/model.onnx`` in onnxruntime (only
  PROBABILITIES fetched), top-5 (``fovea.classify.pipeline.prepare`` / ``finish``, the service's own code);
- platform: the whole Classify request through the gateway (gateway -> classify service -> Triton -> back),

at concurrency 1 and 8 (and more with --concurrency), alternating the two so drifts hit both; then Explain
(Grad-CAM, no PNG) the same way at concurrency 1: PROBABILITIES and FEATURE_MAP from the same file, the
service's ``prepare_explain`` / ``finish_explain``. With ``--train DIR`` (``DIR/<class>/*.jpg``, at most
``--train-images`` photos, 200 by default), also the wall time of one transfer-learning job through the
gateway (TrainClassifier until SUCCEEDED; the trained classifier is deleted afterwards).

    .venv/bin/python bench/classify.py [--requests 64] [--concurrency 1,8] [--device cpu|cuda] [--train DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import skimage.data
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from _stack import private_stack  # noqa: E402
from _timing import HEADER, Figures, versus  # noqa: E402

from fovea.classify.pipeline import (  # noqa: E402
    Classifier,
    finish,
    finish_explain,
    load_classifiers,
    load_head,
    prepare,
    prepare_explain,
)
from fovea.client import FoveaClient  # noqa: E402
from fovea.common.images import ImageLimits  # noqa: E402
from fovea.common.paths import project_root  # noqa: E402
from fovea.contracts.classifier import FEATURE_MAP_OUTPUT
from fovea.contracts.tensors import model_parameters
from fovea.convert.samples import sample
from fovea.serving.base import choose_providers, honoured, onnx_session, read_config

MODEL = "classifier_imagenet"
TOP_K = 5


def photos() -> list[bytes]:
    """Five JPEGs: darknet's dog, horses, giraffe (as shipped) and scikit-image's coffee and chelsea."""
    import io

    def jpeg(array: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format="JPEG", quality=95)
        return buf.getvalue()

    return [sample(n).read_bytes() for n in ("dog", "horses", "giraffe")] + [
        jpeg(skimage.data.coffee()),
        jpeg(skimage.data.chelsea()),
    ]


class InProcess:
    """A user's own script: onnxruntime on the served ONNX file, the classify service's pre/post code."""

    def __init__(self, device: str) -> None:
        import onnxruntime as ort

        model_dir = project_root() / "model_repository" / MODEL
        params = model_parameters(read_config(model_dir / "config.pbtxt"))
        providers = choose_providers("CPU", 0, honoured(device), ort.get_available_providers())
        self.session = onnx_session(model_dir / "1" / params["WEIGHTS"], providers)
        self.classifier: Classifier = load_classifiers(project_root() / "model_repository", [MODEL], MODEL)[
            MODEL
        ]
        self.head = load_head(project_root() / "model_repository", self.classifier)
        self.limits = ImageLimits()

    def classify(self, data: bytes) -> str:
        batch, _ = prepare(data, self.limits, self.classifier)
        (probabilities,) = self.session.run(
            [self.classifier.output_name], {self.classifier.input_name: batch}
        )
        return finish({self.classifier.output_name: probabilities}, self.classifier, TOP_K)[0].label

    def explain(self, data: bytes) -> str:
        batch, photo, size = prepare_explain(data, self.limits, self.classifier)
        names = [self.classifier.output_name, FEATURE_MAP_OUTPUT]
        outputs = dict(zip(names, self.session.run(names, {self.classifier.input_name: batch}), strict=True))
        return finish_explain(outputs, self.classifier, self.head, photo, size).explained.label


def labelled_folder(folder: Path, limit: int) -> list[tuple[str, bytes]]:
    """``(class, bytes)`` for up to ``limit`` photos of ``folder/<class>/*``, taken round-robin by class."""
    suffixes = {".jpg", ".jpeg", ".png", ".webp"}
    classes = {
        d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in suffixes)
        for d in sorted(folder.iterdir())
        if d.is_dir()
    }
    chosen: list[tuple[str, bytes]] = []
    for i in range(max((len(v) for v in classes.values()), default=0)):
        for label, paths in classes.items():
            if i < len(paths) and len(chosen) < limit:
                chosen.append((label, paths[i].read_bytes()))
    if not chosen:
        raise SystemExit(f"{folder} has no <class>/<photo> files")
    return chosen


def training_time(client: Any, folder: Path, limit: int) -> str:
    """One TrainClassifier job on ``limit`` photos of ``folder`` through the gateway, queued to SUCCEEDED."""
    images = labelled_folder(folder, limit)
    name = f"bench_{int(time.time())}"
    start = time.perf_counter()
    job = queued = client.train_classifier(name, images)
    for job in client.watch_training_job(queued.job_id):  # noqa: B007  (the last one seen is the result)
        if job.state in ("SUCCEEDED", "FAILED"):
            break
    seconds = time.perf_counter() - start
    if job.state == "SUCCEEDED":
        client.delete_classifier(name)
    accuracy = f", validation accuracy {job.validation_accuracy:.3f}" if job.state == "SUCCEEDED" else ""
    classes = len({label for label, _ in images})
    return (
        f"training through the gateway: {len(images)} images, {classes} classes: {job.state} in {seconds:.1f} s"
        f"{accuracy}{' (' + job.error + ')' if job.error else ''}"
    )


def run(args: argparse.Namespace) -> tuple[list[Figures], list[str]]:
    encoded = photos()
    n = len(encoded)
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    rows: list[Figures] = []
    lines: list[str] = []
    local = InProcess(args.device)
    with private_stack() as (settings, key):
        client = FoveaClient(f"{settings.host}:{settings.gateway_port}", key, timeout_s=120)
        same = [local.classify(b) for b in encoded] == [
            client.classify(b, top_k=TOP_K).classifications[0].label for b in encoded
        ]
        lines.append(f"same top-1 in-process and through the gateway: {same}")
        print(lines[-1], flush=True)
        r, line = versus(
            "Classify",
            lambda i: local.classify(encoded[i % n]),
            lambda i: client.classify(encoded[i % n], top_k=TOP_K),
            args.requests,
            concurrencies,
        )
        rows += r
        lines += line
        r, line = versus(
            "Explain (no PNG)",
            lambda i: local.explain(encoded[i % n]),
            lambda i: client.explain(encoded[i % n]),
            args.requests,
            [1],
        )
        rows += r
        lines += line
        if args.train is not None:
            lines.append(training_time(client, args.train, args.train_images))
            print(lines[-1], flush=True)
        client.close()
    return rows, lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--concurrency", default="1,8", help="comma-separated concurrencies")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument(
        "--train", type=Path, default=None, help="DIR/<class>/*.jpg: also time one training job"
    )
    parser.add_argument("--train-images", type=int, default=200, help="photos of --train used (round-robin)")
    args = parser.parse_args()
    import onnxruntime as ort

    print(f"onnxruntime {ort.__version__} {ort.get_available_providers()}, device {args.device}")
    rows, lines = run(args)
    print(HEADER)
    for row in rows:
        print(row.row())
    print()
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
