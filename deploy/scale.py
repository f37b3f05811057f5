"""What one request costs each process, for deploy/README.md "Scale on paper".

Starts a private local stack (`fovea up` on free ports, its own Redis, MQTT off, a temporary folder), sends N
requests of each kind through the gateway at a small concurrency, and reads every process's CPU time from
/proc (user + system, its threads and child processes included: Celery's pool, Triton's python-backend stubs)
before and after. The processes' idle CPU (health polls, heartbeats), measured just before, is taken off.
Memory is each process tree's PSS (shared pages divided among the processes that map them) after the load.
Then a bulk import of templates into one gallery gives the bytes one template takes in Redis and in a faces
replica.

    .venv/bin/python deploy/scale.py [--requests 60] [--concurrency 2] [--templates 50000]

Prints a table per request kind (CPU ms per request of each process) and a JSON summary last. On this machine
Triton runs every model on the CPU: its figures are CPU inference, not what a GPU host's Triton spends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import numpy as np
import redis

from fovea.client import FoveaClient
from fovea.convert.samples import sample
from fovea.faces.recognition.core.records import TemplateRecord
from fovea.faces.recognition.store import FaceStore
from fovea.gateway.auth import add_key
from fovea.stack.config import StackSettings
from fovea.stack.control import down, up
from fovea.stack.supervisor import Supervisor

TICKS = os.sysconf("SC_CLK_TCK")


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int, tree: dict[int, list[int]]) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += tree.get(p, [])
    return found


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its living descendants."""
    total = 0.0
    for p in descendants(pid, children()):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    return total


def pss_mb(pid: int) -> float:
    total = 0
    for p in descendants(pid, children()):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class Meter:
    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def snapshot(self) -> dict[str, float]:
        return {name: cpu_s(pid) for name, pid in self.pids.items()}

    def idle_rate(self, seconds: float = 6.0) -> dict[str, float]:
        before, start = self.snapshot(), time.monotonic()
        time.sleep(seconds)
        after, elapsed = self.snapshot(), time.monotonic() - start
        return {n: (after[n] - before[n]) / elapsed for n in self.pids}

    def per_request(self, fn: Callable[[int], object], requests: int, concurrency: int) -> dict[str, Any]:
        idle = self.idle_rate()
        before, start = self.snapshot(), time.monotonic()
        latencies: list[float] = []

        def one(i: int) -> None:
            t0 = time.perf_counter()
            fn(i)
            latencies.append(time.perf_counter() - t0)

        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(requests)))
        after, elapsed = self.snapshot(), time.monotonic() - start
        cpu_ms = {n: max(0.0, (after[n] - before[n] - idle[n] * elapsed)) / requests * 1e3 for n in self.pids}
        return {
            "requests": requests,
            "wall_s": round(elapsed, 1),
            "per_s": round(requests / elapsed, 2),
            "p50_ms": round(statistics.median(latencies) * 1e3, 1),
            "cpu_ms": {n: round(v, 2) for n, v in cpu_ms.items()},
        }


async def bulk_import(redis_url: str, gallery: str, n: int) -> None:
    store = FaceStore(redis_url)
    try:
        info = await store.get_gallery(gallery)
        now = int(time.time() * 1000)
        rng = np.random.default_rng(0)
        records = (
            TemplateRecord(
                uuid.uuid4().hex,
                f"person-{i:07d}",
                info.embedding_model,
                now,
                rng.standard_normal(128).astype(np.float32),
            )
            for i in range(n)
        )
        await store.bulk_enroll(info, records)
    finally:
        await store.close()


def templates_count(port: int) -> float:
    with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:  # noqa: S310 - our own process
        for line in reply.read().decode().splitlines():
            if line.startswith("fovea_faces_templates_count "):
                return float(line.split()[1])
    return 0.0


def gallery_bytes(
    settings: StackSettings, client: FoveaClient, pids: dict[str, int], n: int
) -> dict[str, float]:
    """Bytes one template takes in Redis (used_memory) and in the faces process (PSS), from a bulk import."""
    redis_url = json.loads((settings.data / "stack.json").read_text())["redis_url"]  # with its password
    store = redis.Redis.from_url(redis_url)
    gallery = f"scale-{uuid.uuid4().hex[:6]}"
    client.create_gallery(gallery)
    time.sleep(2)
    redis_before = int(store.info("memory")["used_memory"])
    faces_before = pss_mb(pids["faces"])
    count_before = templates_count(settings.faces_metrics_port)
    asyncio.run(bulk_import(redis_url, gallery, n))
    deadline = time.monotonic() + 300
    while templates_count(settings.faces_metrics_port) < count_before + n and time.monotonic() < deadline:
        time.sleep(1)
    time.sleep(3)
    redis_after = int(store.info("memory")["used_memory"])
    faces_after = pss_mb(pids["faces"])
    return {
        "templates": n,
        "redis_bytes_per_template": round((redis_after - redis_before) / n),
        "faces_bytes_per_template": round((faces_after - faces_before) * 1024 * 1024 / n),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--style-requests", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--templates", type=int, default=50_000)
    args = parser.parse_args()

    fields = [name for name in StackSettings.model_fields if name.endswith("_port")]
    summary: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fovea-scale-") as tmp:
        data = Path(tmp)
        settings = StackSettings(
            data_dir=data,
            redis_url="",  # always its own Redis
            mqtt_url="",
            **dict(zip(fields, free_ports(len(fields)), strict=True)),
        )
        key = add_key(data / "api-keys.json", "scale", ["*"])
        try:
            up(settings)
            pids = {p["name"]: p["pid"] for p in Supervisor(settings.data).processes() if p["pid"]}
            client = FoveaClient(f"127.0.0.1:{settings.gateway_port}", key)
            dog = sample("dog").read_bytes()
            obama, obama2 = sample("obama").read_bytes(), sample("obama2").read_bytes()
            client.create_gallery("scale")
            client.enroll("scale", "obama", [obama])
            meter = Meter(pids)
            kinds: dict[str, tuple[Callable[[int], object], int]] = {
                "Detect": (lambda i: client.detect(dog), args.requests),
                "Verify": (lambda i: client.verify("scale", "obama", obama2), args.requests),
                "VerifyAccess": (
                    lambda i: client.verify_access("scale-door", "scale", "obama", [obama2]),
                    args.requests,
                ),
                "Classify": (lambda i: client.classify(dog, top_k=5), args.requests),
                "fast style job": (
                    lambda i: list(
                        client.watch_job(client.submit_style(dog, style="pastel-wash", max_side=512).job_id)
                    ),
                    args.style_requests,
                ),
            }
            for name, (fn, n) in kinds.items():
                for i in range(3):  # warm every path first
                    fn(i)
                row = meter.per_request(fn, n, args.concurrency)
                summary[name] = row
                cells = ", ".join(f"{p} {v:.1f}" for p, v in row["cpu_ms"].items() if v >= 0.05)
                print(
                    f"{name}: {row['per_s']}/s, p50 {row['p50_ms']} ms; CPU ms per request: {cells}",
                    flush=True,
                )
            summary["pss_mb"] = {n: round(pss_mb(pid), 1) for n, pid in pids.items()}
            print("PSS MB: " + ", ".join(f"{n} {v}" for n, v in summary["pss_mb"].items()), flush=True)
            summary["gallery"] = gallery_bytes(settings, client, pids, args.templates)
            print(f"gallery: {summary['gallery']}", flush=True)
            client.close()
        finally:
            down(settings)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
