"""Tensors to and from a Triton on the same host through system shared memory instead of gRPC payloads.

Through gRPC a tensor is copied into a protobuf, framed, sent, parsed and copied again at each end (about
2 ms for NanoDet's 0.5 MB input, 3-6 ms for an imported YOLO's 1.7 MB of raw outputs, measured on the
development VM). Through a shared-memory region it is written once by one side and read once by the other.

A :class:`RegionPool` keeps regions registered with Triton (``register_system_shared_memory``) and lends
one per tensor for the life of one request; sizes are rounded up to a power of two (at least 64 KiB) so a
handful of regions serve every request. A region whose request failed or was cancelled is never lent again
(Triton may still write into it); it is released when the pool closes. Region keys carry the process id,
so replicas and test stacks on one host do not collide.

Only a Triton that shares this host's ``/dev/shm`` can use it: the pool is enabled for a loopback Triton
URL, and turns itself off for good (logged once) the first time Triton cannot open a region.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from tritonclient.utils import InferenceServerException
from tritonclient.utils import shared_memory as shm

log = logging.getLogger(__name__)

MIN_REGION = 64 * 1024
_ids = itertools.count()


def is_loopback(url: str) -> bool:
    """True for ``localhost:port`` and ``127.x.x.x:port`` / ``[::1]:port`` Triton URLs."""
    host = url.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Region:
    name: str  # Triton's name for it
    key: str  # the /dev/shm key
    capacity: int
    handle: Any
    generation: int  # the pool's generation when it was registered (a restarted Triton forgot older ones)

    def write(self, array: np.ndarray) -> int:
        data = np.ascontiguousarray(array)
        shm.set_shared_memory_region(self.handle, [data])
        return int(data.nbytes)

    def read(self, dtype: np.dtype[Any], shape: list[int]) -> np.ndarray:
        """A copy of the tensor Triton wrote (the region goes back to the pool afterwards)."""
        return np.array(shm.get_contents_as_numpy(self.handle, dtype, shape), copy=True)


class RegionPool:
    """Shared-memory regions registered with one Triton server, lent out per request."""

    def __init__(self, client: Any, *, max_regions: int = 64, headers: dict[str, str] | None = None) -> None:
        self._client = client  # tritonclient.grpc.aio.InferenceServerClient
        self._headers = headers
        self._prefix = f"fovea-{os.getpid()}-{next(_ids)}"
        self._names = itertools.count()
        self._max_regions = max_regions
        self._free: dict[int, list[Region]] = {}
        self._all: list[Region] = []
        self._generation = 0
        self.enabled = True

    @staticmethod
    def capacity_for(nbytes: int) -> int:
        return max(MIN_REGION, 1 << max(0, int(nbytes) - 1).bit_length())

    async def take(self, nbytes: int) -> Region | None:
        """A region of at least ``nbytes``, or None (pool full, Triton unreachable or shared memory off:
        send this tensor in the request, gRPC's or HTTP's)."""
        if not self.enabled:
            return None
        capacity = self.capacity_for(nbytes)
        free = self._free.get(capacity)
        if free:
            return free.pop()
        if len(self._all) >= self._max_regions:
            return None
        name = f"{self._prefix}-{next(self._names)}"
        key = f"/{name}"
        handle = shm.create_shared_memory_region(name, key, capacity)
        try:
            await self._client.register_system_shared_memory(name, key, capacity, headers=self._headers)
        except InferenceServerException as exc:
            shm.destroy_shared_memory_region(handle)
            if "UNAVAILABLE" not in str(exc.status() or ""):  # Triton answered: it cannot use our memory
                self.enabled = False
                log.warning(
                    "Triton cannot use this host's shared memory (%s): tensors go over gRPC", exc.message()
                )
            return None
        region = Region(name, key, capacity, handle, self._generation)
        self._all.append(region)
        return region

    def give(self, region: Region, reusable: bool = True) -> None:
        """Back to the pool. ``reusable`` False (its request failed or was cancelled, so Triton may still
        write into it): kept until :meth:`close`, never lent again. A region from before :meth:`forget` is
        unknown to the current Triton and released at once."""
        if region.generation != self._generation:
            self._release(region)
        elif reusable:
            self._free.setdefault(region.capacity, []).append(region)

    @contextlib.contextmanager
    def lease(self) -> Iterator[Lease]:
        """The regions of one request: what :meth:`Lease.take` lends comes back when the block ends, to be
        lent again only if the block ended without an exception (:meth:`give`)."""
        lease = Lease(self)
        ended_well = False
        try:
            yield lease
            ended_well = True
        finally:
            for region in lease.regions:
                self.give(region, reusable=ended_well)

    def forget(self) -> None:
        """Triton no longer knows our regions (it restarted): release the idle ones now, the lent ones when
        they come back, and register new ones from the next request on."""
        self._generation += 1
        for regions in self._free.values():
            for region in regions:
                self._release(region)
        self._free.clear()
        log.info("Triton forgot its shared-memory regions (restarted?): registering new ones")

    def _release(self, region: Region) -> None:
        shm.destroy_shared_memory_region(region.handle)
        self._all.remove(region)

    async def close(self) -> None:
        for region in list(self._all):
            if region.generation == self._generation:
                with contextlib.suppress(InferenceServerException):  # Triton gone: its mapping went with it
                    await self._client.unregister_system_shared_memory(
                        region.name, headers=self._headers, client_timeout=2.0
                    )
            shm.destroy_shared_memory_region(region.handle)
        self._all.clear()
        self._free.clear()
        self.enabled = False


class Lease:
    """The regions one request has taken from a :class:`RegionPool` (``RegionPool.lease``)."""

    def __init__(self, pool: RegionPool) -> None:
        self.pool = pool
        self.regions: list[Region] = []

    async def take(self, nbytes: int) -> Region | None:
        """:meth:`RegionPool.take`, the region kept until the lease ends."""
        region = await self.pool.take(nbytes)
        if region is not None:
            self.regions.append(region)
        return region


def forgotten(message: str) -> bool:
    """Whether Triton's answer says it does not know a region of ours (it restarted since we registered it):
    the request goes again with its tensors inside, after :meth:`RegionPool.forget`."""
    return "shared memory region" in message


__all__ = ["Lease", "Region", "RegionPool", "forgotten", "is_loopback"]
