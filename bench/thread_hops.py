"""What a lone request's thread hops cost: the faces service's Verify path (``FacePipeline.find_faces`` then
``embed``) and the detection service's ``Detect`` (``DetectionServicer._detect``, the default detector), run in
this process against a private stack's Triton (over HTTP, as the services call it), their CPU steps handed to a
worker thread as the services do (``asyncio.to_thread``) or run on the event loop, taking turns call by call
after a 20 ms pause (a lone request's processes sleep between its steps).

    .venv/bin/python bench/thread_hops.py [--requests 80]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _stack import private_stack  # noqa: E402

from fovea.common.paths import project_root  # noqa: E402
from fovea.common.triton import TritonClient  # noqa: E402
from fovea.common.v1 import common_pb2  # noqa: E402
from fovea.convert.samples import sample  # noqa: E402
from fovea.detection.config import DetectionSettings  # noqa: E402
from fovea.detection.registry import DetectorRegistry  # noqa: E402
from fovea.detection.servicer import DetectionServicer  # noqa: E402
from fovea.detection.v1 import detection_pb2  # noqa: E402
from fovea.faces.config import FacesSettings  # noqa: E402
from fovea.faces.recognition.pipeline import FacePipeline, FacesTriton  # noqa: E402

THREAD = asyncio.to_thread


async def on_the_loop(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


async def compare(label: str, fn: Callable[[int], Awaitable[object]], requests: int) -> None:
    times: dict[str, list[float]] = {"worker thread": [], "event loop": []}
    for i in range(5):
        await fn(i)
    try:
        for i in range(requests):
            for way in ("worker thread", "event loop") if i % 2 else ("event loop", "worker thread"):
                asyncio.to_thread = THREAD if way == "worker thread" else on_the_loop  # type: ignore[assignment]
                await asyncio.sleep(0.02)
                start = time.perf_counter()
                await fn(i)
                times[way].append((time.perf_counter() - start) * 1000)
    finally:
        asyncio.to_thread = THREAD
    for way, values in times.items():
        q = statistics.quantiles(values, n=4)
        print(f"  {label:28s} {way:14s} p50 {q[1]:6.2f}  p25 {q[0]:6.2f}  p75 {q[2]:6.2f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=80)
    args = parser.parse_args()
    probes = [
        sample(n).read_bytes()
        for n in ("obama2", "obama3", "obama_partial_face", "obama_partial_face2", "biden")
    ]
    photos = [sample(n).read_bytes() for n in ("dog", "person", "horses", "kite", "giraffe")]
    with private_stack() as (stack, _key):
        token = stack.internal_token_file.read_bytes().strip()
        urls = {"triton_url": stack.triton_grpc_url, "triton_http_url": stack.triton_http_url}

        async def run() -> None:
            faces = FacesTriton(stack.triton_grpc_url, token=token, http_url=stack.triton_http_url)
            pipeline = FacePipeline(FacesSettings(**urls, redis_url="redis://127.0.0.1:6379/0"), faces)
            if not await pipeline.ready():
                raise SystemExit("the face models are not ready in Triton")
            triton = TritonClient(stack.triton_grpc_url, token=token, http_url=stack.triton_http_url)
            settings = DetectionSettings(**urls)
            registry = DetectorRegistry([project_root() / "model_repository"], settings.default_model)
            detection = DetectionServicer(settings, registry, triton)

            async def verify(i: int) -> None:
                photo = await pipeline.find_faces(probes[i % 5])
                await pipeline.embed([photo.source(photo.faces.take([0]))])

            async def detect(i: int) -> None:
                image = common_pb2.Image(data=photos[i % 5])
                await detection._detect(detection_pb2.DetectRequest(image=image, min_score=0.3))

            print(f"{args.requests} requests each way, taking turns, 20 ms pauses")
            await compare("verify (faces pipeline)", verify, args.requests)
            await compare(f"detect ({settings.default_model})", detect, args.requests)
            await faces.close()
            await triton.close()

        asyncio.run(run())


if __name__ == "__main__":
    main()
