"""Soak: a mixed load through the gateway for a long while, with the memory of every process of the stack
recorded, to see whether anything grows without bound.

    .venv/bin/python bench/soak.py [--minutes 30] [--interval-s 30] [--concurrency 4] [--out soak.csv]

Starts its own stack with its own Redis (temporary data dir, free ports), then runs ``--concurrency`` client
threads, each taking the next operation of a fixed mix, one after the other, for ``--minutes``:

- detect: Detect of one of five photos; classify: Classify of one of them;
- verify: Verify of an obama probe against the enrolled obama;
- enroll: Enroll of a photo under a new identity, then DeleteIdentity (the gallery stays its size);
- door: VerifyAccess of a one-frame burst at a door (audit record, door events, webhooks off);
- style: a feed-forward style job on a 128 px photo, watched to its end (WatchJob);
- train: every ``--train-every-s`` one classifier trained on 2 x 12 lfw photos, watched to its end, then
  deleted (its Triton model unloaded): the training worker, Triton's loads and unloads;
- and one WatchEvents stream open the whole time (reopened when it ends).

Every ``--interval-s`` it records, for every process of the stack (supervised programs and their
descendants: tritonserver and each Triton python-backend stub by model), VmRSS and RssAnon from /proc, and
Redis's used_memory and used_memory_rss (INFO), into ``--out`` (one row per process and sample); the
operations done and failed, and the machine's load, into ``<out>.samples.csv``. At the end it prints, per
process, the RSS at the first sample after the warm-up (``--warmup-s``), at the end and at most, and the
slope of a straight line fitted to the samples after the warm-up (MiB per hour): a leak shows as a slope
that does not come down as the run gets longer.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import redis
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from _stack import children, private_stack, process_label  # noqa: E402

from fovea.client import FoveaClient, FoveaClientError  # noqa: E402
from fovea.contracts.styles import STYLE_NAMES  # noqa: E402
from fovea.convert.samples import sample  # noqa: E402
from fovea.stack.config import StackSettings  # noqa: E402
from fovea.stack.control import status  # noqa: E402

PHOTOS = ("dog", "person", "horses", "kite", "giraffe")
PROBES = ("obama2", "obama3", "obama_partial_face")
MIX = ("detect", "verify", "classify", "door", "detect", "enroll", "classify", "style", "verify", "door")
"""The operations each thread takes in turn (detect, classify, verify, door twice as often as the rest)."""
MiB = 1024 * 1024


@contextmanager
def soak_stack() -> Iterator[tuple[StackSettings, str, str]]:
    """The whole platform with its own redis-server; yields (settings, admin key, Redis URL)."""
    with private_stack(redis_url="", mqtt_url="") as (settings, key):
        yield settings, key, json.loads((settings.data_dir / "stack.json").read_text())["redis_url"]


# ------------------------------------------------------------------------------------------ processes
def processes(settings: StackSettings, names: dict[int, str]) -> dict[int, str]:
    """Every process of the stack (supervised programs and their descendants), labelled. ``names`` keeps
    the labels given so far (pid -> label): a label seen again on another pid (a model's second instance, a
    restarted process) gets ``#2``, ``#3`` in the order they were first seen."""
    tree = children()
    found: dict[int, str] = {}
    for prog in status(settings):
        stack = [prog.pid] if prog.pid else []
        while stack:
            pid = stack.pop()
            if pid not in names:
                label = process_label(pid, prog.name)
                taken = set(names.values())
                n = 1
                while (label if n == 1 else f"{label} #{n}") in taken:
                    n += 1
                names[pid] = label if n == 1 else f"{label} #{n}"
            found[pid] = names[pid]
            stack.extend(tree.get(pid, []))
    return found


