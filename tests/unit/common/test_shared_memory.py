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


def test_a_lease_lends_its_regions_again_only_after_a_request_that_ended_well() -> None:
    import asyncio

    class Registry:  # what the pool asks of Triton's client: registrations (Triton itself: integration tests)
        async def register_system_shared_memory(self, *args: object, **kwargs: object) -> None:
            return None

        async def unregister_system_shared_memory(self, *args: object, **kwargs: object) -> None:
            return None

    async def go() -> tuple[bool, bool]:
        pool = RegionPool(Registry())
        try:
            with pool.lease() as lease:
                first = await lease.take(1000)
            with pool.lease() as lease:
                again = await lease.take(1000)  # the same region, given back
                reused = again is first
            with pytest.raises(RuntimeError), pool.lease() as lease:
                failed = await lease.take(1000)
                raise RuntimeError("the request failed: Triton may still use the region")
            with pool.lease() as lease:
                after = await lease.take(1000)
            return reused, after is not failed
        finally:
            await pool.close()

    assert asyncio.run(go()) == (True, True)
