"""redis_client with Redis behind Sentinel, against real processes: a primary, a replica and three Sentinels
on free loopback ports. The clients follow a failover; ``WAIT`` acknowledges a write only once the replica
has it; a ``redis+sentinel://`` URL parses as documented and becomes Celery's broker URL."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from ports import free_port

from fovea.common import redis_client
from fovea.common.redis_client import NotReplicated, SentinelTarget, celery_broker, check_replicas


def test_a_sentinel_url_parses() -> None:
    target = SentinelTarget.parse(
        "redis+sentinel://:s3cret@10.0.0.1:26379,[::1]:26380/fovea/2?sentinel_password=x"
    )
    assert target == SentinelTarget((("10.0.0.1", 26379), ("::1", 26380)), "fovea", 2, "s3cret", "x")
    assert SentinelTarget.parse("redis://127.0.0.1:6379/0") is None
    assert SentinelTarget.parse("redis+sentinel://h:1/fovea").db == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://h1:26379/", "the path must be /<master name>[/<db>]"),
        ("redis+sentinel://h1/fovea", "each Sentinel must be host:port"),
        ("redis+sentinel://h1:26379/fovea/x", "the database must be a number"),
    ],
)
def test_a_bad_sentinel_url_says_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        SentinelTarget.parse(url)


def test_celery_gets_kombus_sentinel_form() -> None:
    broker, options = celery_broker("redis+sentinel://:pw@a:1,b:2/fovea/3")
    assert broker == "sentinel://:pw@a:1/3;sentinel://:pw@b:2/3"
    assert options == {"master_name": "fovea"}
    assert celery_broker("redis://h:6379/0") == ("redis://h:6379/0", {})


def test_too_few_replicas_is_an_error_naming_them() -> None:
    check_replicas(1, 1, 100)
    with pytest.raises(NotReplicated, match="reached 0 of the 1 Redis replica"):
        check_replicas(0, 1, 100)


@dataclass
class Cluster:
    primary: int
    replica: int
    sentinels: list[int]
    processes: dict[str, subprocess.Popen[bytes]]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinels)
        return f"redis+sentinel://{hosts}/fovea/0"

    def knows_everyone(self, port: int) -> bool:
        """Whether the Sentinel on ``port`` knows the two others and the replica."""
        raw = redis.Redis(port=port, socket_timeout=1).execute_command("SENTINEL", "master", "fovea")
        fields = dict(zip(raw[::2], raw[1::2], strict=True)) if isinstance(raw, list) else raw
        fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
        return int(fields["num-other-sentinels"]) == 2 and int(fields["num-slaves"]) >= 1

    def named_primary(self) -> int:
        client = redis.Redis(port=self.sentinels[1], socket_timeout=1)
        return int(client.execute_command("SENTINEL", "get-master-addr-by-name", "fovea")[1])


def wait(what: str, ok: object, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if ok():  # type: ignore[operator]
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (make setup installs it)")
    primary, replica = free_port(), free_port()
    sentinels = [free_port() for _ in range(3)]
    processes: dict[str, subprocess.Popen[bytes]] = {}
    base = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    processes["primary"] = subprocess.Popen([exe, "--port", str(primary), *base], stdout=subprocess.DEVNULL)
    processes["replica"] = subprocess.Popen(
        [exe, "--port", str(replica), *base, "--replicaof", "127.0.0.1", str(primary)],
        stdout=subprocess.DEVNULL,
    )
    for i, port in enumerate(sentinels):
        conf = tmp_path / f"sentinel-{i}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
            f"sentinel monitor fovea 127.0.0.1 {primary} 2\n"
            "sentinel down-after-milliseconds fovea 1000\nsentinel failover-timeout fovea 5000\n"
        )
        processes[f"sentinel{i}"] = subprocess.Popen(
            [exe, str(conf), "--sentinel"], stdout=subprocess.DEVNULL
        )
    found = Cluster(primary, replica, sentinels, processes)
    try:
        wait(
            "replica in sync",
            lambda: redis.Redis(port=replica).info("replication")["master_link_status"] == "up",
        )
        wait("sentinels", lambda: found.named_primary() == primary)
        # A failover needs a quorum of Sentinels that know each other and the replica (they learn it from
        # each other's hello messages, every 2 s): a primary lost before that is never failed over.
        wait(
            "sentinels that know each other and the replica",
            lambda: all(found.knows_everyone(p) for p in sentinels),
        )
        yield found
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


def test_sync_and_async_clients_follow_a_failover(cluster: Cluster) -> None:
    sync = redis_client.connect_sync(cluster.url, socket_timeout=2)
    sync.set("before", "1")
    assert sync.execute_command("WAIT", 1, 2000) == 1  # the replica has it
    cluster.processes["primary"].kill()
    wait("failover", lambda: cluster.named_primary() == cluster.replica, timeout_s=90)  # ~2 s when idle
    wait("writes again", lambda: sync.set("after", "2"), timeout_s=60)
    assert sync.get("before") == b"1"  # acknowledged before the loss: still there

    async def read() -> bytes | None:
        client = redis_client.connect(cluster.url, socket_timeout=2)
        try:
            return await client.get("after")
        finally:
            await client.aclose()

    import asyncio

    assert asyncio.run(read()) == b"2"


async def test_the_faces_store_waits_for_the_replica(cluster: Cluster) -> None:
    from fovea.faces.recognition.store import FaceStore

    store = FaceStore(cluster.url, min_replicas=1, replica_timeout_ms=2000)
    try:
        info, written = await store.create_gallery("g", 0.6, "dlib", {})
        assert written.seq >= 1
        cluster.processes["replica"].kill()  # nothing can acknowledge the next write
        from fovea.common.errors import UpstreamUnavailable

        with pytest.raises(UpstreamUnavailable, match="reached 0 of the 1 Redis replica"):
            await store.create_gallery("h", 0.6, "dlib", {})
    finally:
        await store.close()
