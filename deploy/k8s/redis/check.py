"""redis.sh checked without a cluster: the processes deploy/k8s/redis.yaml runs (two Redis pods, three Sentinels),
each in a network namespace of its own whose /etc/hosts answers the pods' DNS names as the headless Services
would, taken through what the manifests promise. Run as root (about a minute); prints a JSON summary last, exit 0
when every step held:

1. first start: redis-0 primary, redis-1 its replica, the Sentinels know each other and the replica;
2. a client in the services' way (``fovea.common.redis_client``, the URL of deploy/k8s/services.yaml) writes, and
   ``WAIT 1`` sees the replica;
3. a planned stop of the primary (pre-stop: SENTINEL FAILOVER): redis-1 takes over, redis-0 restarts as its
   replica;
4. the primary's host lost: the Sentinels promote redis-0; redis-1 comes back as a replica;
5. a Sentinel restarted with an empty folder learns the current primary from the others;
6. the client writes again, acknowledged by the replica.

    python deploy/k8s/redis/check.py      (root: network namespaces; Debian's redis-server 7.0 on the PATH)

Uses deploy/multihost/hosts.py with a bridge and subnet of its own (fovea-k8s0, 10.78.0.0/24), so it can run
beside ``make test-multihost``.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "deploy" / "multihost"))
import hosts  # noqa: E402 - deploy/multihost is not a package

hosts.BRIDGE = "fovea-k8s0"
hosts.SUBNET = "10.78.0"
hosts.ROOT_IP = "10.78.0.1"

SCRIPT = REPO / "deploy" / "k8s" / "redis" / "redis.sh"
NAMESPACE = "fovea"
SUFFIX = f"{NAMESPACE}.svc.cluster.local"
MASTER = "fovea"
# pod -> (namespace-host name, IP, headless Service)
PODS = {
    "redis-0": ("kr0", "10.78.0.10", "redis"),
    "redis-1": ("kr1", "10.78.0.11", "redis"),
    "redis-sentinel-0": ("ks0", "10.78.0.20", "redis-sentinel"),
    "redis-sentinel-1": ("ks1", "10.78.0.21", "redis-sentinel"),
    "redis-sentinel-2": ("ks2", "10.78.0.22", "redis-sentinel"),
    "client": ("kcl", "10.78.0.30", ""),
}


def fqdn(pod: str) -> str:
    return f"{pod}.{PODS[pod][2]}.{SUFFIX}"


def ip_of(name: str) -> str:
    """The IP of a pod named by its DNS name (as the Sentinels answer)."""
    pod = name.split(".")[0]
    return PODS[pod][1]


def services_url(password: str) -> str:
    """The faces service's Redis URL from deploy/k8s/services.yaml, the password put in as Kubernetes would."""
    text = (REPO / "deploy" / "k8s" / "services.yaml").read_text()
    match = re.search(r"name: FOVEA_FACES_REDIS_URL.*\n\s+value: (\S+)", text)
    if match is None:
        raise SystemExit("no FOVEA_FACES_REDIS_URL in deploy/k8s/services.yaml")
    return match.group(1).replace("$(REDIS_PASSWORD)", password)


CLIENT = """
import sys
from fovea.common.redis_client import connect_sync
client = connect_sync(sys.argv[1], socket_timeout=3)
client.set("fovea:check", sys.argv[2])
acknowledged = client.execute_command("WAIT", 1, 2000)
host = client.connection_pool.get_master_address()[0]
print(client.get("fovea:check").decode(), acknowledged, host)
"""


