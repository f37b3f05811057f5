"""Detection benchmark: the platform against the fastest in-process pipeline of the same model, same run.

For the default detector (NanoDet) and for an imported ONNX detector (the NanoDet network exported to a
plain float32 NCHW ONNX file, as a user's export would be, brought in with `fovea models import-onnx`):

- reference: what a user's own script does, in this process: decode the JPEG, letterbox, the same ONNX file
  in onnxruntime, decode the head, class-aware NMS, boxes back to the photo (the service's own functions);
- platform: the whole request through the gateway (gateway -> detection service -> Triton -> back),

at concurrency 1 and 8 (and more with --concurrency), alternating the two so drifts hit both; then our NMS
against the textbook reference at 1k and 10k boxes.

And against what a user runs instead (issue 23): ``bench/_user.py``, the user's own script over the same
exported NanoDet in its own process with onnxruntime's defaults, one photo at a time; per round the script
and the imported, the default and the float detector through the gateway take turns at concurrency 1 in
blocks of 8 requests (``_timing.take_turns``: all sides see the same minutes of a drifting machine), then
each detector runs at concurrency 8; the ratios are the medians over ``--user-rounds`` rounds: gateway p50
at concurrency 1 / the script's p50, and gateway throughput at concurrency 8 / the script's sequential rate
(its requests / the sum of their times).

    .venv/bin/python bench/detection.py [--requests 64] [--concurrency 1,8] [--device cpu|cuda] [--skip-stack]
        [--user-rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from _stack import private_stack  # noqa: E402
from _timing import (  # noqa: E402
    HEADER,
    WARMUP,
    Figures,
    ServedScript,
    measure,
    per_s,
    take_turns,
    timed_block,
    versus,
)

from fovea.client import FoveaClient  # noqa: E402
from fovea.common.detectors.nms import batched_nms, reference_batched_nms
from fovea.common.images import ImageLimits  # noqa: E402
from fovea.common.paths import project_root  # noqa: E402
from fovea.common.triton import TritonClient  # noqa: E402
from fovea.contracts.detector import SPEC_FILENAME, DetectorSpec, load_spec
from fovea.contracts.tensors import model_parameters
from fovea.convert.samples import sample
from fovea.detection.pipeline import Options, decode, finish, prepare  # noqa: E402
from fovea.ports.nanodet import PORT_FILENAME
from fovea.serving.base import choose_providers, honoured, onnx_session, read_config, torch_instead
from fovea.serving.nanodet import TorchCandidates  # noqa: E402
from fovea.stack.config import StackSettings  # noqa: E402

IMAGES = ("dog", "person", "horses", "kite", "giraffe")
OPTIONS = Options(min_score=0.3, iou_threshold=0.6, max_detections=100, class_filter=None, annotate=False)
SAME = {"min_score": OPTIONS.min_score, "iou_threshold": OPTIONS.iou_threshold, "max_detections": 100}
"""The platform's requests ask for what the in-process pipeline does (the service's defaults differ)."""


class InProcess:
    """A user's own script over a model directory: onnxruntime on its ONNX file, the service's pre/post.

    ``device`` cuda where this onnxruntime has no CUDA provider (the ``bench/gpu`` host): NanoDet's torch port
    on the GPU (what the served model runs there, the fastest way in one process); a model without a port
    (an import) runs onnxruntime on the CPU, as it does in Triton there."""

    def __init__(self, model_dir: Path, device: str) -> None:
        import onnxruntime as ort

        self.spec = load_spec(model_dir / SPEC_FILENAME)
        params = model_parameters(read_config(model_dir / "config.pbtxt"))
        port = model_dir / "1" / PORT_FILENAME
        torch_device = torch_instead(device, "CPU", 0) if device == "cuda" and port.exists() else None
        self.limits = ImageLimits()
        self.torch = TorchCandidates(port, torch_device) if torch_device else None
        if self.torch is not None:  # the ONNX file need not be there (bench/README.md, "GPU": what to carry)
            return
        providers = choose_providers("CPU", 0, honoured(device), ort.get_available_providers())
        self.session = onnx_session(model_dir / "1" / params["WEIGHTS"], providers)
        self.input = self.session.get_inputs()[0].name
        self.onnx_outputs = [o.name for o in self.session.get_outputs()]

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The network alone on a prepared batch."""
        if self.torch is not None:
            return self.torch.run({"INPUT": x})
        return dict(zip(self.onnx_outputs, self.session.run(None, {self.input: x}), strict=True))

    def detect(self, data: bytes) -> list[int]:
        decoded = decode(data, self.limits, self.spec)
        x, transform = prepare(decoded.picture, self.spec, decoded.original_size)
        return finish(self.run(x), self.spec, transform, OPTIONS, decoded.pixels).class_ids


