"""fovea.common.triton.TritonClient against the stack's real Triton: tensors through shared memory give the
same answers as through gRPC, regions are reused, and closing releases them."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc.aio as triton_aio

from fovea.common.errors import InvalidArgument, NotFound, UpstreamUnavailable
from fovea.common.triton import TritonClient, triton_headers

from .conftest import Stack, free_ports

pytestmark = pytest.mark.integration

OUTPUTS = ("BOXES", "SCORES", "CLASSES")


def our_regions() -> list[Path]:
    """This process's shared-memory regions (their keys carry the pid)."""
    return [p for p in Path("/dev/shm").iterdir() if p.name.startswith(f"fovea-{os.getpid()}-")]


def run(stack: Stack, shared_memory: bool, images: np.ndarray) -> tuple[list[dict[str, np.ndarray]], int]:
    async def go() -> tuple[list[dict[str, np.ndarray]], int]:
        token = stack.settings.internal_token_file.read_bytes().strip()
        client = TritonClient(stack.settings.triton_grpc_url, shared_memory=shared_memory, token=token)
        try:
            results = [await client.infer("nanodet", {"INPUT": image[None]}, OUTPUTS) for image in images]
            results.append(await client.infer("nanodet", {"INPUT": images}, OUTPUTS))  # a batch of 3
            regions = len(our_regions())
        finally:
            await client.close()
        return results, regions

    return asyncio.run(go())


def test_shared_memory_matches_grpc_and_is_released(stack: Stack) -> None:
    images = np.random.default_rng(0).integers(0, 256, (3, 416, 416, 3), dtype=np.uint8)
    shared, regions = run(stack, True, images)
    plain, none = run(stack, False, images)
    assert none == 0
    # one input region and three output regions, reused by every request; the batch needs bigger ones
    assert 4 <= regions <= 8
    assert len(shared) == len(plain) == 4
    for got, want in zip(shared, plain, strict=True):
        for name in OUTPUTS:
            assert got[name].dtype == want[name].dtype and got[name].shape == want[name].shape
            np.testing.assert_array_equal(got[name], want[name])
    assert shared[3]["SCORES"].shape == (3, 1000)
    assert not our_regions()


def test_a_triton_that_forgot_our_regions_is_answered_and_gets_new_ones(stack: Stack) -> None:
    # What a restarted Triton looks like to a service: our regions are no longer registered.
    image = np.random.default_rng(1).integers(0, 256, (1, 416, 416, 3), dtype=np.uint8)
    token = stack.settings.internal_token_file.read_bytes().strip()

    async def go() -> list[dict[str, np.ndarray]]:
        client = TritonClient(stack.settings.triton_grpc_url, shared_memory=True, token=token)
        raw = triton_aio.InferenceServerClient(stack.settings.triton_grpc_url)
        try:
            first = await client.infer("nanodet", {"INPUT": image}, OUTPUTS)
            mine = [p.name for p in our_regions()]
            assert mine  # regions were registered
            for name in mine:
                await raw.unregister_system_shared_memory(name, headers=triton_headers(token))
            second = await client.infer("nanodet", {"INPUT": image}, OUTPUTS)  # falls back, forgets
            third = await client.infer("nanodet", {"INPUT": image}, OUTPUTS)  # new regions
            return [first, second, third]
        finally:
            await client.close()
            await raw.close()

    results = asyncio.run(go())
    for later in results[1:]:
        for name in OUTPUTS:
            np.testing.assert_array_equal(later[name], results[0][name])
    assert not our_regions()


def http_client(stack: Stack, **kwargs: object) -> TritonClient:
    token = stack.settings.internal_token_file.read_bytes().strip()
    return TritonClient(
        stack.settings.triton_grpc_url, token=token, http_url=stack.settings.triton_http_url, **kwargs
    )


