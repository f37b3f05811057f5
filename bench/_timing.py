"""Latency / throughput measurement shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass
class Figures:
    name: str
    concurrency: int
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds

    def row(self) -> str:
        return (
            f"| {self.name} | {self.concurrency} | {self.requests} | {self.per_s:.1f} | "
            f"{self.p50_ms:.1f} | {self.p95_ms:.1f} |"
        )


HEADER = "| path | concurrency | requests | images/s | p50 ms | p95 ms |\n|---|---|---|---|---|---|"


def measure(
    name: str, fn: Callable[[int], object], requests: int, concurrency: int, warmup: int = 3
) -> Figures:
    """Call ``fn(i)`` ``requests`` times from ``concurrency`` threads; latency per call, throughput overall."""
    for i in range(warmup):
        fn(i)
    latencies: list[float] = []

    def one(i: int) -> None:
        start = time.perf_counter()
        fn(i)
        latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests)))
    total = time.perf_counter() - start
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return Figures(name, concurrency, requests, total, statistics.median(ordered) * 1e3, p95 * 1e3)


def versus(
    what: str,
    reference: Callable[[int], object],
    platform: Callable[[int], object],
    requests: int,
    concurrencies: Sequence[int] = (1, 8),
    rounds: int = 2,
) -> tuple[list[Figures], list[str]]:
    """The platform path against the in-process reference, alternating (reference, platform) ``rounds``
    times per concurrency so that drifts of a noisy machine hit both; the better round of each is kept.

    Returns the figures and one summary line per concurrency: platform p50 / reference p50 (latency, lower
    is better) and platform / reference throughput (higher is better).
    """
    rows: list[Figures] = []
    lines: list[str] = []
    for concurrency in concurrencies:
        best: dict[str, Figures] = {}
        for _ in range(rounds):
            for label, fn in (("in-process reference", reference), ("platform (gateway)", platform)):
                fig = measure(f"{what}: {label}", fn, requests, concurrency)
                print(fig.row(), flush=True)
                if label not in best or fig.p50_ms < best[label].p50_ms:
                    best[label] = fig
        ref, plat = best["in-process reference"], best["platform (gateway)"]
        rows += [ref, plat]
        lines.append(
            f"{what}, concurrency {concurrency}: p50 platform / reference {plat.p50_ms / ref.p50_ms:.2f}; "
            f"throughput platform / reference {plat.per_s / ref.per_s:.2f}"
        )
        print(lines[-1], flush=True)
    return rows, lines
