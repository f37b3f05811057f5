from __future__ import annotations

import numpy as np

from fovea.serving.base import RequestError, run_batched

EXPECTED = {"INPUT": (3, 4)}


def double(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"OUT": batch["INPUT"] * 2, "SUM": batch["INPUT"].sum(axis=(1, 2))}


def test_requests_are_batched_and_split_back() -> None:
    a = np.ones((1, 3, 4), np.float32)
    b = np.full((2, 3, 4), 3, np.float32)
    calls = []

    def fn(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        calls.append(batch["INPUT"].shape)
        return double(batch)

    ra, rb = run_batched([{"INPUT": a}, {"INPUT": b}], EXPECTED, fn)
    assert calls == [(3, 3, 4)]  # one forward pass for both requests
    assert isinstance(ra, dict) and isinstance(rb, dict)
    assert np.array_equal(ra["OUT"], a * 2) and ra["SUM"].tolist() == [12.0]
    assert np.array_equal(rb["OUT"], b * 2) and rb["SUM"].tolist() == [36.0, 36.0]


def test_a_bad_request_fails_alone() -> None:
    good = np.zeros((1, 3, 4), np.float32)
    results = run_batched([{"INPUT": np.zeros((1, 5))}, {"INPUT": good}, {}], EXPECTED, double)
    assert isinstance(results[0], RequestError) and "shape" in str(results[0])
    assert isinstance(results[1], dict) and results[1]["OUT"].shape == (1, 3, 4)
    assert isinstance(results[2], RequestError) and "missing" in str(results[2])
