"""Model control on every Triton replica: a trained version is loaded (and a deleted classifier unloaded) on each.

In Kubernetes Triton scales to several replicas behind one Service; a ``load_model`` through the Service
reaches one of them. With ``FOVEA_CLASSIFY_TRITON_REPLICAS_DNS`` (a headless Service's name, whose A records
are the ready replicas' pod IPs) the worker and the classify service resolve the name at each call and send
the call to every address, on the port of ``FOVEA_CLASSIFY_TRITON_URL``, all at once, each with its deadline.
The call succeeds only when every replica succeeded; a failure names the replica's address in the log, and
the caller gets how many replicas failed (no addresses). A replica that starts later loads the repository
as it is then (``--load-model=*``), the new version included: it is written before the calls.

Unset (the local stack, compose), the services call ``FOVEA_CLASSIFY_TRITON_URL`` alone, as before.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fovea.common.errors import FoveaError, UpstreamUnavailable
from fovea.common.triton import SyncTritonClient, TritonClient

log = logging.getLogger(__name__)

Resolver = Callable[..., Sequence[tuple[Any, ...]]]
"""``socket.getaddrinfo``'s signature and result: ``(family, type, proto, canonname, sockaddr)`` tuples."""


def grpc_port(triton_url: str) -> int:
    """The port of a Triton ``host:port`` (``[v6]:port`` too); ``ValueError`` when it has none."""
    _, sep, port = triton_url.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"Triton URL {triton_url!r} has no port (host:port)")
    return int(port)


def replica_urls(dns_name: str, port: int, resolve: Resolver = socket.getaddrinfo) -> list[str]:
    """``host:port`` of every address ``dns_name`` resolves to, sorted, each once.

    One address family: IPv4 where the name has any IPv4 address (a dual-stack pod has one of each, and
    ``localhost`` is 127.0.0.1 and ::1 for the same server), else IPv6 (written ``[addr]:port``).

    Raises:
        UpstreamUnavailable: the name does not resolve, or to no address (no replica is ready).
    """
    try:
        infos = resolve(dns_name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        log.warning("Triton replicas: %r does not resolve: %s", dns_name, exc)
        raise UpstreamUnavailable("the Triton replicas' DNS name does not resolve") from exc
    v4 = {info[4][0] for info in infos if info[0] == socket.AF_INET}
    v6 = {info[4][0].split("%")[0] for info in infos if info[0] == socket.AF_INET6}
    if v4:
        return [f"{a}:{port}" for a in sorted(v4, key=socket.inet_aton)]
    if v6:
        return [f"[{a}]:{port}" for a in sorted(v6, key=lambda a: socket.inet_pton(socket.AF_INET6, a))]
    log.warning("Triton replicas: %r resolves to no address", dns_name)
    raise UpstreamUnavailable("the Triton replicas' DNS name resolves to no address (no replica is ready)")


def settle(what: str, outcomes: Sequence[tuple[str, BaseException | None]]) -> None:
    """All or nothing: return when every replica succeeded (``None``), else log each failure with its
    address and raise one error for the caller, naming how many replicas failed and none of them.

    The error's class is the first failure's (its gRPC status), UNAVAILABLE first if any replica was
    unavailable (the worker's task retries those). An exception that is no domain error (a bug) is
    raised as it is, after the log.
    """
    if not outcomes:
        raise ValueError("no replicas")
    failed = [(url, exc) for url, exc in outcomes if exc is not None]
    for url, exc in failed:
        log.warning("Triton replica %s: %s failed: %s", url, what, exc)
    if not failed:
        return
    for _, exc in failed:
        if not isinstance(exc, FoveaError):
            raise exc
    kinds = [type(exc) for _, exc in failed]
    kind = UpstreamUnavailable if UpstreamUnavailable in kinds else kinds[0]
    raise kind(f"{what} failed on {len(failed)} of {len(outcomes)} Triton replicas (see the classify log)")


async def on_each(urls: Sequence[str], what: str, call: Callable[[str], Awaitable[None]]) -> None:
    """Run ``call(url)`` for every replica at once; :func:`settle` the outcomes."""
    results = await asyncio.gather(*(call(url) for url in urls), return_exceptions=True)
    settle(
        what,
        [(url, r if isinstance(r, BaseException) else None) for url, r in zip(urls, results, strict=True)],
    )


def on_each_sync(urls: Sequence[str], what: str, call: Callable[[str], None]) -> None:
    """:func:`on_each` for blocking calls (the worker's thread): one thread per replica."""
    with ThreadPoolExecutor(max_workers=max(len(urls), 1), thread_name_prefix="triton-replica") as pool:
        futures = [pool.submit(call, url) for url in urls]
        settle(what, [(url, f.exception()) for url, f in zip(urls, futures, strict=True)])


class TritonReplicas:
    """``load_model`` / ``unload_model`` / ``is_model_ready`` on every replica ``dns_name`` resolves to.

    Each call resolves the name again (replicas come and go) and opens a short-lived client per replica.
    """

    def __init__(
        self,
        dns_name: str,
        triton_url: str,
        *,
        token: bytes | str | None = None,
        resolve: Resolver = socket.getaddrinfo,
    ) -> None:
        self.dns_name = dns_name
        self.port = grpc_port(triton_url)
        self.token = token
        self.resolve = resolve

    def urls(self) -> list[str]:
        return replica_urls(self.dns_name, self.port, self.resolve)

    # ---- the worker (blocking)
    def load_model(self, model: str, version: int | None, timeout_s: float) -> None:
        """Load (or reload) ``model`` on every replica, then check ``version`` is ready on each
        (``None``: no check, e.g. reloading after a version was discarded)."""

        def load(url: str) -> None:
            client = SyncTritonClient(url, timeout_s=timeout_s, token=self.token)
            try:
                client.load_model(model, timeout_s=timeout_s)
                if version is not None and not client.is_model_ready(model, str(version)):
                    raise UpstreamUnavailable(
                        f"version {version} of model {model!r} is not ready after its load"
                    )
            finally:
                client.close()

        urls = self.urls()
        on_each_sync(urls, f"load of model {model!r}", load)
        log.info("model %s loaded on %d Triton replicas: %s", model, len(urls), ", ".join(urls))

    # ---- the classify service (async)
    def _client(self, url: str, timeout_s: float) -> TritonClient:
        return TritonClient(url, timeout_s=timeout_s, shared_memory=False, token=self.token)

    async def unload_model(self, model: str, timeout_s: float = 60.0) -> None:
        """Unload ``model`` (every version) from every replica."""

        async def unload(url: str) -> None:
            client = self._client(url, timeout_s)
            try:
                await client.unload_model(model, timeout_s=timeout_s)
            finally:
                await client.close()

        urls = await asyncio.to_thread(self.urls)
        await on_each(urls, f"unload of model {model!r}", unload)

    async def is_model_ready(self, model: str, version: str = "") -> bool:
        """Whether ``model`` (``version``) is ready on every replica (False when the name does not resolve)."""

        async def ready(url: str) -> None:
            client = self._client(url, 2.0)
            try:
                if not await client.is_model_ready(model, version):
                    raise UpstreamUnavailable(f"model {model!r} version {version or '(latest)'} is not ready")
            finally:
                await client.close()

        try:
            urls = await asyncio.to_thread(self.urls)
            await on_each(urls, f"readiness of model {model!r}", ready)
        except UpstreamUnavailable:
            return False
        return True


__all__ = ["Resolver", "TritonReplicas", "grpc_port", "on_each", "on_each_sync", "replica_urls", "settle"]
