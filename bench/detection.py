"""Detection benchmark: the NanoDet model in-process (torch) vs Triton directly vs the full gateway path,
at concurrency 1 and 16 on the same images in the same run; then our NMS vs torchvision's (when it can be
installed) and vs the plain reference, at 1k and 10k boxes, CPU (and CUDA when present).

    .venv/bin/python bench/detection.py [--requests 64] [--skip-stack]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import tritonclient.grpc as triton_grpc

sys.path.insert(0, str(Path(__file__).parent))

from _stack import private_stack  # noqa: E402
from _timing import HEADER, Figures, measure  # noqa: E402

from fovea.client import FoveaClient  # noqa: E402
from fovea.common.images import ImageLimits, decode_image  # noqa: E402
from fovea.detection.core.nms import batched_nms, reference_batched_nms  # noqa: E402
from fovea.detection.core.spec import load_spec  # noqa: E402
from fovea.detection.pipeline import prepare  # noqa: E402
from fovea.models.nanodet import load_nanodet  # noqa: E402
from fovea.models.samples import sample  # noqa: E402
from fovea.stack.config import REPO_ROOT  # noqa: E402

IMAGES = ("dog", "person", "horses", "kite", "giraffe")


def model_rows(requests: int) -> list[Figures]:
    spec = load_spec(REPO_ROOT / "model_repository/nanodet/fovea.json")
    encoded = [sample(n).read_bytes() for n in IMAGES]
    inputs = [prepare(decode_image(b, ImageLimits()), spec)[0] for b in encoded]
    model = load_nanodet(REPO_ROOT / "model_repository/nanodet/1/nanodet.pt").eval()

    def in_process(i: int) -> object:
        with torch.inference_mode():
            return model(torch.from_numpy(inputs[i % len(inputs)]))

    rows = []
    with private_stack() as (settings, key):
        triton = triton_grpc.InferenceServerClient(settings.triton_grpc_url)

        def direct(i: int) -> object:
            x = triton_grpc.InferInput("INPUT", list(inputs[0].shape), "FP32")
            x.set_data_from_numpy(inputs[i % len(inputs)])
            return triton.infer(
                "nanodet", [x], outputs=[triton_grpc.InferRequestedOutput(n) for n in spec.output_names]
            )

        client = FoveaClient(f"{settings.host}:{settings.gateway_port}", key)

        def gateway(i: int) -> object:
            return client.detect(encoded[i % len(encoded)])

        for concurrency in (1, 16):
            a = measure("a: torch in-process (model only)", in_process, requests, concurrency)
            b = measure("b: Triton direct (model only)", direct, requests, concurrency)
            c = measure("c: gateway Detect (decode+letterbox+Triton+NMS)", gateway, requests, concurrency)
            rows += [a, b, c]
            print(
                f"concurrency {concurrency}: c/a latency p50 {c.p50_ms / a.p50_ms:.2f}, c/b {c.p50_ms / b.p50_ms:.2f}; "
                f"throughput c/a {c.per_s / a.per_s:.2f}, c/b {c.per_s / b.per_s:.2f}",
                flush=True,
            )
        client.close()
    return rows


def random_boxes(
    n: int, classes: int, device: str, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 600
    wh = torch.rand(n, 2, generator=g) * 120 + 4
    boxes = torch.cat([xy, xy + wh], dim=1)
    return (
        boxes.to(device),
        torch.rand(n, generator=g).to(device),
        torch.randint(0, classes, (n,), generator=g).to(device),
    )


def time_it(
    fn: Callable[..., torch.Tensor], args: tuple[torch.Tensor, ...], repeat: int
) -> tuple[float, set[int]]:
    """Mean milliseconds per call and the kept indices."""
    keep = fn(*args, 0.5)
    if keep.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        fn(*args, 0.5)
    if keep.is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeat * 1e3, set(keep.tolist())


def nms_rows() -> list[str]:
    try:
        from torchvision.ops import batched_nms as tv_batched_nms
    except Exception as exc:  # noqa: BLE001 - not installable beside this torch build
        tv_batched_nms = None
        print(f"torchvision unavailable here ({type(exc).__name__}): comparing with the plain reference only")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = [
        "| boxes | device | ours ms | torchvision ms | reference ms | same keep |",
        "|---|---|---|---|---|---|",
    ]
    for n in (1000, 10000):
        for device in devices:
            args = random_boxes(n, 80, device)
            ours, keep = time_it(batched_nms, args, 5)
            tv = ref = "-"
            agree = []
            if tv_batched_nms is not None:
                tv_ms, tv_keep = time_it(tv_batched_nms, args, 5)
                tv, agree = f"{tv_ms:.2f}", [*agree, tv_keep == keep]
            if n <= 1000 and device == "cpu":
                ref_ms, ref_keep = time_it(reference_batched_nms, args, 1)
                ref, agree = f"{ref_ms:.1f}", [*agree, ref_keep == keep]
            rows.append(f"| {n} | {device} | {ours:.2f} | {tv} | {ref} | {all(agree) if agree else '-'} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--skip-stack", action="store_true", help="NMS figures only")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cuda={torch.cuda.is_available()}")
    if not args.skip_stack:
        rows = model_rows(args.requests)
        print(HEADER)
        for row in rows:
            print(row.row())
    print()
    for line in nms_rows():
        print(line)
    np.set_printoptions()


if __name__ == "__main__":
    main()
