"""Style job memory over a long run: Redis ``used_memory`` while many small feed-forward jobs go through
the whole path (gateway -> style service -> Celery worker -> Triton), with the job store's caps set.

Each job: submit a 64x64 PNG in one of the 26 styles, watch it to the end, read its result (what a client
does). Every ``--every`` jobs the script prints Redis's used_memory, the store's own counts and the job rate;
at the end, the spread of used_memory once the caps are reached (the first ``max_job_records`` jobs fill
the store), which the issue asks to stay within 10%.

    .venv/bin/python bench/style_memory.py [--jobs 1000] [--max-results 100] [--max-records 200]

Starts its own stack with its own Redis (so used_memory is the style jobs' alone, and the stack's
``maxmemory`` applies), stops it at the end. Bounded in time: ``--timeout-s`` (default 900 s) stops the
submissions and reports what it has.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import redis
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from _stack import _free_ports  # noqa: E402

from fovea.client import FoveaClient  # noqa: E402
from fovea.contracts.styles import STYLE_NAMES
from fovea.convert.samples import sample
from fovea.gateway.auth import add_key  # noqa: E402
from fovea.stack.config import StackSettings  # noqa: E402
from fovea.stack.control import down, up  # noqa: E402
from fovea.style.store import JobStore, StoreLimits  # noqa: E402


@contextmanager
def stack_with_own_redis(env: dict[str, str]) -> Iterator[tuple[StackSettings, str, str]]:
    """The whole platform with the stack's own redis-server; yields (settings, admin key, Redis URL)."""
    fields = [name for name in StackSettings.model_fields if name.endswith("_port")]
    os.environ.update(env)  # the style service and worker read their FOVEA_STYLE_* settings from here
    with tempfile.TemporaryDirectory(prefix="fovea-bench-") as tmp:
        data = Path(tmp)
        settings = StackSettings(
            data_dir=data, redis_url="", **dict(zip(fields, _free_ports(len(fields)), strict=True))
        )
        key = add_key(data / "api-keys.json", "bench", ["*"])
        try:
            up(settings)
            url = json.loads((data / "stack.json").read_text())["redis_url"]
            yield settings, key, url
        finally:
            down(settings)


def content_png(side: int) -> bytes:
    image = Image.open(sample("dog")).convert("RGB").resize((side, side), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def one_job(client: FoveaClient, content: bytes, i: int) -> str:
    job = client.submit_style(content, style=STYLE_NAMES[i % len(STYLE_NAMES)], max_side=64)
    final = job
    for update in client.watch_job(job.job_id, timeout_s=120):
        final = update
    if final.state == "SUCCEEDED":
        client.get_job(
            job.job_id
        )  # the client reads its result (maybe expired already, if the caps are tiny)
    return final.state


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--side", type=int, default=64, help="Content image side, pixels")
    parser.add_argument("--concurrency", type=int, default=4, help="Clients submitting at once")
    parser.add_argument("--every", type=int, default=50, help="Print a row every this many jobs")
    parser.add_argument("--max-results", type=int, default=100, help="FOVEA_STYLE_MAX_RESULTS")
    parser.add_argument("--max-records", type=int, default=200, help="FOVEA_STYLE_MAX_JOB_RECORDS")
    parser.add_argument("--max-mib", type=int, default=64, help="FOVEA_STYLE_MAX_STORED_BYTES, MiB")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="Stop submitting after this long")
    args = parser.parse_args()
    env = {
        "FOVEA_STYLE_MAX_RESULTS": str(args.max_results),
        "FOVEA_STYLE_MAX_JOB_RECORDS": str(args.max_records),
        "FOVEA_STYLE_MAX_STORED_BYTES": str(args.max_mib * 1024 * 1024),
        "FOVEA_STYLE_WORKER_CONCURRENCY": "2",
    }
    content = content_png(args.side)
    print(f"content: {args.side}x{args.side} PNG, {len(content)} bytes; caps: {env}")
    with stack_with_own_redis(env) as (settings, key, url):
        r = redis.Redis.from_url(url)
        limits = StoreLimits(args.max_results, args.max_mib * 1024 * 1024, args.max_records)
        store = JobStore(url, ttl_s=86400, idempotency_ttl_s=86400, limits=limits)
        policy = r.config_get("maxmemory*")
        print(f"redis maxmemory {policy.get('maxmemory')} policy {policy.get('maxmemory-policy')}")
        gateway = f"{settings.host}:{settings.gateway_port}"
        rows: list[tuple[int, int]] = []
        states: dict[str, int] = {}
        lock = threading.Lock()
        done = 0
        start = time.perf_counter()

        def sample_row() -> None:
            used = int(r.info("memory")["used_memory"])
            usage = store.usage()
            rows.append((done, used))
            rate = done / (time.perf_counter() - start)
            print(
                f"{done:>6} {used / 1024:>12.1f} {r.dbsize():>8} {usage.results:>8} {usage.records:>8} "
                f"{usage.image_bytes / 1024:>10.1f} {rate:>7.1f}",
                flush=True,
            )

        print(
            f"{'jobs':>6} {'used KiB':>12} {'keys':>8} {'results':>8} {'records':>8} {'img KiB':>10} {'jobs/s':>7}"
        )
        sample_row()
        deadline = time.monotonic() + args.timeout_s

        def worker(indices: range) -> None:
            nonlocal done
            with FoveaClient(gateway, key, 60.0) as client:
                for i in indices:
                    if time.monotonic() > deadline:
                        return
                    state = one_job(client, content, i)
                    with lock:
                        states[state] = states.get(state, 0) + 1
                        done += 1
                        if done % args.every == 0:
                            sample_row()

        n = args.concurrency
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(worker, [range(k, args.jobs, n) for k in range(n)]))
        elapsed = time.perf_counter() - start
        time.sleep(1.0)
        if rows[-1][0] != done:
            sample_row()
        print(f"\n{done} jobs in {elapsed:.0f} s ({done / elapsed:.1f} jobs/s); final states {states}")
        filled = [used for jobs, used in rows if jobs >= args.max_records]
        if filled:
            low, high = min(filled), max(filled)
            print(
                f"used_memory once the caps are reached ({len(filled)} samples, jobs >= {args.max_records}): "
                f"min {low / 1024:.1f} KiB, max {high / 1024:.1f} KiB, spread {100 * (high - low) / low:.1f}% "
                f"(target: within 10%); at the start {rows[0][1] / 1024:.1f} KiB"
            )
        else:
            print("the run ended before the caps were reached: no steady state to report")


if __name__ == "__main__":
    main()
