"""HTTP/JSON against gRPC through the same gateway: Detect p50 each way, same run, alternating rounds.

- gRPC: a ``DetectRequest`` serialized and sent on one channel, the answer parsed (what any gRPC client does);
- HTTP: the same request as JSON (image base64) POSTed on one kept-alive connection, the JSON answer parsed
  (what curl or any Connect client does);

over darknet's five sample photos with the options bench/detection.py uses, ``--rounds`` times: at
concurrency 1 one call each way in turn (which goes first alternating), so both sides see the same machine
from one moment to the next; at more (--concurrency) a block of each in turn. Prints each
round's ratio and their median: HTTP p50 / gRPC p50 (the target: at most 1.10). Then what the HTTP path adds,
piece by piece: the gateway's own CPU time per Detect each way (from /proc), and, measured in this process,
the JSON <-> proto conversion of a Detect and one call over a Unix-socket gRPC channel to an in-process server
(the hop the gateway's HTTP port makes to its own handlers).

    .venv/bin/python bench/http_json.py [--requests 64] [--rounds 5] [--concurrency 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file's name shadows the standard library's `http` (which urllib and aiohttp import) while its folder
# leads sys.path: put the folder last, so `http` is the standard library's and _stack/_timing are still found.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import base64  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import grpc  # noqa: E402
from _stack import private_stack  # noqa: E402
from _timing import HEADER, Figures, measure  # noqa: E402

from fovea.common.v1 import common_pb2  # noqa: E402
from fovea.convert.samples import sample  # noqa: E402
from fovea.detection.v1 import detection_pb2  # noqa: E402
from fovea.gateway.connect import Codec, decode_request, encode_response  # noqa: E402
from fovea.stack.supervisor import Supervisor  # noqa: E402

IMAGES = ("dog", "person", "horses", "kite", "giraffe")
OPTIONS = {"min_score": 0.3, "iou_threshold": 0.6, "max_detections": 100}
DETECT = "/fovea.detection.v1.DetectionService/Detect"


class GrpcDetect:
    """Detect over one gRPC channel, request built and answer parsed each call."""

    def __init__(self, address: str, key: str, photos: list[bytes]) -> None:
        self.channel = grpc.insecure_channel(address)
        self.call = self.channel.unary_unary(DETECT)
        self.metadata = (("authorization", f"Bearer {key}"),)
        self.photos = photos

    def __call__(self, i: int) -> int:
        request = detection_pb2.DetectRequest(image=common_pb2.Image(data=self.photos[i % 5]), **OPTIONS)  # type: ignore[arg-type]
        reply = detection_pb2.DetectResponse.FromString(
            self.call(request.SerializeToString(), metadata=self.metadata, timeout=60)
        )
        return len(reply.detections)


class HttpDetect:
    """Detect as JSON over one kept-alive HTTP connection per thread, body built and answer parsed each call."""

    def __init__(self, host: str, port: int, key: str, photos: list[bytes]) -> None:
        self.host, self.port = host, port
        self.headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        self.photos = photos
        self.local = threading.local()

    def __call__(self, i: int) -> int:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        body = {
            "image": {"data": base64.b64encode(self.photos[i % 5]).decode()},
            "minScore": OPTIONS["min_score"],
            "iouThreshold": OPTIONS["iou_threshold"],
            "maxDetections": OPTIONS["max_detections"],
        }
        conn.request("POST", DETECT, body=json.dumps(body), headers=self.headers)
        response = conn.getresponse()
        answer = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {answer}")
        return len(answer["detections"])


def interleaved(
    grpc_fn: Callable[[int], object], http_fn: Callable[[int], object], requests: int
) -> tuple[Figures, Figures]:
    """Concurrency 1, one call each way in turn (which goes first alternates), so both see the same machine
    from one moment to the next: the per-call latencies of each side and their p50."""
    for i in range(3):
        grpc_fn(i), http_fn(i)
    times: dict[str, list[float]] = {"grpc": [], "http": []}
    start = time.perf_counter()
    for i in range(requests):
        order = [("grpc", grpc_fn), ("http", http_fn)]
        for side, fn in order if i % 2 == 0 else order[::-1]:
            began = time.perf_counter()
            fn(i)
            times[side].append(time.perf_counter() - began)
    total = time.perf_counter() - start

    def figures(name: str, latencies: list[float]) -> Figures:
        ordered = sorted(latencies)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        share = total * sum(latencies) / (sum(times["grpc"]) + sum(times["http"]))
        return Figures(name, 1, len(latencies), share, statistics.median(ordered) * 1e3, p95 * 1e3)

    return figures("Detect over gRPC", times["grpc"]), figures("Detect over HTTP/JSON", times["http"])


def versus(
    grpc_fn: Callable[[int], object],
    http_fn: Callable[[int], object],
    requests: int,
    concurrency: int,
    rounds: int,
) -> tuple[list[Figures], list[float]]:
    """``rounds`` rounds of both sides; concurrency 1 interleaves call by call, more runs blocks in turn."""
    rows, ratios = [], []
    for _ in range(rounds):
        if concurrency == 1:
            pair = list(interleaved(grpc_fn, http_fn, requests))
        else:
            pair = [
                measure(f"Detect over gRPC, c={concurrency}", grpc_fn, requests, concurrency),
                measure(f"Detect over HTTP/JSON, c={concurrency}", http_fn, requests, concurrency),
            ]
        for fig in pair:
            print(fig.row(), flush=True)
        rows += pair
        ratios.append(pair[1].p50_ms / pair[0].p50_ms)
        print(f"round: HTTP p50 / gRPC p50 = {ratios[-1]:.3f}", flush=True)
    return rows, ratios


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gateway_cpu_ms(pid: int, fn: Callable[[int], object], requests: int) -> float:
    """The gateway's CPU milliseconds per call of ``fn``, over ``requests`` sequential calls."""
    before = cpu_s(pid)
    for i in range(requests):
        fn(i)
    return (cpu_s(pid) - before) / requests * 1e3


