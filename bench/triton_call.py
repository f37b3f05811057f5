"""Where one Triton call's time goes, for the two face networks of a Verify and the default detector (issue
23).

Against a private stack, the same prepared tensor (the five probes' detector copies, their largest faces'
chips; the five detection photos resized to the detector's 416x416, 519 KB each), calls taking turns one by
one:

- ``in-process``: the served module (``model.py``'s code) in this process, no Triton;
- ``fovea``: ``fovea.common.triton.TritonClient`` over gRPC (aio, inputs through system shared memory), what
  the services called before;
- ``fovea http``: the same client given Triton's HTTP address (``fovea.common.triton_http``, inputs through
  shared memory), what the services call now; ``fovea http inline``: the same with the tensors in the HTTP
  request (``shared_memory=False``), what they called before;
- ``grpc.aio`` / ``http.aio``: a bare ``tritonclient`` aio call with the tensor in the request;
- ``grpc live`` / ``http live``: ``is_server_live``, a round trip that does no work.

Then Triton's own statistics for the ``fovea`` calls (``get_inference_statistics``): queue, input, the
python backend's execution (``compute_infer``: the stub's IPC and onnxruntime) and output, averaged, so that
what the client waits beyond them is the front end's and the round trip's. Each call follows a pause
(``--pause-ms``, default 20: a lone caller's idle machine) or none (back to back).

    .venv/bin/python bench/triton_call.py [--requests 60] [--pause-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as grpc_aio
import tritonclient.http as httpclient
import tritonclient.http.aio as http_aio
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from _stack import private_stack  # noqa: E402

from fovea.common.paths import project_root  # noqa: E402
from fovea.common.triton import TRITON_TOKEN_HEADER, TritonClient, triton_headers  # noqa: E402
from fovea.contracts.face_detector import DETECTOR_INPUT, DETECTOR_OUTPUTS  # noqa: E402
from fovea.contracts.face_embedder import EMBEDDER_INPUT, EMBEDDER_OUTPUT  # noqa: E402
from fovea.convert.samples import sample  # noqa: E402
from fovea.faces.recognition.pipeline import align_all, decode_for_faces  # noqa: E402
from fovea.faces.tools.inprocess import InProcessFaces, run_model  # noqa: E402
from fovea.serving.triton_adapter import load_from_repository  # noqa: E402

PROBES = ("obama2", "obama3", "obama_partial_face", "obama_partial_face2", "biden")
STAGES = ("queue", "compute_input", "compute_infer", "compute_output")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--pause-ms", type=float, default=20.0, help="idle time before each call (0: none)")
    args = parser.parse_args()
    local = InProcessFaces(project_root() / "model_repository")
    data = [sample(n).read_bytes() for n in PROBES]
    smalls = [decode_for_faces(d, local.limits, local.detect_side, local.min_face)[2][0][None] for d in data]
    photos = [local.find_faces(d) for d in data]
    chips = [align_all([p.source(p.faces.take([0]))]) for p in photos]
    detector = load_from_repository(
        "fovea.serving.nanodet", project_root() / "model_repository" / "nanodet_int8"
    )
    photos = [
        np.asarray(Image.open(sample(n)).convert("RGB").resize((416, 416)))[None]
        for n in ("dog", "person", "horses", "kite", "giraffe")
    ]
    networks = [
        (local.settings.detector_model, local.detector, DETECTOR_INPUT, list(DETECTOR_OUTPUTS), smalls),
        (local.settings.embedder_model, local.embedder, EMBEDDER_INPUT, [EMBEDDER_OUTPUT], chips),
        ("nanodet_int8", detector, "INPUT", ["BOXES", "SCORES", "CLASSES"], photos),
    ]
    with private_stack() as (settings, _key):
        token = settings.internal_token_file.read_bytes().strip()
        grpc_url = settings.triton_grpc_url
        http_url = f"{settings.host}:{settings.triton_http_port}"
        asyncio.run(compare(networks, token, grpc_url, http_url, args.requests, args.pause_ms / 1000))


@dataclass
class Clients:
    ours: TritonClient
    ours_http: TritonClient
    ours_http_inline: TritonClient
    bare_grpc: grpc_aio.InferenceServerClient
    bare_http: http_aio.InferenceServerClient
    stats: grpcclient.InferenceServerClient
    grpc_headers: dict[str, str] | None
    http_headers: dict[str, str]


async def compare(
    networks: list[tuple[str, Any, str, list[str], list[np.ndarray]]],
    token: bytes,
    grpc_url: str,
    http_url: str,
    requests: int,
    pause_s: float,
) -> None:
    clients = Clients(
        TritonClient(grpc_url, token=token),
        TritonClient(grpc_url, token=token, http_url=http_url),
        TritonClient(grpc_url, token=token, http_url=http_url, shared_memory=False),
        grpc_aio.InferenceServerClient(grpc_url),
        http_aio.InferenceServerClient(http_url),
        grpcclient.InferenceServerClient(grpc_url),
        triton_headers(token),
        {TRITON_TOKEN_HEADER: token.decode()},
    )
    print(f"{requests} calls each, taking turns, {pause_s * 1000:.0f} ms pause before each; p50 ms")
    for network in networks:
        await one_network(clients, *network, requests=requests, pause_s=pause_s)
    clients.stats.close()
    await clients.ours.close()
    await clients.ours_http.close()
    await clients.ours_http_inline.close()
    await clients.bare_grpc.close()
    await clients.bare_http.close()


async def one_network(
    clients: Clients,
    model: str,
    module: Any,
    name: str,
    outputs: list[str],
    tensors: list[np.ndarray],
    *,
    requests: int,
    pause_s: float,
) -> None:
    """Every way of calling ``model`` in turn, then Triton's statistics over those calls."""

    async def bare_grpc_call(i: int) -> object:
        x = tensors[i % len(tensors)]
        tensor = grpcclient.InferInput(name, list(x.shape), "UINT8")
        tensor.set_data_from_numpy(x)
        wanted = [grpcclient.InferRequestedOutput(o) for o in outputs]
        return await clients.bare_grpc.infer(model, [tensor], outputs=wanted, headers=clients.grpc_headers)

    async def bare_http_call(i: int) -> object:
        x = tensors[i % len(tensors)]
        tensor = httpclient.InferInput(name, list(x.shape), "UINT8")
        tensor.set_data_from_numpy(x, binary_data=True)
        wanted = [httpclient.InferRequestedOutput(o, binary_data=True) for o in outputs]
        return await clients.bare_http.infer(model, [tensor], outputs=wanted, headers=clients.http_headers)

    async def in_process(i: int) -> object:
        return run_model(module, {name: tensors[i % len(tensors)]})

    async def fovea_call(i: int) -> object:
        return await clients.ours.infer(model, {name: tensors[i % len(tensors)]}, outputs)

    async def fovea_http_call(i: int) -> object:
        return await clients.ours_http.infer(model, {name: tensors[i % len(tensors)]}, outputs)

    async def fovea_http_inline_call(i: int) -> object:
        return await clients.ours_http_inline.infer(model, {name: tensors[i % len(tensors)]}, outputs)

    async def grpc_live(_i: int) -> object:
        return await clients.bare_grpc.is_server_live(headers=clients.grpc_headers)

    async def http_live(_i: int) -> object:
        return await clients.bare_http.is_server_live(headers=clients.http_headers)

    calls: dict[str, Callable[[int], Awaitable[object]]] = {
        "in-process": in_process,
        "fovea": fovea_call,
        "fovea http": fovea_http_call,
        "fovea http inline": fovea_http_inline_call,
        "grpc.aio": bare_grpc_call,
        "http.aio": bare_http_call,
        "grpc live": grpc_live,
        "http live": http_live,
    }
    for call in calls.values():
        for i in range(3):
            await call(i)
    before = server_stats(clients.stats, model, clients.grpc_headers)
    times: dict[str, list[float]] = {label: [] for label in calls}
    for i in range(requests):
        for label, call in calls.items():
            await asyncio.sleep(pause_s)
            start = time.perf_counter()
            await call(i)
            times[label].append((time.perf_counter() - start) * 1000)
    after = server_stats(clients.stats, model, clients.grpc_headers)
    print(f"{model}: " + ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in times.items()))
    count = after["success"][0] - before["success"][0]
    parts = {s: (after[s][1] - before[s][1]) / max(count, 1) / 1e6 for s in ("success", *STAGES)}
    print(
        f"  inside Triton, mean of its {count} inferences (the four clients'): "
        + ", ".join(f"{s} {parts[s]:.2f}" for s in STAGES)
        + f"; in all {parts['success']:.2f}"
    )


def server_stats(
    client: grpcclient.InferenceServerClient, model: str, headers: dict[str, str] | None
) -> dict[str, tuple[int, int]]:
    """Triton's cumulative (count, nanoseconds) per stage of ``model``'s inferences."""
    reply = client.get_inference_statistics(model, headers=headers, as_json=True)
    stages = reply["model_stats"][0]["inference_stats"]
    return {k: (int(v.get("count", 0)), int(v.get("ns", 0))) for k, v in stages.items()}


if __name__ == "__main__":
    main()
