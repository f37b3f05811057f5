"""fovea.classify.replicas: the replicas' addresses from a resolver, all-or-nothing calls on each (at once),
and the Triton calls themselves against addresses where nothing listens (the edge: no Triton here)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

import pytest
from pydantic import ValidationError

from fovea.classify.config import ClassifySettings
from fovea.classify.replicas import TritonReplicas, grpc_port, on_each, on_each_sync, replica_urls, settle
from fovea.classify.tasks import open_replicas
from fovea.common.errors import DeadlineExceeded, NotFound, UpstreamUnavailable

V4, V6, TCP = socket.AF_INET, socket.AF_INET6, socket.SOCK_STREAM


def resolver(*addresses: tuple[socket.AddressFamily, str]) -> Any:
    """A ``getaddrinfo`` answering ``addresses`` for any name, recording what it was asked."""
    asked: list[tuple[Any, ...]] = []

    def resolve(host: str, port: int, **kwargs: Any) -> list[tuple[Any, ...]]:
        asked.append((host, port, kwargs))
        return [
            (family, TCP, 6, "", (addr, port) if family == V4 else (addr, port, 0, 0))
            for family, addr in addresses
        ]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


def test_grpc_port() -> None:
    assert grpc_port("triton:8001") == 8001
    assert grpc_port("[::1]:9001") == 9001
    for bad in ("triton", "triton:", "triton:http", "triton:0", "triton:70000"):
        with pytest.raises(ValueError, match="has no port"):
            grpc_port(bad)


def test_replica_urls_every_address_once_sorted_ipv4_first() -> None:
    # a dual-stack answer: three pods, one listed twice, each also with an IPv6 address
    resolve = resolver(
        (V4, "10.0.0.10"), (V6, "fd00::10"), (V4, "10.0.0.9"), (V4, "10.0.0.10"), (V4, "10.0.1.2")
    )
    # numeric order, not text order ("10.0.0.10" < "10.0.0.9" as text)
    assert replica_urls("triton-headless.fovea.svc", 8001, resolve) == [
        "10.0.0.9:8001",
        "10.0.0.10:8001",
        "10.0.1.2:8001",
    ]
    assert resolve.asked == [("triton-headless.fovea.svc", 8001, {"type": TCP})]


def test_replica_urls_ipv6_only_cluster() -> None:
    resolve = resolver((V6, "fd00::b"), (V6, "fd00::a"), (V6, "fe80::1%eth0"))
    assert replica_urls("triton-headless", 8001, resolve) == [
        "[fd00::a]:8001",
        "[fd00::b]:8001",
        "[fe80::1]:8001",
    ]


def test_replica_urls_localhost_is_one_server() -> None:
    """The real resolver: localhost may be 127.0.0.1 and ::1, both the same local Triton."""
    assert replica_urls("localhost", 8001) in (["127.0.0.1:8001"], ["[::1]:8001"])


def test_replica_urls_unresolvable_or_empty_is_unavailable(caplog: pytest.LogCaptureFixture) -> None:
    def fails(host: str, port: int, **kwargs: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(UpstreamUnavailable, match="does not resolve"):
        replica_urls("triton-headless.nowhere", 8001, fails)
    assert "triton-headless.nowhere" in caplog.text
    with pytest.raises(UpstreamUnavailable, match="no replica is ready"):
        replica_urls("triton-headless", 8001, resolver())


def test_settle_all_or_nothing(caplog: pytest.LogCaptureFixture) -> None:
    settle("load of model 'x'", [("10.0.0.1:8001", None), ("10.0.0.2:8001", None)])
    with pytest.raises(NotFound) as raised:
        settle(
            "load of model 'x'",
            [
                ("10.0.0.1:8001", None),
                ("10.0.0.2:8001", NotFound("model 'x' in Triton at 10.0.0.2:8001: gone")),
            ],
        )
    assert str(raised.value) == "load of model 'x' failed on 1 of 2 Triton replicas (see the classify log)"
    assert "10.0.0.2:8001" in caplog.text  # the log names the replica, the caller's message does not
    # UNAVAILABLE wins (the worker's task retries it), whatever the order
    with pytest.raises(UpstreamUnavailable, match="failed on 2 of 3"):
        settle(
            "load",
            [("a:1", DeadlineExceeded("slow")), ("b:1", None), ("c:1", UpstreamUnavailable("down"))],
        )
    with pytest.raises(KeyError):  # a bug stays itself
        settle("load", [("a:1", NotFound("x")), ("b:1", KeyError("bug"))])
    with pytest.raises(ValueError, match="no replicas"):
        settle("load", [])


async def test_on_each_calls_every_replica_at_once() -> None:
    urls = ["10.0.0.1:8001", "10.0.0.2:8001"]
    started: list[str] = []
    both = asyncio.Event()

    async def call(url: str) -> None:
        started.append(url)
        if len(started) == len(urls):
            both.set()
        await asyncio.wait_for(both.wait(), 5)  # returns only if the other call started meanwhile

    await on_each(urls, "load", call)
    assert sorted(started) == urls

    async def second_fails(url: str) -> None:
        if url == urls[1]:
            raise UpstreamUnavailable(f"Triton at {url} is unavailable")

    with pytest.raises(UpstreamUnavailable, match="failed on 1 of 2"):
        await on_each(urls, "load", second_fails)


def test_on_each_sync_calls_every_replica_at_once() -> None:
    urls = ["10.0.0.1:8001", "10.0.0.2:8001", "10.0.0.3:8001"]
    barrier = threading.Barrier(len(urls), timeout=5)  # broken (an error) unless all three run at once
    seen: list[str] = []

    def call(url: str) -> None:
        barrier.wait()
        seen.append(url)

    on_each_sync(urls, "load", call)
    assert sorted(seen) == urls

    def first_not_found(url: str) -> None:
        if url == urls[0]:
            raise NotFound("unknown model")

    with pytest.raises(NotFound, match="failed on 1 of 3"):
        on_each_sync(urls, "load", first_not_found)


# ---- the Triton calls, at loopback addresses where nothing listens (port 9, discard): each is UNAVAILABLE

NOBODY = resolver((V4, "127.0.0.1"), (V4, "127.0.0.2"))


def test_load_model_fails_unless_every_replica_loads(caplog: pytest.LogCaptureFixture) -> None:
    replicas = TritonReplicas("triton-headless", "triton:9", resolve=NOBODY)
    assert replicas.urls() == ["127.0.0.1:9", "127.0.0.2:9"]
    with caplog.at_level(logging.WARNING), pytest.raises(UpstreamUnavailable) as raised:
        replicas.load_model("trained_x", 2, timeout_s=5)
    assert "failed on 2 of 2 Triton replicas" in str(raised.value)
    assert "127.0.0" not in str(raised.value)
    assert "127.0.0.1:9" in caplog.text and "127.0.0.2:9" in caplog.text


async def test_unload_and_readiness_on_every_replica() -> None:
    replicas = TritonReplicas("triton-headless", "triton:9", resolve=NOBODY)
    with pytest.raises(UpstreamUnavailable, match="unload of model 'trained_x' failed on 2 of 2"):
        await replicas.unload_model("trained_x", timeout_s=5)
    assert not await replicas.is_model_ready("trained_x", "1")
    nowhere = TritonReplicas("triton-headless", "triton:9", resolve=resolver())
    assert not await nowhere.is_model_ready("trained_x", "1")


def test_setting() -> None:
    assert ClassifySettings().triton_replicas_dns == ""
    assert open_replicas(ClassifySettings(), None) is None  # the local stack: triton_url alone
    settings = ClassifySettings(triton_replicas_dns="triton-headless.fovea.svc", triton_url="triton:8001")
    replicas = open_replicas(settings, b"token")
    assert replicas is not None and replicas.port == 8001 and replicas.dns_name == "triton-headless.fovea.svc"
    for bad in ("triton headless", "http://triton", "a" * 254):
        with pytest.raises(ValidationError):
            ClassifySettings(triton_replicas_dns=bad)
    with pytest.raises(ValueError, match="has no port"):
        open_replicas(ClassifySettings(triton_replicas_dns="triton-headless", triton_url="triton"), None)