def memory(pid: int) -> tuple[float, float] | None:
    """(VmRSS, RssAnon) of ``pid`` in MiB; None when it is gone."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
    except OSError:
        return None
    kib = [float(fields.get(name, "0 kB").split()[0]) for name in ("VmRSS", "RssAnon")]
    return kib[0] / 1024, kib[1] / 1024


# ------------------------------------------------------------------------------------------ the load
def png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def small_photo(name: str, side: int) -> bytes:
    image = Image.open(sample(name)).convert("RGB")
    image.thumbnail((side, side))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@dataclass
class Load:
    client: FoveaClient
    gallery: str
    training_set: list[tuple[str, bytes]]
    stop: threading.Event = field(default_factory=threading.Event)
    done: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    photos: dict[str, bytes] = field(default_factory=dict)

    def run(self, op: str, fn: Callable[[], object]) -> None:
        try:
            fn()
        except FoveaClientError as exc:
            with self.lock:
                self.failed[op] += 1
                self.errors[f"{op}: {exc.code}: {exc.message[:100]}"] += 1
            return
        with self.lock:
            self.done[op] += 1

    def operation(self, op: str, n: int) -> Callable[[], object]:
        photo = self.photos[PHOTOS[n % len(PHOTOS)]]
        probe = self.photos[PROBES[n % len(PROBES)]]
        c = self.client
        match op:
            case "detect":
                return lambda: c.detect(photo)
            case "classify":
                return lambda: c.classify(photo)
            case "verify":
                return lambda: c.verify(self.gallery, "obama", probe)
            case "door":
                return lambda: c.verify_access(f"soak-door-{n % 4}", self.gallery, "obama", [probe])
            case "enroll":
                person = f"visitor-{uuid.uuid4().hex[:8]}"
                return lambda: (
                    c.enroll(self.gallery, person, [probe]),
                    c.delete_identity(self.gallery, person),
                )
            case "style":
                return lambda: self.style(photo)
        raise ValueError(f"unknown operation {op!r}")

    def style(self, photo: bytes) -> None:
        job = self.client.submit_style(
            self.photos["style-content"], style=STYLE_NAMES[len(photo) % len(STYLE_NAMES)]
        )
        final = list(self.client.watch_job(job.job_id, timeout_s=120))[-1]
        if final.state != "SUCCEEDED":
            raise FoveaClientError("FAILED_PRECONDITION", f"style job {final.state}: {final.error}")

    def train(self, n: int) -> None:
        name = f"soak-{n}"
        job = self.client.train_classifier(name, self.training_set, epochs=5)
        final = list(self.client.watch_training_job(job.job_id, timeout_s=600))[-1]
        if final.state != "SUCCEEDED":
            raise FoveaClientError("FAILED_PRECONDITION", f"training {final.state}: {final.error}")
        self.client.delete_classifier(name)

    def worker(self, start: int) -> None:
        for n in itertools.count(start):
            if self.stop.is_set():
                return
            op = MIX[n % len(MIX)]
            self.run(op, self.operation(op, n))

    def trainer(self, every_s: float) -> None:
        for n in itertools.count():
            self.run("train", lambda n=n: self.train(n))  # type: ignore[misc]
            if self.stop.wait(every_s):
                return

    def watcher(self) -> None:
        while not self.stop.is_set():
            try:
                for _ in self.client.watch_events(timeout_s=120):
                    with self.lock:
                        self.done["event seen"] += 1
                    if self.stop.is_set():
                        return
            except FoveaClientError as exc:
                with self.lock:
                    if exc.code != "DEADLINE_EXCEEDED":
                        self.failed["watch"] += 1
                        self.errors[f"watch: {exc.code}: {exc.message[:100]}"] += 1


# ------------------------------------------------------------------------------------------ records
def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) in MiB per hour; 0 with fewer than 3 points."""
    if len(points) < 3:
        return 0.0
    t = np.array([p[0] for p in points]) / 3600.0
    y = np.array([p[1] for p in points])
    return float(np.polyfit(t, y, 1)[0])


