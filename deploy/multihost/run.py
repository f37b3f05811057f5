"""``make test-multihost``: Fovea across hosts, through the loss of a Redis primary, of a service replica's
host and of a worker host mid-job, under a steady mixed load. Prints a JSON summary last.

Hosts (network namespaces on one bridge, ``hosts.py``):

    gw      10.77.0.10  gateway (spreads calls over the replicas, retries idempotent calls)
    svc1    10.77.0.21  detection, faces, style, classify, a style worker, a classify worker
    svc2    10.77.0.22  the same: the second replica of each
    triton  10.77.0.40  Triton (every service calls it over the network: no shared memory)
    r1      10.77.0.31  Redis primary + a Sentinel
    r2      10.77.0.32  Redis replica + a Sentinel
    r3      10.77.0.33  a Sentinel

Services find Redis through the Sentinels (``redis+sentinel://``), and the faces service answers a gallery
write only once the replica has it (``FOVEA_FACES_REDIS_MIN_REPLICAS=1``: ``WAIT``). The load (detect,
enroll, verify, door, style, classify) comes from the root namespace, through the gateway only.

The faults, in order:
1. the Redis primary's host is killed. Measured: the Sentinels' failover; how long doors DENY; every
   enrolment acknowledged before (and after) is still there. The host comes back 10 s after the failover, as
   a replaced machine would; its Redis rejoins as a replica (writes that need a replica wait for it).
2. a service replica's host (svc2) is killed while one of its workers runs a style job. Measured: the error
   rate of the load over the next 30 s; the job requeued by the surviving style service and completed once.

Run as root (network namespaces): ``make test-multihost`` or ``python deploy/multihost/run.py``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hosts import SUBNET, Host, network

from fovea.classify.v1 import classify_pb2, classify_pb2_grpc
from fovea.common.paths import model_repository
from fovea.common.v1 import common_pb2
from fovea.convert.samples import sample
from fovea.detection.v1 import detection_pb2, detection_pb2_grpc
from fovea.faces.v1 import faces_pb2, faces_pb2_grpc
from fovea.gateway.auth import add_key
from fovea.style.v1 import style_pb2, style_pb2_grpc

MASTER = "fovea"
GALLERY = "mh"
DOOR = "mh-door"
PY = [sys.executable, "-m", "fovea"]


def hosts() -> dict[str, Host]:
    return {
        "gw": Host("gw", f"{SUBNET}.10"),
        "svc1": Host("svc1", f"{SUBNET}.21"),
        "svc2": Host("svc2", f"{SUBNET}.22"),
        "triton": Host("triton", f"{SUBNET}.40"),
        "r1": Host("r1", f"{SUBNET}.31"),
        "r2": Host("r2", f"{SUBNET}.32"),
        "r3": Host("r3", f"{SUBNET}.33"),
    }


@dataclass
class Cluster:
    hosts: dict[str, Host]
    work: Path
    password: str = field(default_factory=lambda: secrets.token_hex(16))
    api_key: str = ""

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    @property
    def sentinel_url(self) -> str:
        sentinels = ",".join(f"{self.hosts[h].ip}:26379" for h in ("r1", "r2", "r3"))
        return f"redis+sentinel://:{self.password}@{sentinels}/{MASTER}/0"

    def prepare(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for name in ("internal-token", "challenge-secret"):
            path = self.work / name
            path.write_text(secrets.token_urlsafe(32) + "\n")
            path.chmod(0o600)
        self.api_key = add_key(self.work / "api-keys.json", "multihost", ["*"])
        (self.work / "doors.json").write_text(
            json.dumps({"doors": {DOOR: {"gallery": GALLERY, "pad": "off"}}})
        )

    # ------------------------------------------------------------------------------------------ processes
    def start_redis(self, name: str, replica_of: str | None) -> None:
        host = self.hosts[name]
        data = self.work / f"redis-{name}"
        data.mkdir(exist_ok=True)
        command = [
            shutil.which("redis-server") or "redis-server",
            "--port", "6379", "--bind", "0.0.0.0", "--protected-mode", "no",
            "--requirepass", self.password, "--masterauth", self.password,
            "--appendonly", "yes", "--save", "", "--dir", str(data),
        ]  # fmt: skip
        if replica_of:
            command += ["--replicaof", replica_of, "6379"]
        host.start("redis", command, {}, self.logs)

    def start_sentinel(self, name: str, primary: str | None = None) -> None:
        host = self.hosts[name]
        conf = self.work / f"sentinel-{name}.conf"
        conf.write_text(
            "\n".join(
                [
                    "port 26379",
                    "bind 0.0.0.0",
                    "protected-mode no",
                    f"dir {self.work}",
                    f"sentinel monitor {MASTER} {primary or self.hosts['r1'].ip} 6379 2",
                    f"sentinel auth-pass {MASTER} {self.password}",
                    f"sentinel down-after-milliseconds {MASTER} 2000",
                    f"sentinel failover-timeout {MASTER} 10000",
                    f"sentinel parallel-syncs {MASTER} 1",
                    "",
                ]
            )
        )
        server = shutil.which("redis-sentinel") or shutil.which("redis-server") or "redis-server"
        host.start("sentinel", [server, str(conf), "--sentinel"], {}, self.logs)

    def start_triton(self) -> None:
        host = self.hosts["triton"]
        env = {
            "FOVEA_TRITON_MODEL_REPOSITORY": str(model_repository()),
            "FOVEA_TRITON_USER_MODEL_REPOSITORY": str(self.work / "user-models"),
            "FOVEA_TRITON_WORK_DIR": str(self.work / "triton"),
            "FOVEA_TRITON_HOST": "0.0.0.0",
            "FOVEA_TRITON_INTERNAL_TOKEN_FILE": str(self.work / "internal-token"),
        }
        host.start("triton", [*PY, "triton"], env, self.logs)

    def service_env(self, prefix: str) -> dict[str, str]:
        return {
            f"FOVEA_{prefix}_HOST": "0.0.0.0",
            f"FOVEA_{prefix}_INTERNAL_TOKEN_FILE": str(self.work / "internal-token"),
            f"FOVEA_{prefix}_TRITON_URL": f"{self.hosts['triton'].ip}:8001",
            f"FOVEA_{prefix}_TRITON_HTTP_URL": f"{self.hosts['triton'].ip}:8000",  # inference requests
        }

    def start_services(self, name: str) -> None:
        host = self.hosts[name]
        repo = str(model_repository())
        user = str(self.work / "user-models")
        redis_url = self.sentinel_url
        detection = {**self.service_env("DETECTION"), "FOVEA_DETECTION_MODEL_REPOSITORY": repo,
                     "FOVEA_DETECTION_USER_MODEL_REPOSITORY": user}  # fmt: skip
        faces = {
            **self.service_env("FACES"),
            "FOVEA_FACES_REDIS_URL": redis_url,
            "FOVEA_FACES_REDIS_MIN_REPLICAS": "1",
            "FOVEA_FACES_CHALLENGE_SECRET_FILE": str(self.work / "challenge-secret"),
            "FOVEA_FACES_DOOR_POLICIES_FILE": str(self.work / "doors.json"),
        }
        style = {**self.service_env("STYLE"), "FOVEA_STYLE_REDIS_URL": redis_url}
        classify = {**self.service_env("CLASSIFY"), "FOVEA_CLASSIFY_REDIS_URL": redis_url,
                    "FOVEA_CLASSIFY_MODEL_REPOSITORY": repo, "FOVEA_CLASSIFY_TRAINED_REPOSITORY": user}  # fmt: skip
        host.start("detection", [*PY, "serve", "detection"], detection, self.logs)
        host.start("faces", [*PY, "serve", "faces"], faces, self.logs)
        host.start("style", [*PY, "serve", "style"], style, self.logs)
        host.start("classify", [*PY, "serve", "classify"], classify, self.logs)
        host.start("worker", [*PY, "worker"], style, self.logs)
        host.start("classify-worker", [*PY, "worker", "classify"], classify, self.logs)

    def start_gateway(self) -> None:
        replicas = [self.hosts["svc1"].ip, self.hosts["svc2"].ip]
        env = {
            "FOVEA_GATEWAY_HOST": "0.0.0.0",
            "FOVEA_GATEWAY_ALLOW_PLAINTEXT": "true",  # a test network of our own namespaces
            "FOVEA_GATEWAY_HTTP_PORT": "0",
            "FOVEA_GATEWAY_API_KEYS_FILE": str(self.work / "api-keys.json"),
            "FOVEA_GATEWAY_INTERNAL_TOKEN_FILE": str(self.work / "internal-token"),
            "FOVEA_GATEWAY_TRITON_URL": f"{self.hosts['triton'].ip}:8001",
        }
        for service, port in (("DETECTION", 50061), ("FACES", 50062), ("STYLE", 50063), ("CLASSIFY", 50064)):
            env[f"FOVEA_GATEWAY_{service}_ADDR"] = ",".join(f"{ip}:{port}" for ip in replicas)
        self.hosts["gw"].start("gateway", [*PY, "serve", "gateway"], env, self.logs)

    # ------------------------------------------------------------------------------------------ probes
    def primary(self) -> str | None:
        """The primary the Sentinels name now (asked of the first one that answers)."""
        for name in ("r2", "r3", "r1"):
            if not self.hosts[name].alive:
                continue
            try:
                sentinel = redis.Redis(self.hosts[name].ip, 26379, socket_timeout=1, socket_connect_timeout=1)
                found = sentinel.execute_command("SENTINEL", "get-master-addr-by-name", MASTER)
            except redis.RedisError:
                continue
            if found:
                return str(found[0].decode())
        return None

    def redis_at(self, ip: str) -> redis.Redis:
        return redis.Redis(ip, 6379, password=self.password, socket_timeout=2, socket_connect_timeout=2)


def serving(channel: grpc.Channel, service: str = "") -> bool:
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2
        )
    except grpc.RpcError:
        return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def wait_for(what: str, ready: Callable[[], bool], timeout_s: float) -> float:
    start = time.monotonic()
    while not ready():
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"{what} not ready within {timeout_s:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - start


# ---------------------------------------------------------------------------------------------- the load
@dataclass
class Outcome:
    at: float
    kind: str
    ok: bool
    detail: str = ""


class Load:
    """A steady mixed load through the gateway from ``threads`` threads; every call's outcome is kept."""

    KINDS = ("detect", "enroll", "verify", "door", "style", "classify")

    def __init__(self, channel: grpc.Channel, api_key: str, threads: int = 3) -> None:
        self.metadata = (("authorization", f"Bearer {api_key}"),)
        self.detection = detection_pb2_grpc.DetectionServiceStub(channel)
        self.faces = faces_pb2_grpc.FacesServiceStub(channel)
        self.style = style_pb2_grpc.StyleServiceStub(channel)
        self.classify = classify_pb2_grpc.ClassifyServiceStub(channel)
        self.dog = common_pb2.Image(data=sample("dog").read_bytes())
        self.obama = common_pb2.Image(data=sample("obama").read_bytes())
        self.obama2 = common_pb2.Image(data=sample("obama2").read_bytes())
        self.outcomes: list[Outcome] = []
        self.enrolled: list[str] = []  # acknowledged enrolments, in order
        self.jobs: list[str] = []  # acknowledged style jobs
        self.threads = threads
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._counter = 0
        self._workers: list[threading.Thread] = []

    def call(self, method: Any, request: Any, timeout: float = 10.0) -> Any:
        return method(request, timeout=timeout, metadata=self.metadata)

    def one(self, kind: str) -> str:
        if kind == "detect":
            self.call(self.detection.Detect, detection_pb2.DetectRequest(image=self.dog))
        elif kind == "enroll":
            with self._lock:
                self._counter += 1
                identity = f"e{self._counter:05d}"
            self.call(
                self.faces.Enroll,
                faces_pb2.EnrollRequest(gallery_id=GALLERY, identity_id=identity, photos=[self.obama]),
            )
            with self._lock:
                self.enrolled.append(identity)
        elif kind == "verify":
            self.call(
                self.faces.Verify,
                faces_pb2.VerifyRequest(gallery_id=GALLERY, identity_id="obama", photo=self.obama2),
            )
        elif kind == "door":
            reply = self.call(
                self.faces.VerifyAccess,
                faces_pb2.VerifyAccessRequest(
                    door_id=DOOR, claimed_identity_id="obama", frames=[self.obama2]
                ),
            )
            return faces_pb2.AccessDecision.Name(reply.decision) + ":" + reply.reason
        elif kind == "style":
            job = self.call(
                self.style.SubmitJob,
                style_pb2.SubmitJobRequest(content=self.dog, style_name="pastel-wash", max_side=96),
            )
            with self._lock:
                self.jobs.append(job.job_id)
        elif kind == "classify":
            self.call(self.classify.Classify, classify_pb2.ClassifyRequest(image=self.dog, top_k=1))
        return ""

    def _run(self, offset: int) -> None:
        i = offset
        while not self._stop.is_set():
            kind = self.KINDS[i % len(self.KINDS)]
            i += 1
            start = time.monotonic()
            try:
                detail = self.one(kind)
                ok = not detail.startswith("DENY")
            except grpc.RpcError as exc:
                ok, detail = False, f"{exc.code().name}: {exc.details()}"  # type: ignore[attr-defined]
            with self._lock:
                self.outcomes.append(Outcome(start, kind, ok, detail))
            self._stop.wait(0.05)

    def start(self) -> None:
        self._workers = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def window(self, start: float, end: float, kinds: tuple[str, ...] = KINDS) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if start <= o.at < end and o.kind in kinds]


