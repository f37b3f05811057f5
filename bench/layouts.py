"""Triton instance layouts of one served detector under load, against the in-process reference, same run.

For each layout (instances x onnxruntime threads, batch split) the imported NanoDet's ``config.pbtxt`` in the
private stack is rewritten and the model reloaded; then images/s at concurrency 8 and 1 for ``--path model``
(the network alone on a prepared tensor: in-process session vs Triton) or ``--path gateway`` (whole Detect
requests: in-process pipeline vs the gateway). Rounds alternate so drifts hit every row.

    .venv/bin/python bench/layouts.py [--seconds 15] [--rounds 4] [--path gateway|model]
        [--layouts 1x2:off,2x2:1,2x2:1:run]   (INSTANCESxTHREADS:BATCH_SPLIT[:SPINNING 0|1|run])
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _stack import private_stack  # noqa: E402
from detection import (  # noqa: E402
    IMAGES,
    SAME,
    InProcess,
    export_float_nanodet,
    import_detector,
    settings_environment,
)

from fovea.client import FoveaClient  # noqa: E402
from fovea.common.triton import TritonClient  # noqa: E402
from fovea.convert.samples import sample
from fovea.detection.pipeline import decode, prepare  # noqa: E402

NAME = "user_nanodet"


def per_second(fn: Callable[[int], object], concurrency: int, seconds: float) -> float:
    """Calls per second of ``fn(i)`` from ``concurrency`` threads for ``seconds``."""
    count = [0]
    stop = time.perf_counter() + seconds

    def work(k: int) -> None:
        i = k
        while time.perf_counter() < stop:
            fn(i)
            count[0] += 1
            i += 1

    threads = [threading.Thread(target=work, args=(k,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count[0] / seconds


def layout_config(base: str, instances: int, threads: int, split: str, spinning: str = "0") -> str:
    text = re.sub(r"count: \d+", f"count: {instances}", base)
    text = re.sub(r'\n  \{ key: "SPINNING".*', "", text)
    text = text.replace(
        "parameters [", f'parameters [\n  {{ key: "SPINNING", value: {{ string_value: "{spinning}" }} }},'
    )
    text = re.sub(
        r'key: "THREADS", value: \{ string_value: "\d+" \}',
        f'key: "THREADS", value: {{ string_value: "{threads}" }}',
        text,
    )
    return re.sub(
        r'key: "BATCH_SPLIT", value: \{ string_value: "[a-z0-9]+" \}',
        f'key: "BATCH_SPLIT", value: {{ string_value: "{split}" }}',
        text,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--path", choices=("gateway", "model"), default="gateway")
    parser.add_argument(
        "--layouts", default="1x2:off,2x2:1", help="INSTANCESxTHREADS:BATCH_SPLIT[:SPINNING], comma-separated"
    )
    args = parser.parse_args()
    layouts = []
    for item in args.layouts.split(","):
        shape, split, *spin = item.split(":")
        instances, threads = (int(v) for v in shape.split("x"))
        layouts.append((instances, threads, split, spin[0] if spin else "0"))
    encoded = [sample(n).read_bytes() for n in IMAGES]
    with private_stack() as (settings, key), tempfile.TemporaryDirectory() as tmp:
        env = settings_environment(settings)
        import_detector(env, export_float_nanodet(Path(tmp) / "user-nanodet.onnx"), NAME)
        model_dir = settings.user_models / NAME
        local = InProcess(model_dir, "cpu")
        spec = local.spec
        tensors = []
        for data in encoded:
            decoded = decode(data, local.limits, spec)
            tensors.append(prepare(decoded.picture, spec, decoded.original_size)[0])
        token = settings.internal_token_file.read_bytes().strip()
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()

        async def connect() -> TritonClient:
            return TritonClient(settings.triton_grpc_url, token=token, timeout_s=120)

        triton = asyncio.run_coroutine_threadsafe(connect(), loop).result()
        client = FoveaClient(f"{settings.host}:{settings.gateway_port}", key, timeout_s=120)
        platform: Callable[[int], object]
        reference: Callable[[int], object]
        if args.path == "gateway":
            platform = lambda i: client.detect(encoded[i % 5], model=NAME, **SAME)  # noqa: E731
            reference = lambda i: local.detect(encoded[i % 5])  # noqa: E731
        else:
            platform = lambda i: asyncio.run_coroutine_threadsafe(  # noqa: E731
                triton.infer(NAME, {spec.input_name: tensors[i % 5]}, spec.output_names), loop
            ).result()
            reference = lambda i: local.session.run(None, {local.input: tensors[i % 5]})  # noqa: E731
        base = (model_dir / "config.pbtxt").read_text()
        print(f"{args.path}: images/s at concurrency 8 and 1, {args.seconds:g} s each")
        for _ in range(args.rounds):
            print(
                f"  in-process reference: {per_second(reference, 8, args.seconds):6.1f} "
                f"{per_second(reference, 1, args.seconds / 2):6.1f}",
                flush=True,
            )
            for instances, threads, split, spinning in layouts:
                config = layout_config(base, instances, threads, split, spinning)
                (model_dir / "config.pbtxt").write_text(config)
                subprocess.run(
                    [sys.executable, "-m", "fovea", "models", "load", NAME],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                for i in range(4):
                    platform(i)
                print(
                    f"  {instances} x {threads} threads, split {split:>3}, spinning {spinning:>3}: {per_second(platform, 8, args.seconds):6.1f} "
                    f"{per_second(platform, 1, args.seconds / 2):6.1f}",
                    flush=True,
                )
        (model_dir / "config.pbtxt").write_text(base)
        asyncio.run_coroutine_threadsafe(triton.close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        client.close()


if __name__ == "__main__":
    main()