@pytest.mark.parametrize("shared_memory", [False, True], ids=["tensors in the request", "shared memory"])
def test_inference_over_http_answers_as_grpc_does(stack: Stack, shared_memory: bool) -> None:
    images = np.random.default_rng(2).integers(0, 256, (3, 416, 416, 3), dtype=np.uint8)
    chips = np.random.default_rng(3).integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
    plain, _ = run(stack, False, images)

    async def go() -> tuple[list[dict[str, np.ndarray]], list[np.ndarray], int]:
        client = http_client(stack, shared_memory=shared_memory)
        try:
            got = [await client.infer("nanodet", {"INPUT": image[None]}, OUTPUTS) for image in images]
            got.append(await client.infer("nanodet", {"INPUT": images}, OUTPUTS))
            # concurrent calls each take a connection of their own
            many = await asyncio.gather(
                *(client.infer("face_embedder", {"CHIP": chips}, ["EMBEDDING"]) for _ in range(6))
            )
            regions = len(our_regions())
        finally:
            await client.close()
        return got, [m["EMBEDDING"] for m in many], regions

    got, embeddings, regions = asyncio.run(go())
    if shared_memory:  # the detector's inputs (519 KB, a batch of 1.5 MB) through two regions, lent again
        assert regions == 2, regions  # and again; the chips (135 KB) in the request
    else:
        assert regions == 0
    assert not our_regions()  # closing released them
    for have, want in zip(got, plain, strict=True):
        for name in OUTPUTS:
            assert have[name].dtype == want[name].dtype and have[name].shape == want[name].shape
            np.testing.assert_array_equal(have[name], want[name])
    assert embeddings[0].shape == (2, 128) and embeddings[0].dtype == np.float32
    for other in embeddings[1:]:
        np.testing.assert_array_equal(other, embeddings[0])


def test_inference_over_http_keeps_triton_errors_and_codes(stack: Stack) -> None:
    async def go() -> list[Exception]:
        client = http_client(stack, retry_budget_s=0.3)
        wrong = http_client(stack, retry_budget_s=0.3)
        wrong._http.port = free_ports(1)[0]  # type: ignore[union-attr]  # nothing listens there
        errors: list[Exception] = []
        try:
            for call in (
                client.infer("nanodet", {"INPUT": np.zeros((1, 300, 300, 3), np.uint8)}, OUTPUTS),
                client.infer("no_such_model", {"INPUT": np.zeros((1, 4), np.uint8)}, OUTPUTS),
                wrong.infer("nanodet", {"INPUT": np.zeros((1, 416, 416, 3), np.uint8)}, OUTPUTS),
            ):
                try:
                    await call
                except Exception as exc:  # noqa: BLE001  # each is checked below
                    errors.append(exc)
            # the client still answers after the errors, on a kept connection
            ok = await client.infer("nanodet", {"INPUT": np.zeros((1, 416, 416, 3), np.uint8)}, OUTPUTS)
            assert ok["SCORES"].shape == (1, 1000)
        finally:
            await client.close()
            await wrong.close()
        return errors

    shape, unknown, unreachable = asyncio.run(go())
    assert isinstance(shape, InvalidArgument) and "nanodet" in str(shape), shape
    assert isinstance(unknown, NotFound) and "no_such_model" in str(unknown), unknown
    assert isinstance(unreachable, UpstreamUnavailable) and "retry later" in str(unreachable), unreachable


def test_over_http_a_triton_that_forgot_our_regions_is_answered_and_gets_new_ones(stack: Stack) -> None:
    image = np.random.default_rng(4).integers(0, 256, (1, 416, 416, 3), dtype=np.uint8)
    token = stack.settings.internal_token_file.read_bytes().strip()

    async def go() -> tuple[list[dict[str, np.ndarray]], list[str], list[str]]:
        client = http_client(stack)
        raw = triton_aio.InferenceServerClient(stack.settings.triton_grpc_url)
        try:
            first = await client.infer("nanodet", {"INPUT": image}, OUTPUTS)
            before = [p.name for p in our_regions()]
            for name in before:
                await raw.unregister_system_shared_memory(name, headers=triton_headers(token))
            second = await client.infer("nanodet", {"INPUT": image}, OUTPUTS)  # in the request, forgets
            third = await client.infer("nanodet", {"INPUT": image}, OUTPUTS)  # a new region
            after = [p.name for p in our_regions()]
            return [first, second, third], before, after
        finally:
            await client.close()
            await raw.close()

    results, before, after = asyncio.run(go())
    assert len(before) == 1 and len(after) == 1 and before != after
    for later in results[1:]:
        for name in OUTPUTS:
            np.testing.assert_array_equal(later[name], results[0][name])
    assert not our_regions()