def rate(outcomes: list[Outcome]) -> float:
    return round(sum(not o.ok for o in outcomes) / len(outcomes), 4) if outcomes else 0.0


def errors(outcomes: list[Outcome]) -> dict[str, int]:
    seen: dict[str, int] = {}
    for o in outcomes:
        if not o.ok:
            key = f"{o.kind} {o.detail[:90]}"
            seen[key] = seen.get(key, 0) + 1
    return dict(sorted(seen.items(), key=lambda kv: -kv[1])[:12])


# ---------------------------------------------------------------------------------------------- the run
def run(work: Path, warm_s: float, after_s: float) -> dict[str, Any]:
    cluster = Cluster(hosts(), work)
    cluster.prepare()
    summary: dict[str, Any] = {}
    with network(list(cluster.hosts.values())):
        started = time.monotonic()
        cluster.start_redis("r1", None)
        cluster.start_redis("r2", cluster.hosts["r1"].ip)
        for name in ("r1", "r2", "r3"):
            cluster.start_sentinel(name)
        cluster.start_triton()
        wait_for(
            "Redis replica",
            lambda: (
                cluster.redis_at(cluster.hosts["r2"].ip).info("replication").get("master_link_status") == "up"
            ),
            30,
        )
        wait_for("Triton", lambda: _http_ok(f"http://{cluster.hosts['triton'].ip}:8000/v2/health/ready"), 600)
        for name in ("svc1", "svc2"):
            cluster.start_services(name)
        cluster.start_gateway()
        gateway = grpc.insecure_channel(f"{cluster.hosts['gw'].ip}:50051")
        for name in ("svc1", "svc2"):
            for port in (50061, 50062, 50063, 50064):
                channel = grpc.insecure_channel(f"{cluster.hosts[name].ip}:{port}")
                wait_for(f"{name}:{port}", lambda channel=channel: serving(channel), 300)
        wait_for("gateway", lambda: serving(gateway), 120)
        summary["start_s"] = round(time.monotonic() - started, 1)

        load = Load(gateway, cluster.api_key)
        load.call(load.faces.CreateGallery, faces_pb2.CreateGalleryRequest(gallery_id=GALLERY))
        load.call(
            load.faces.Enroll,
            faces_pb2.EnrollRequest(gallery_id=GALLERY, identity_id="obama", photos=[load.obama]),
        )
        load.start()
        time.sleep(warm_s)
        summary["steady"] = {
            "calls": len(load.outcomes),
            "error_rate": rate(load.window(0, time.monotonic())),
        }

        # 1. the Redis primary's host goes away
        acknowledged_before = list(load.enrolled)
        killed = time.monotonic()
        cluster.hosts["r1"].kill()
        failover_s = wait_for("a Sentinel failover", lambda: cluster.primary() == cluster.hosts["r2"].ip, 60)
        grant_again = _first_after(load, killed, "door", lambda o: o.ok, timeout_s=60)
        time.sleep(10)  # the machine is replaced: it comes back and rejoins as a replica
        host = cluster.hosts["r1"]
        host.processes.clear()
        host.link()
        cluster.start_redis("r1", cluster.hosts["r2"].ip)
        cluster.start_sentinel("r1", cluster.hosts["r2"].ip)
        enroll_again = _first_after(load, time.monotonic(), "enroll", lambda o: o.ok, timeout_s=90)
        denied = [o for o in load.window(killed, grant_again or time.monotonic(), ("door",)) if not o.ok]
        summary["redis"] = {
            "failover_s": round(failover_s, 1),
            "doors_denied_s": round((grant_again or time.monotonic()) - killed, 1),
            "doors_denied": len(denied),
            "enrol_recovered_s": round(enroll_again - killed, 1) if enroll_again else None,
            "errors": errors(load.window(killed, time.monotonic())),
        }
        redis_failover_s = round((grant_again - killed) if grant_again else float("inf"), 1)
        time.sleep(5)

        # 2. a service replica's host goes away while its worker runs a style job
        job_id = _job_running_on(load, cluster, cluster.hosts["svc2"], timeout_s=120)
        killed = time.monotonic()
        cluster.hosts["svc2"].kill()
        time.sleep(after_s)
        window = load.window(killed, killed + after_s)
        summary["replica_kill"] = {
            "calls": len(window),
            "error_rate": rate(window),
            "errors": errors(window),
            "job": job_id,
        }
        load.stop()

        # what is left: every acknowledged enrolment, every acknowledged job done once
        store = cluster.redis_at(cluster.primary() or cluster.hosts["r2"].ip)
        lost = _lost_enrolments(load)
        jobs = _jobs_once(load, store, job_id, timeout_s=240)
        summary["enrolments"] = {
            "acknowledged": len(load.enrolled),
            "before_failover": len(acknowledged_before),
            "lost": lost,
        }
        summary["jobs"] = jobs
        summary["calls"] = len(load.outcomes)
        return {
            "lost": lost,
            "redis_failover_s": redis_failover_s,
            "replica_kill_error_rate": summary["replica_kill"]["error_rate"],
            "jobs_completed_once": jobs["completed_once"],
            **summary,
        }


