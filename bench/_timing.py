"""Latency / throughput measurement shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
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