def export_float_nanodet(path: Path) -> Path:
    """The NanoDet network as a user's export would be: float32 NCHW normalised input, six outputs."""
    import onnx

    from fovea.convert.nanodet import default_artifact_path, export_core_onnx
    from fovea.ports.nanodet import load_nanodet

    # the port `fovea models build` copied into the repository (all a GPU host without the build cache has)
    port = project_root() / "model_repository/nanodet/1" / PORT_FILENAME
    model = export_core_onnx(load_nanodet(port if port.exists() else default_artifact_path()))
    outputs = list(
        model.graph.output
    )  # cls 8/16/32, dist 8/16/32 -> per level (cls, dist), as exports list them
    del model.graph.output[:]
    model.graph.output.extend([outputs[i] for i in (0, 3, 1, 4, 2, 5)])
    onnx.save(model, str(path))
    return path


def nanodet_spec() -> DetectorSpec:
    """The served NanoDet's spec: COCO's labels, the normalisation the exported NanoDet was trained with."""
    return load_spec(project_root() / "model_repository/nanodet" / SPEC_FILENAME)


def nanodet_flags(spec: DetectorSpec) -> list[str]:
    """``import-onnx`` flags of the exported NanoDet: its family and the normalisation it was trained with."""
    mean, std = ",".join(map(str, spec.mean)), ",".join(map(str, spec.std))
    return ["--family", "nanodet", "--bgr", "--mean", mean, "--std", std, "--scale", "1"]


def import_detector(
    settings_env: dict[str, str],
    onnx: Path,
    name: str,
    extra: Sequence[str] = (),
    repository: Path | None = None,
    flags: Sequence[str] | None = None,
) -> None:
    """``fovea models import-onnx`` the file with COCO's labels and ``flags`` (default: the exported
    NanoDet's, :func:`nanodet_flags`) into ``repository``, else the stack's, and loaded there."""
    spec = nanodet_spec()
    fovea = [sys.executable, "-m", "fovea", "models"]
    with tempfile.TemporaryDirectory() as tmp:  # nothing written beside the ONNX file (it may be the user's)
        labels = Path(tmp) / "coco.txt"
        labels.write_text("\n".join(spec.labels) + "\n")
        args = ["--name", name, "--labels", str(labels), *(nanodet_flags(spec) if flags is None else flags)]
        if repository is not None:
            args += ["--repository", str(repository)]
        subprocess.run([*fovea, "import-onnx", str(onnx), *args, *extra], check=True, env=settings_env)
    if repository is None:
        subprocess.run([*fovea, "load", name], check=True, env=settings_env)


def user_script(onnx: Path, script: str = "_user.py") -> ServedScript:
    """``bench/<script> --serve`` on the exported file, in its own process (its first line: the classes)."""
    command = [sys.executable, str(Path(__file__).parent / script), str(onnx)]
    command += [str(sample(n)) for n in IMAGES]
    command += ["--min-score", str(OPTIONS.min_score), "--iou", str(OPTIONS.iou_threshold), "--serve"]
    return ServedScript(command)


USER_MODELS = {
    "imported ONNX (user_nanodet)": "user_nanodet",
    "nanodet_int8 (default)": "nanodet_int8",
    "nanodet (float)": "nanodet",
}
"""What takes turns with the user's NanoDet script: the same network imported, and the served detectors."""