def _http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 - our own Triton
            return bool(reply.status == 200)
    except OSError:
        return False


def _first_after(
    load: Load, since: float, kind: str, good: Callable[[Outcome], bool], timeout_s: float
) -> float | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [o.at for o in load.window(since, time.monotonic(), (kind,)) if good(o)]
        if found:
            return min(found)
        time.sleep(0.25)
    return None


def _job_running_on(load: Load, cluster: Cluster, host: Host, timeout_s: float) -> str:
    """Submit Gatys jobs until one runs on ``host``'s style worker; its id."""
    pids = {p.pid for p in host.processes}
    style_image = common_pb2.Image(data=sample("scream").read_bytes())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = load.call(
            load.style.SubmitJob,
            style_pb2.SubmitJobRequest(
                content=load.dog,
                style_image=style_image,
                gatys=style_pb2.GatysParams(iterations=40, max_side=96),
            ),
        )
        with load._lock:
            load.jobs.append(job.job_id)
        for _ in range(60):
            record = load.call(
                load.style.GetJob, style_pb2.GetJobRequest(job_id=job.job_id, omit_result=True)
            )
            if record.state == style_pb2.RUNNING and record.progress.iteration >= 2:
                break
            time.sleep(0.5)
        owner = _owner(cluster, job.job_id)
        if owner is not None and owner in pids:
            return job.job_id
    raise TimeoutError(f"no job ran on {host.name} within {timeout_s:.0f} s")