class Cluster:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.password = secrets.token_hex(16)
        self.hosts = {pod: hosts.Host(name, ip) for pod, (name, ip, _) in PODS.items()}
        self.etc: list[Path] = []

    def hosts_files(self) -> None:
        """/etc/netns/<netns>/hosts: `ip netns exec` mounts it over /etc/hosts, the pods' DNS."""
        lines = ["127.0.0.1 localhost"]
        for pod, (_, ip, service) in PODS.items():
            if service:
                lines.append(f"{ip} {fqdn(pod)} {pod}.{service}")
        for host in self.hosts.values():
            folder = Path("/etc/netns") / host.netns
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "hosts").write_text("\n".join(lines) + "\n")
            self.etc.append(folder)

    def remove_hosts_files(self) -> None:
        for folder in self.etc:
            shutil.rmtree(folder, ignore_errors=True)

    def env(self, pod: str) -> dict[str, str]:
        folder = self.work / pod
        for sub in ("data", "run", "sentinel"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "REDIS_PASSWORD": self.password,
            "POD_NAME": pod,
            "POD_NAMESPACE": NAMESPACE,
            "REDIS_PODS": "2",
            "REDIS_DATA_DIR": str(folder / "data"),
            "REDIS_RUN_DIR": str(folder / "run"),
            "SENTINEL_DIR": str(folder / "sentinel"),
            "REDIS_MAXMEMORY": "64mb",
        }

    def start(self, pod: str) -> None:
        mode = "sentinel" if pod.startswith("redis-sentinel") else "server"
        self.hosts[pod].start(mode, ["sh", str(SCRIPT), mode], self.env(pod), self.work)

    def run_script(self, pod: str, action: str) -> int:
        command = ["ip", "netns", "exec", self.hosts[pod].netns, "sh", str(SCRIPT), action]
        return subprocess.run(command, env=self.env(pod), capture_output=True, check=False).returncode

    def redis(self, pod: str, port: int = 6379) -> redis.Redis:
        return redis.Redis(
            PODS[pod][1], port, password=self.password, socket_timeout=1, socket_connect_timeout=1
        )

    def role(self, pod: str) -> str | None:
        try:
            return str(self.redis(pod).info("replication")["role"])
        except redis.RedisError:
            return None

    def link_up(self, pod: str) -> bool:
        try:
            return self.redis(pod).info("replication").get("master_link_status") == "up"
        except redis.RedisError:
            return False

    def primary(self, sentinel: str = "") -> str | None:
        """The pod the Sentinels name primary (the first that answers, or ``sentinel``)."""
        for name in [sentinel] if sentinel else [p for p in PODS if p.startswith("redis-sentinel")]:
            try:
                found = self.redis(name, 26379).execute_command("SENTINEL", "get-master-addr-by-name", MASTER)
            except redis.RedisError:
                continue
            if found:
                return str(found[0].decode()).split(".")[0]
        return None

    def sentinel_view(self, sentinel: str) -> tuple[int, int]:
        """(other Sentinels, replicas) that ``sentinel`` knows of."""
        try:
            master = self.redis(sentinel, 26379).sentinel_master(MASTER)
        except redis.RedisError:
            return (-1, -1)
        return (int(master["num-other-sentinels"]), int(master["num-slaves"]))

    def client(self, value: str) -> list[str]:
        """A write through the Sentinels as a service makes it, from a namespace of its own: [value, acks, host]."""
        command = ["ip", "netns", "exec", self.hosts["client"].netns, sys.executable, "-c", CLIENT]
        proc = subprocess.run(
            [*command, services_url(self.password), value], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            return ["error", proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""]
        return proc.stdout.split()


def wait_for(what: str, ready: Callable[[], bool], timeout_s: float) -> float:
    start = time.monotonic()
    while not ready():
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.2)
    return round(time.monotonic() - start, 1)