def against_user(
    client: FoveaClient,
    script: ServedScript,
    requests: int,
    rounds: int,
    block: int = 8,
    models: dict[str, str] = USER_MODELS,
    what: str = "bench/_user.py",
) -> tuple[list[Figures], list[str]]:
    """Per round: the user's ``script`` (``what``) and each detector through the gateway take turns at
    concurrency 1 (``take_turns``, blocks of ``block``), then each detector at concurrency 8. The first of
    ``models`` is the script's own network imported: both must find the same classes."""
    encoded = [sample(n).read_bytes() for n in IMAGES]
    same_model = next(iter(models.values()))
    served = [[d.class_id for d in client.detect(b, model=same_model, **SAME).detections] for b in encoded]
    same = [sorted(a) for a in served] == [sorted(b) for b in script.ready["classes"]]
    print(f"user's script and the imported detector through the gateway find the same: {same}")

    def caller(model: str) -> Callable[[int], object]:
        return lambda i: client.detect(encoded[i % 5], model=model, **SAME)

    sides = {"script": script.block, **{name: timed_block(caller(model)) for name, model in models.items()}}
    take_turns(sides, WARMUP, WARMUP)
    latency: dict[str, list[float]] = {m: [] for m in models}
    throughput: dict[str, list[float]] = {m: [] for m in models}
    rows: list[Figures] = []
    user_p50: list[float] = []
    for k in range(rounds):
        turns = take_turns(sides, requests, block)
        theirs = turns["script"]
        p50, rate = statistics.median(theirs), per_s(theirs)
        user_p50.append(p50)
        print(f"round {k + 1}: user's script p50 {p50:.1f} ms, {rate:.1f} images/s", flush=True)
        for name, model in models.items():
            one = statistics.median(turns[name])
            eight = measure(f"{name}: gateway", caller(model), requests, 8)
            rows.append(eight)
            print(
                f"| {name}: gateway | 1 | {requests} | - | {one:.1f} | - |", eight.row(), sep="\n", flush=True
            )
            latency[name].append(one / p50)
            throughput[name].append(eight.per_s / rate)
    script.close()
    lines = [
        f"user's script ({what}, own process, onnxruntime defaults): p50 {statistics.median(user_p50):.1f} ms"
    ]
    for name in models:
        lat, thr = latency[name], throughput[name]
        lines.append(
            f"{name} against the user's script: p50 gateway c1 / script {statistics.median(lat):.2f} "
            f"(rounds {min(lat):.2f}-{max(lat):.2f}); gateway c8 throughput / script's sequential rate "
            f"{statistics.median(thr):.2f} ({min(thr):.2f}-{max(thr):.2f}); medians of {rounds} rounds"
        )
    for line in lines:
        print(line, flush=True)
    return rows, lines


def model_rows(
    requests: int, concurrencies: list[int], device: str, rounds: int = 2, user_rounds: int = 3
) -> tuple[list[Figures], list[str]]:
    encoded = [sample(n).read_bytes() for n in IMAGES]
    rows: list[Figures] = []
    lines: list[str] = []
    with private_stack() as (settings, key), tempfile.TemporaryDirectory() as tmp:
        client = FoveaClient(f"{settings.host}:{settings.gateway_port}", key, timeout_s=120)
        default = InProcess(project_root() / "model_repository/nanodet", device)
        r, line = versus(
            "nanodet (default)",
            lambda i: default.detect(encoded[i % 5]),
            lambda i: client.detect(encoded[i % 5], **SAME),
            requests,
            concurrencies,
            rounds,
        )
        rows += r
        lines += line
        r, line = network_alone(settings, default, encoded, requests, concurrencies, rounds)
        rows += r
        lines += line
        low = measure(
            "gateway, min score 0.001", lambda i: client.detect(encoded[i % 5], min_score=0.001), requests, 1
        )
        high = measure(
            "gateway, min score 0.3", lambda i: client.detect(encoded[i % 5], min_score=0.3), requests, 1
        )
        rows += [low, high]
        lines.append(f"min score 0.001 / 0.3 through the gateway: p50 {low.p50_ms / high.p50_ms:.2f}")
        print(lines[-1], flush=True)

        env = settings_environment(settings)
        import_detector(env, export_float_nanodet(Path(tmp) / "user-nanodet.onnx"), "user_nanodet")
        if user_rounds:
            r, line = against_user(
                client, user_script(Path(tmp) / "user-nanodet.onnx"), requests, user_rounds
            )
            rows += r
            lines += line
        imported = InProcess(settings.user_models / "user_nanodet", device)
        # The user's graph as import-onnx --raw-outputs serves it (the decoder in torch, in this process):
        # slower than the graph that decodes its own boxes, so that one is the reference below.
        raw_dir = Path(tmp) / "raw"
        import_detector(env, Path(tmp) / "user-nanodet.onnx", "user_nanodet_raw", ["--raw-outputs"], raw_dir)
        raw = InProcess(raw_dir / "user_nanodet_raw", device)
        rows.append(
            measure(
                "imported ONNX, raw outputs decoded in torch: in-process",
                lambda i: raw.detect(encoded[i % 5]),
                requests,
                1,
            )
        )
        check = [imported.detect(b) for b in encoded]
        served = [
            [d.class_id for d in client.detect(b, model="user_nanodet", **SAME).detections] for b in encoded
        ]
        print(f"imported detector: same classes in-process and through the gateway: {check == served}")
        r, line = versus(
            "imported ONNX (user_nanodet)",
            lambda i: imported.detect(encoded[i % 5]),
            lambda i: client.detect(encoded[i % 5], model="user_nanodet", **SAME),
            requests,
            concurrencies,
            rounds,
        )
        rows += r
        lines += line
        client.close()
    return rows, lines