def _owner(cluster: Cluster, job_id: str) -> int | None:
    """The pid of the worker process running ``job_id`` (from the job's owner, host:pid:token)."""
    primary = cluster.primary()
    if primary is None:
        return None
    try:
        raw = cluster.redis_at(primary).hget(f"fovea:style:job:{job_id}", "owner")
        return int(raw.decode().split(":")[1]) if raw else None
    except (redis.RedisError, IndexError, ValueError):
        return None


def _lost_enrolments(load: Load) -> int:
    lost = 0
    for identity in load.enrolled:
        try:
            load.call(
                load.faces.GetIdentity, faces_pb2.GetIdentityRequest(gallery_id=GALLERY, identity_id=identity)
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                lost += 1
    return lost


def _jobs_once(load: Load, store: redis.Redis, killed_job: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    states: dict[str, str] = {}
    for job_id in load.jobs:
        while True:
            record = load.call(load.style.GetJob, style_pb2.GetJobRequest(job_id=job_id, omit_result=True))
            states[job_id] = style_pb2.JobState.Name(record.state)
            if (
                record.state in (style_pb2.SUCCEEDED, style_pb2.FAILED, style_pb2.CANCELLED)
                or time.monotonic() > deadline
            ):
                break
            time.sleep(0.5)
    results = {j: len(list(store.scan_iter(f"fovea:style:job:{j}:result"))) for j in load.jobs}
    killed = store.hgetall(f"fovea:style:job:{killed_job}")
    succeeded = sum(s == "SUCCEEDED" for s in states.values())
    return {
        "submitted": len(load.jobs),
        "succeeded": succeeded,
        "states": {s: list(states.values()).count(s) for s in set(states.values())},
        "results_not_once": [j for j, n in results.items() if states.get(j) == "SUCCEEDED" and n != 1],
        "killed_job": {
            k.decode(): v.decode()
            for k, v in killed.items()
            if k in (b"state", b"attempts", b"worker_losses")
        },
        "completed_once": succeeded == len(load.jobs)
        and all(n == 1 for n in results.values())
        and killed.get(b"worker_losses") == b"1",
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--warm-s", type=float, default=20.0, help="steady load before the first fault")
    parser.add_argument("--after-s", type=float, default=30.0, help="load measured after the replica kill")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs) after the run")
    args = parser.parse_args()
    if shutil.which("ip") is None:
        print("test-multihost needs iproute2 (ip netns) and root", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="fovea-multihost-"))
    print(f"work folder (logs): {work}", flush=True)
    try:
        summary = run(work, args.warm_s, args.after_s)
    finally:
        if not args.keep:
            subprocess.run(["rm", "-rf", str(work)], check=False)
    ok = (
        summary["lost"] == 0
        and summary["redis_failover_s"] <= 30
        and summary["replica_kill_error_rate"] <= 0.02
        and summary["jobs_completed_once"]
    )
    print(json.dumps(summary, indent=1))
    print(
        json.dumps(
            {
                k: summary[k]
                for k in ("lost", "redis_failover_s", "replica_kill_error_rate", "jobs_completed_once")
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
