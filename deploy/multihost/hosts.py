"""Hosts of the multi-host check: Linux network namespaces on a bridge of our own, one address each.

A host is a network namespace with a veth pair into the bridge ``fovea-mh0`` (10.77.0.0/24; the root
namespace is 10.77.0.1 on the bridge itself, so the load generator reaches every host). Processes run in a
host with ``ip netns exec``, which ``exec``s the command: the pid we hold is the process itself. Killing a
host kills every process it runs (SIGKILL) and deletes its veth, as a machine that drops off the network.
Traffic stays between our own namespaces and loopback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BRIDGE = "fovea-mh0"
SUBNET = "10.77.0"
ROOT_IP = f"{SUBNET}.1"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


@dataclass
class Host:
    name: str
    ip: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    alive: bool = False

    @property
    def netns(self) -> str:
        return f"fovea-mh-{self.name}"

    @property
    def veth(self) -> str:
        return f"fmh-{self.name}"[:15]

    def up(self) -> None:
        """Create the namespace, its veth pair into the bridge and its address; loopback up."""
        sh("ip", "netns", "add", self.netns)
        self.link()

    def link(self) -> None:
        """The host's cable: a veth pair into the bridge, its address (again, after :meth:`kill`)."""
        sh("ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.netns)
        sh("ip", "link", "set", self.veth, "master", BRIDGE)
        sh("ip", "link", "set", self.veth, "up")
        sh("ip", "netns", "exec", self.netns, "ip", "addr", "add", f"{self.ip}/24", "dev", "eth0")
        sh("ip", "netns", "exec", self.netns, "ip", "link", "set", "eth0", "up")
        sh("ip", "netns", "exec", self.netns, "ip", "link", "set", "lo", "up")
        self.alive = True

    def start(
        self, name: str, command: Sequence[str], env: Mapping[str, str], logs: Path
    ) -> subprocess.Popen[bytes]:
        """Run ``command`` in this host, output to ``logs/<host>-<name>.log``."""
        log = open(logs / f"{self.name}-{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, *command],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def kill(self) -> None:
        """The host drops off: every process it runs killed at once, its link deleted."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        sh("ip", "link", "del", self.veth, check=False)
        self.alive = False

    def remove(self) -> None:
        if self.processes:
            self.kill()
        sh("ip", "netns", "del", self.netns, check=False)


@contextlib.contextmanager
def network(hosts: Sequence[Host]) -> Iterator[None]:
    """The bridge and every host, torn down on the way out (also after a failure or Ctrl-C)."""
    teardown(hosts)
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", f"{ROOT_IP}/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        for host in hosts:
            host.up()
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        teardown(hosts)


def teardown(hosts: Sequence[Host]) -> None:
    for host in hosts:
        host.remove()
    sh("ip", "link", "del", BRIDGE, check=False)


__all__ = ["BRIDGE", "ROOT_IP", "SUBNET", "Host", "network", "sh", "teardown"]
