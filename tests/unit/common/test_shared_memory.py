"""src/fovea/common/shared_memory.py: which Tritons get shared memory, and region sizes."""

from __future__ import annotations

import pytest

from fovea.common.shared_memory import MIN_REGION, RegionPool, is_loopback


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("127.0.0.1:8001", True),
        ("127.3.4.5:8001", True),
        ("localhost:8001", True),
        ("[::1]:8001", True),
        ("triton:8001", False),  # compose / k8s: another container, another /dev/shm
        ("10.0.0.7:8001", False),
    ],
)
def test_only_a_triton_on_this_host_gets_shared_memory(url: str, local: bool) -> None:
    assert is_loopback(url) is local


def test_regions_are_powers_of_two_from_64_kib() -> None:
    # 416 * 416 * 3 = 519,168 bytes (NanoDet's uint8 input) -> 2^19 = 524,288
    assert RegionPool.capacity_for(416 * 416 * 3) == 1 << 19
    assert RegionPool.capacity_for(1) == MIN_REGION
    assert RegionPool.capacity_for(1 << 20) == 1 << 20
    assert RegionPool.capacity_for((1 << 20) + 1) == 1 << 21