def run(work: Path) -> dict[str, Any]:
    cluster = Cluster(work)
    summary: dict[str, Any] = {}
    cluster.hosts_files()
    try:
        with hosts.network(list(cluster.hosts.values())):
            # 1. first start, as the StatefulSets do it: the Sentinels in parallel, redis-0 then redis-1
            for pod in ("redis-sentinel-0", "redis-sentinel-1", "redis-sentinel-2", "redis-0"):
                cluster.start(pod)
            wait_for("redis-0 ready", lambda: cluster.run_script("redis-0", "ready") == 0, 30)
            cluster.start("redis-1")
            summary["first_start"] = {
                "replica_linked_s": wait_for("redis-1 replicating", lambda: cluster.link_up("redis-1"), 30),
                "primary": cluster.primary(),
            }
            wait_for(
                "the Sentinels know each other and the replica",
                lambda: all(
                    cluster.sentinel_view(s) == (2, 1)
                    for s in ("redis-sentinel-0", "redis-sentinel-1", "redis-sentinel-2")
                ),
                30,
            )
            # 2. a service's write
            summary["write"] = cluster.client("one")

            # 3. planned stop of the primary: pre-stop hands over, the pod restarts as a replica
            start = time.monotonic()
            cluster.run_script("redis-0", "pre-stop")
            summary["planned"] = {
                "pre_stop_s": round(time.monotonic() - start, 1),
                "primary": cluster.primary(),
                "redis-0_before_stop": cluster.role("redis-0"),  # it follows the new primary at once
            }
            cluster.hosts["redis-0"].kill()
            cluster.hosts["redis-0"].processes.clear()
            cluster.hosts["redis-0"].link()
            cluster.start("redis-0")
            summary["planned"]["rejoined_s"] = wait_for(
                "redis-0 back as a replica", lambda: cluster.link_up("redis-0"), 30
            )
            summary["planned"]["redis-0"] = cluster.role("redis-0")

            # 4. the primary's host lost (redis-1 now)
            lost = time.monotonic()
            cluster.hosts["redis-1"].kill()
            summary["failover"] = {
                "failover_s": wait_for("failover", lambda: cluster.primary() == "redis-0", 60),
                "write_without_replica": cluster.client("two"),
            }
            time.sleep(max(0.0, 5 - (time.monotonic() - lost)))
            cluster.hosts["redis-1"].processes.clear()
            cluster.hosts["redis-1"].link()
            cluster.start("redis-1")
            summary["failover"]["rejoined_s"] = wait_for(
                "redis-1 back as a replica", lambda: cluster.link_up("redis-1"), 60
            )

            # 5. a Sentinel restarted with nothing: it asks the others
            cluster.hosts["redis-sentinel-0"].kill()
            shutil.rmtree(work / "redis-sentinel-0" / "sentinel")
            cluster.hosts["redis-sentinel-0"].processes.clear()
            cluster.hosts["redis-sentinel-0"].link()
            cluster.start("redis-sentinel-0")
            wait_for("redis-sentinel-0 answers", lambda: cluster.primary("redis-sentinel-0") is not None, 30)
            summary["sentinel_restart"] = {"primary": cluster.primary("redis-sentinel-0")}
            wait_for(
                "redis-sentinel-0 sees the others and the replica",
                lambda: cluster.sentinel_view("redis-sentinel-0") == (2, 1),
                30,
            )

            # 6. the service writes again, the replica acknowledges
            summary["write_after"] = cluster.client("three")
            summary["kept"] = (
                cluster.redis("redis-1").get("fovea:check") == b"three" and cluster.role("redis-1") == "slave"
            )
    finally:
        cluster.remove_hosts_files()
    return summary


def main() -> int:
    if shutil.which("ip") is None or shutil.which("redis-server") is None:
        print("needs iproute2 (ip netns), redis-server and root", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="fovea-k8s-redis-"))
    for pod in PODS:
        (work / pod).mkdir()
    subprocess.run(["chmod", "-R", "a+rwx", str(work)], check=True)
    try:
        summary = run(work)
    except Exception:
        for log in sorted(work.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text()[-1500:]}", file=sys.stderr)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ok = (
        summary["first_start"]["primary"] == "redis-0"
        and summary["write"][:2] == ["one", "1"]
        and summary["planned"]["primary"] == "redis-1"
        and summary["planned"]["redis-0_before_stop"] == "slave"
        and summary["planned"]["redis-0"] == "slave"
        and summary["failover"]["write_without_replica"][:2] == ["two", "0"]
        and summary["sentinel_restart"]["primary"] == "redis-0"
        and summary["write_after"][:2] == ["three", "1"]
        and summary["kept"]
    )
    print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