def network_alone(
    settings: StackSettings,
    local: InProcess,
    encoded: list[bytes],
    requests: int,
    concurrencies: Sequence[int],
    rounds: int,
) -> tuple[list[Figures], list[str]]:
    """The default detector's network alone on letterboxed images: Triton's (gRPC + shared memory + python
    stub, dynamic batching) against the same network in this process, one image a call."""
    tensors = []
    for data in encoded:
        decoded = decode(data, local.limits, local.spec)
        tensors.append(prepare(decoded.picture, local.spec, decoded.original_size)[0])
    token_file = settings.internal_token_file
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    async def connect() -> TritonClient:
        token = token_file.read_bytes().strip() if token_file is not None else None
        return TritonClient(settings.triton_grpc_url, token=token, timeout_s=120)

    triton = asyncio.run_coroutine_threadsafe(connect(), loop).result()
    spec = local.spec
    try:
        return versus(
            "nanodet network alone (Triton)",
            lambda i: local.run(tensors[i % 5]),
            lambda i: asyncio.run_coroutine_threadsafe(
                triton.infer(spec.name, {spec.input_name: tensors[i % 5]}, spec.output_names), loop
            ).result(),
            requests,
            concurrencies,
            rounds,
        )
    finally:
        asyncio.run_coroutine_threadsafe(triton.close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)


def settings_environment(settings: object) -> dict[str, str]:
    """Environment for `fovea models ...` commands against the private stack."""
    import os

    env = dict(os.environ)
    for field in ("data_dir", "triton_grpc_port", "triton_http_port", "gateway_port", "host"):
        env[f"FOVEA_{field.upper()}"] = str(getattr(settings, field))
    return env


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


def nms_rows(device: str) -> list[str]:
    rows = ["| boxes | device | ours ms | reference ms | same keep |", "|---|---|---|---|---|"]
    for n in (1000, 10000):
        args = random_boxes(n, 80, device)
        ours, keep = time_it(batched_nms, args, 5)
        ref, agree = "-", "-"
        if n <= 1000 and device == "cpu":
            ref_ms, ref_keep = time_it(reference_batched_nms, args, 1)
            ref, agree = f"{ref_ms:.1f}", str(ref_keep == keep)
        rows.append(f"| {n} | {device} | {ours:.2f} | {ref} | {agree} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per row (the best is kept)")
    parser.add_argument("--concurrency", default="1,8", help="comma-separated concurrencies")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--skip-stack", action="store_true", help="NMS figures only")
    parser.add_argument("--user-rounds", type=int, default=3, help="rounds against bench/_user.py (0: none)")
    args = parser.parse_args()
    import onnxruntime as ort

    torch.set_num_threads(1)  # head decoding + NMS: as the detection service runs them (fastest here too)
    print(
        f"torch {torch.__version__}, onnxruntime {ort.__version__} {ort.get_available_providers()}, device {args.device}"
    )
    if not args.skip_stack:
        rows, lines = model_rows(
            args.requests,
            [int(c) for c in args.concurrency.split(",")],
            args.device,
            args.rounds,
            args.user_rounds,
        )
        print(HEADER)
        for row in rows:
            print(row.row())
        print()
        for line in lines:
            print(line)
    print()
    for line in nms_rows(args.device):
        print(line)
    np.set_printoptions()


if __name__ == "__main__":
    main()
