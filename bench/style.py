"""Style benchmark, same images, same run:
- Gatys iterations/s through the job path (gateway -> style service -> Celery worker -> Triton, streamed
  progress) vs the same optimisation in-process (torch, same VGG16 weights, same parameters);
- feed-forward images/s at 512 px through Triton (style_fast) vs onnxruntime in-process, at each concurrency.

    .venv/bin/python bench/style.py [--iterations 20] [--side 128] [--images 8] [--concurrency 1,8] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from _stack import private_stack  # noqa: E402
from _timing import measure  # noqa: E402

from fovea.client import FoveaClient  # noqa: E402
from fovea.client import GatysParams as JobParams  # noqa: E402
from fovea.common.images import ImageLimits, decode_image  # noqa: E402
from fovea.common.paths import project_root  # noqa: E402
from fovea.common.triton import SyncTritonClient  # noqa: E402
from fovea.contracts.styles import GatysParams
from fovea.convert.samples import sample
from fovea.ports.gatys import array_to_tensor, run_gatys
from fovea.ports.vgg16_hed import load_vgg16
from fovea.serving.style_fast import MultiStyleRunner
from fovea.style.core.images import fit_array


def gatys_in_process(
    content: np.ndarray, style: np.ndarray, params: GatysParams, device: str = "cpu"
) -> float:
    vgg = load_vgg16(project_root() / "model_repository/style_gatys/1/vgg16_hed.pt").to(device).eval()
    for p in vgg.parameters():
        p.requires_grad_(False)
    start = time.perf_counter()
    run_gatys(vgg, array_to_tensor(content).to(device), array_to_tensor(style).to(device), params)
    return params.iterations / (time.perf_counter() - start)


def gatys_job(client: FoveaClient, content: bytes, style: bytes, params: GatysParams) -> float:
    request = JobParams(iterations=params.iterations, max_side=params.max_side, optimizer=params.optimizer)
    start = time.perf_counter()
    job = client.submit_style(content, style_image=style, gatys=request)
    first = None
    final = job
    for update in client.watch_job(job.job_id, timeout_s=3600):
        if first is None and update.state == "RUNNING":
            first = time.perf_counter()
        final = update
    end = time.perf_counter()
    if final.state != "SUCCEEDED":
        raise RuntimeError(f"job ended {final.state}: {final.error}")
    print(f"  job: submit -> running {((first or end) - start):.2f}s, submit -> done {end - start:.2f}s")
    return params.iterations / (end - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--side", type=int, default=128)
    parser.add_argument("--images", type=int, default=8, help="feed-forward images per path and concurrency")
    parser.add_argument("--concurrency", default="1,8", help="feed-forward: comma-separated concurrencies")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="in-process Gatys device")
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cuda={torch.cuda.is_available()}")
    content_bytes, style_bytes = sample("dog").read_bytes(), sample("scream").read_bytes()
    content = fit_array(decode_image(content_bytes, ImageLimits()), args.side)
    style_img = fit_array(decode_image(style_bytes, ImageLimits()), args.side)
    big = fit_array(decode_image(content_bytes, ImageLimits()), 512)
    size = f"{big.shape[1]}x{big.shape[0]}"

    rows = ["| what | path | figure |", "|---|---|---|"]
    onnx = MultiStyleRunner(project_root() / "model_repository/style_fast/1/multistyle26.onnx")
    x = big.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    for concurrency in concurrencies:
        fig = measure("in-process", lambda i: onnx.stylize(x, i % 26), args.images, concurrency, warmup=1)
        rows.append(
            f"| feed-forward {size}, concurrency {concurrency} | onnxruntime in-process | {fig.per_s:.2f} images/s |"
        )

    with private_stack() as (settings, key):
        triton = SyncTritonClient(
            settings.triton_grpc_url, token=settings.internal_token_file.read_bytes().strip()
        )
        index = np.array([[3]], np.int32)
        triton.infer("style_fast", {"IMAGE": big[None], "STYLE_INDEX": index}, ["IMAGE"])

        def served(i: int) -> object:
            index = np.array([[i % 26]], np.int32)
            return triton.infer("style_fast", {"IMAGE": big[None], "STYLE_INDEX": index}, ["IMAGE"])

        for concurrency in concurrencies:
            fig = measure("Triton", served, args.images, concurrency, warmup=1)
            rows.append(
                f"| feed-forward {size}, concurrency {concurrency} | Triton style_fast | {fig.per_s:.2f} images/s |"
            )
        small = f"{content.shape[1]}x{content.shape[0]}"
        with FoveaClient(f"{settings.host}:{settings.gateway_port}", key) as client:
            for optimizer in ("adam", "lbfgs"):
                params = GatysParams(iterations=args.iterations, max_side=args.side, optimizer=optimizer)
                job_rate = gatys_job(client, content_bytes, style_bytes, params)
                local = gatys_in_process(content, style_img, params, args.device)
                rows.append(
                    f"| Gatys {optimizer} {small} | job path (gateway, Celery, Triton) | {job_rate:.2f} iterations/s |"
                )
                rows.append(f"| Gatys {optimizer} {small} | torch in-process | {local:.2f} iterations/s |")
                print(f"  {optimizer}: job path / in-process = {job_rate / local:.2f}")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