def summary(rows: list[dict[str, object]], warmup_s: float) -> list[str]:
    """Per process: RSS after the warm-up, at the end, at most; slope after the warm-up (MiB/h)."""
    by_name: dict[str, list[tuple[float, float, float]]] = {}
    for row in rows:
        by_name.setdefault(str(row["name"]), []).append(
            (float(row["elapsed_s"]), float(row["rss_mib"]), float(row["anon_mib"]))  # type: ignore[arg-type]
        )
    lines = [
        f"{'process':<34} {'RSS start':>10} {'RSS end':>9} {'RSS max':>9} {'slope':>11} {'anon slope':>11}",
        f"{'':<34} {'MiB':>10} {'MiB':>9} {'MiB':>9} {'MiB/h':>11} {'MiB/h':>11}",
    ]
    total_start = total_end = 0.0
    for name in sorted(by_name):
        points = [p for p in by_name[name] if p[0] >= warmup_s] or by_name[name]
        start, end = points[0], points[-1]
        if not name.startswith("redis"):
            total_start, total_end = total_start + start[1], total_end + end[1]
        rss = slope_per_hour([(p[0], p[1]) for p in points])
        anon = slope_per_hour([(p[0], p[2]) for p in points])
        lines.append(
            f"{name:<34} {start[1]:>10.1f} {end[1]:>9.1f} {max(p[1] for p in points):>9.1f} {rss:>+11.1f} {anon:>+11.1f}"
        )
    lines.append(f"{'all processes (sum)':<34} {total_start:>10.1f} {total_end:>9.1f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--interval-s", type=float, default=30.0)
    parser.add_argument("--warmup-s", type=float, default=120.0, help="Left out of the slopes (caches fill)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--train-every-s", type=float, default=300.0)
    parser.add_argument("--out", type=Path, default=Path("soak.csv"))
    args = parser.parse_args()
    samples_out = args.out.with_suffix(".samples.csv")
    lfw = __import__("skimage.data", fromlist=["data"]).lfw_subset()
    training = [
        (label, png((np.asarray(p) * 255).round().astype(np.uint8)))
        for label, items in (("face", lfw[:12]), ("other", lfw[100:112]))
        for p in items
    ]
    with (
        soak_stack() as (settings, key, redis_url),
        FoveaClient(f"127.0.0.1:{settings.gateway_port}", key) as c,
    ):
        gallery = f"soak-{uuid.uuid4().hex[:6]}"
        c.create_gallery(gallery)
        c.enroll(gallery, "obama", [sample("obama").read_bytes()])
        load = Load(c, gallery, training)
        load.photos = {name: sample(name).read_bytes() for name in (*PHOTOS, *PROBES)}
        load.photos["style-content"] = small_photo("dog", 128)
        store = redis.Redis.from_url(redis_url)
        threads = [
            threading.Thread(target=load.worker, args=(i * 3,), daemon=True) for i in range(args.concurrency)
        ]
        threads += [
            threading.Thread(target=load.trainer, args=(args.train_every_s,), daemon=True),
            threading.Thread(target=load.watcher, daemon=True),
        ]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        rows: list[dict[str, object]] = []
        names: dict[int, str] = {}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w", newline="") as mem_file, samples_out.open("w", newline="") as ops_file:
            mem = csv.DictWriter(mem_file, ["elapsed_s", "name", "pid", "rss_mib", "anon_mib"])
            ops = csv.DictWriter(ops_file, ["elapsed_s", "loadavg1", "done", "failed", "by_operation"])
            mem.writeheader()
            ops.writeheader()
            print(
                f"soak: {args.minutes:g} min, {args.concurrency} threads + training + a watch; CSV {args.out}"
            )
            end = start + args.minutes * 60
            while True:
                elapsed = time.monotonic() - start
                for pid, name in sorted(processes(settings, names).items(), key=lambda kv: kv[1]):
                    found = memory(pid)
                    if found is not None:
                        rows.append(
                            {"elapsed_s": round(elapsed), "name": name, "pid": pid, "rss_mib": round(found[0], 1),
                             "anon_mib": round(found[1], 1)}
                        )  # fmt: skip
                info = store.info("memory")
                rows.append(
                    {"elapsed_s": round(elapsed), "name": "redis used_memory (INFO)", "pid": 0,
                     "rss_mib": round(info["used_memory_rss"] / MiB, 1), "anon_mib": round(info["used_memory"] / MiB, 1)}
                )  # fmt: skip
                mem.writerows(r for r in rows if r["elapsed_s"] == round(elapsed))
                mem_file.flush()
                with load.lock:
                    done, failed = sum(load.done.values()), sum(load.failed.values())
                    by_op = json.dumps(dict(sorted(load.done.items())))
                ops.writerow(
                    {"elapsed_s": round(elapsed), "loadavg1": os.getloadavg()[0], "done": done, "failed": failed,
                     "by_operation": by_op}
                )  # fmt: skip
                ops_file.flush()
                total = sum(
                    float(r["rss_mib"]) for r in rows if r["elapsed_s"] == round(elapsed) and r["pid"]
                )  # type: ignore[arg-type]
                print(
                    f"+{elapsed / 60:5.1f} min  RSS of the stack {total:8.1f} MiB  redis {info['used_memory'] / MiB:6.1f} MiB  "
                    f"ops {done} (failed {failed})  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                if time.monotonic() >= end:
                    break
                time.sleep(max(0.0, min(args.interval_s, end - time.monotonic())))
            load.stop.set()
            for thread in threads:
                thread.join(timeout=120)
        print(f"\noperations: {dict(sorted(load.done.items()))}")
        print(f"failed: {dict(sorted(load.failed.items()))}")
        for error, count in load.errors.most_common(8):
            print(f"  {count} x {error}")
        print()
        print("\n".join(summary(rows, args.warmup_s)))


if __name__ == "__main__":
    main()
