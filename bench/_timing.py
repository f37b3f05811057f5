"""Latency / throughput measurement shared by the benchmarks."""

from __future__ import annotations

import functools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

WARMUP = 3
"""Calls before the timed ones (:func:`measure`'s default, and a warm-up turn of :func:`take_turns`)."""


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
    name: str, fn: Callable[[int], object], requests: int, concurrency: int, warmup: int = WARMUP
) -> Figures:
    """Call ``fn(i)`` ``requests`` times from ``concurrency`` threads; latency per call, throughput overall.

    First ``warmup`` calls per thread (at most ``requests`` in all), from the same number of threads: the
    batch sizes that concurrency makes (Triton's dynamic batcher, onnxruntime's first run at a new shape) are
    not paid in the figures.
    """
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(fn, range(min(warmup * concurrency, max(requests, warmup)))))
    latencies: list[float] = []

    def one(i: int) -> None:
        start = time.perf_counter()
        fn(i)
        latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests)))
    total = time.perf_counter() - start
    p50, p95 = p50_p95(latencies)
    return Figures(name, concurrency, requests, total, p50 * 1e3, p95 * 1e3)


def timed(call: Callable[[int], object], first: int, count: int) -> list[float]:
    """``call(i)`` for i in first..first+count-1, one after the other in this thread (as a script calls a
    model, no pool in between): each call's time in ms."""
    latencies = []
    for i in range(first, first + count):
        t = time.perf_counter()
        call(i)
        latencies.append((time.perf_counter() - t) * 1e3)
    return latencies


def per_s(latencies_ms: Sequence[float]) -> float:
    """The sequential rate of calls that took ``latencies_ms``, one after the other."""
    return len(latencies_ms) / (sum(latencies_ms) / 1e3)


def sequential(call: Callable[[int], object], requests: int) -> dict[str, float]:
    """:func:`timed` over requests 0..requests-1: p50 and p95 ms, and the sequential rate (``per_s``)."""
    start = time.perf_counter()
    latencies = timed(call, 0, requests)
    total = time.perf_counter() - start
    p50, p95 = p50_p95(latencies)
    return {"p50_ms": p50, "p95_ms": p95, "per_s": requests / total}


def serve_blocks(call: Callable[[int], object], ready: dict[str, Any]) -> None:
    """A script's side of an interleaved run (standard library only: a user's script imports it): ``ready``
    as one JSON line on stdout, then per line ``"START COUNT"`` read from stdin, :func:`timed` over those
    requests and one JSON line with their latencies in ms. The caller (:class:`ServedScript`) alternates such
    blocks with its own, so both sides see the same minute of a machine whose speed drifts."""
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        first, count = (int(v) for v in line.split())
        print(json.dumps(timed(call, first, count)), flush=True)


class ServedScript:
    """A user's script run with ``--serve`` in its own process (:func:`serve_blocks` on its side): the JSON
    object it prints first (``ready``), then blocks of requests it times on request."""

    def __init__(self, command: Sequence[str]) -> None:
        self._process = subprocess.Popen(
            list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.ready: dict[str, Any] = json.loads(self._readline())

    def _readline(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the user's script ended (exit code {self._process.wait()})")
        return line

    def block(self, first: int, count: int) -> list[float]:
        """Latencies in ms of requests first..first+count-1, timed by the script."""
        assert self._process.stdin is not None
        self._process.stdin.write(f"{first} {count}\n")
        self._process.stdin.flush()
        latencies: list[float] = json.loads(self._readline())
        return latencies

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=30)


def timed_block(call: Callable[[int], object]) -> Callable[[int, int], list[float]]:
    """``call`` as a side of :func:`take_turns` (:func:`timed` in this thread)."""
    return functools.partial(timed, call)


def take_turns(
    sides: dict[str, Callable[[int, int], list[float]]], requests: int, block: int = 8
) -> dict[str, list[float]]:
    """Every side runs ``requests`` requests at concurrency 1, in turns of ``block`` (who goes first rotates),
    so that all of them see the same minutes of a machine whose speed drifts by +-20% (one side's requests
    after another's had made a round's ratio move by as much). Latencies in ms per side."""
    names = list(sides)
    out: dict[str, list[float]] = {name: [] for name in names}
    for turn, first in enumerate(range(0, requests, block)):
        count = min(block, requests - first)
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            out[name] += sides[name](first, count)
    return out


def p50_p95(latencies: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def versus(
    what: str,
    reference: Callable[[int], object],
    platform: Callable[[int], object],
    requests: int,
    concurrencies: Sequence[int] = (1, 8),
    rounds: int = 2,
) -> tuple[list[Figures], list[str]]:
    """The platform path against the in-process reference, alternating (reference, platform) ``rounds``
    times per concurrency so that drifts of a noisy machine hit both. The table keeps the better round of
    each; the ratios are the medians of each round's own ratio (a round's two blocks run back to back, so
    they see the same machine: on these VMs the speed moves by +-20% from one minute to the next, and the
    better-of-rounds figures of two sides can come from different minutes).

    Returns the figures and one summary line per concurrency: platform p50 / reference p50 (latency, lower
    is better) and platform / reference throughput (higher is better), each with its range over the rounds.
    """
    rows: list[Figures] = []
    lines: list[str] = []
    for concurrency in concurrencies:
        best: dict[str, Figures] = {}
        latency: list[float] = []
        throughput: list[float] = []
        for _ in range(rounds):
            pair = {}
            for label, fn in (("in-process reference", reference), ("platform (gateway)", platform)):
                fig = measure(f"{what}: {label}", fn, requests, concurrency)
                print(fig.row(), flush=True)
                pair[label] = fig
                if label not in best or fig.p50_ms < best[label].p50_ms:
                    best[label] = fig
            ref, plat = pair["in-process reference"], pair["platform (gateway)"]
            latency.append(plat.p50_ms / ref.p50_ms)
            throughput.append(plat.per_s / ref.per_s)
        rows += [best["in-process reference"], best["platform (gateway)"]]
        lines.append(
            f"{what}, concurrency {concurrency}: p50 platform / reference {statistics.median(latency):.2f} "
            f"(rounds {min(latency):.2f}-{max(latency):.2f}); throughput platform / reference "
            f"{statistics.median(throughput):.2f} ({min(throughput):.2f}-{max(throughput):.2f}); "
            f"medians of {rounds} rounds"
        )
        print(lines[-1], flush=True)
    return rows, lines