def per_call_us(fn: Callable[[], object], repeat: int) -> float:
    """Median microseconds of ``fn`` over ``repeat`` calls (after 5 warm-up calls)."""
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def pieces(photos: list[bytes], grpc_fn: GrpcDetect) -> list[str]:
    """The HTTP path's own costs, in this process: JSON <-> proto of a Detect, one Unix-socket gRPC hop."""
    request = json.dumps({"image": {"data": base64.b64encode(photos[0]).decode()}, **OPTIONS}).encode()
    reply = grpc_fn.call(
        detection_pb2.DetectRequest(image=common_pb2.Image(data=photos[1]), **OPTIONS).SerializeToString(),  # type: ignore[arg-type]
        metadata=grpc_fn.metadata,
    )  # person.jpg: the photo with the most detections
    decode = per_call_us(lambda: decode_request(request, Codec.JSON, detection_pb2.DetectRequest), 200)
    encode = per_call_us(lambda: encode_response(reply, Codec.JSON, detection_pb2.DetectResponse), 200)
    hop = asyncio.run(unix_hop_us(len(photos[0]), len(reply)))
    n = len(detection_pb2.DetectResponse.FromString(reply).detections)
    return [
        f"JSON -> proto of a Detect request ({len(request) / 1024:.0f} KiB of JSON): {decode:.0f} us",
        f"proto -> JSON of a Detect response ({n} detections): {encode:.0f} us",
        f"one unary call over a Unix-socket gRPC channel, {len(photos[0]) / 1024:.0f} KiB in, "
        f"{len(reply)} B out, in one process: {hop:.0f} us",
    ]


async def unix_hop_us(request_bytes: int, reply_bytes: int, repeat: int = 300) -> float:
    """p50 of a bytes-in, bytes-out unary call to an in-process grpc.aio server on a Unix socket."""
    answer = b"x" * reply_bytes

    async def echo(_request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        return answer

    with tempfile.TemporaryDirectory() as tmp:
        address = f"unix:{tmp}/s.sock"
        server = grpc.aio.server()
        handler = grpc.method_handlers_generic_handler(
            "bench.Hop", {"Call": grpc.unary_unary_rpc_method_handler(echo)}
        )
        server.add_generic_rpc_handlers((handler,))
        server.add_insecure_port(address)
        await server.start()
        async with grpc.aio.insecure_channel(address) as channel:
            call = channel.unary_unary("/bench.Hop/Call")
            data = b"y" * request_bytes
            times = []
            for i in range(repeat + 10):
                start = time.perf_counter()
                await call(data, metadata=(("authorization", "Bearer k"),))
                if i >= 10:
                    times.append(time.perf_counter() - start)
        await server.stop(None)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", default="1", help="comma-separated concurrencies")
    args = parser.parse_args()
    photos = [sample(n).read_bytes() for n in IMAGES]
    summary = []
    with private_stack() as (settings, key):
        grpc_fn = GrpcDetect(f"{settings.host}:{settings.gateway_port}", key, photos)
        http_fn = HttpDetect(settings.host, settings.gateway_http_port, key, photos)
        assert [grpc_fn(i) for i in range(5)] == [http_fn(i) for i in range(5)], "HTTP and gRPC disagree"
        print(HEADER)
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            _, ratios = versus(grpc_fn, http_fn, args.requests, concurrency, args.rounds)
            summary.append(
                f"Detect, concurrency {concurrency}: HTTP/JSON p50 / gRPC p50 = {statistics.median(ratios):.3f} "
                f"(median of {args.rounds} rounds, {min(ratios):.3f}-{max(ratios):.3f}; target <= 1.10)"
            )
            print(summary[-1], flush=True)
        pid = next(p["pid"] for p in Supervisor(settings.data).processes() if p["name"] == "gateway")
        cpu = {"gRPC": [], "HTTP/JSON": []}
        for _ in range(3):
            cpu["gRPC"].append(gateway_cpu_ms(pid, grpc_fn, args.requests))
            cpu["HTTP/JSON"].append(gateway_cpu_ms(pid, http_fn, args.requests))
        summary.append(
            "gateway CPU per Detect (median of 3 x "
            + str(args.requests)
            + " calls): "
            + ", ".join(f"{side} {statistics.median(v):.2f} ms" for side, v in cpu.items())
        )
        summary += pieces(photos, grpc_fn)
        grpc_fn.channel.close()
    print()
    for line in summary:
        print(line)


if __name__ == "__main__":
    main()
