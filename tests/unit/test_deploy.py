"""docker-compose.yml uses the local stack's entry points and settings (no Docker engine here).

Every service's command must be a `fovea` command, every FOVEA_* variable a field of that process's
settings class (they forbid unknown fields), and compose itself must accept the file (`docker compose
config`, or Debian's `docker-compose config`: neither needs an engine) where one is installed.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from fovea.classify.config import ClassifySettings
from fovea.classify.tasks import QUEUE as CLASSIFY_QUEUE
from fovea.cli.main import main
from fovea.common.redis_client import SentinelTarget, celery_broker
from fovea.common.server import REPLICA_HEALTH
from fovea.detection.config import DetectionSettings
from fovea.faces.config import FacesSettings
from fovea.gateway.config import GatewaySettings
from fovea.gateway.upstream import target as upstream_target
from fovea.stack.config import StackSettings, TritonSettings
from fovea.style.config import StyleSettings
from fovea.style.tasks import QUEUE

REPO = Path(__file__).resolve().parents[2]
# Processes that call Triton, with their settings' prefix: each sends the internal token (the services also
# require it from the gateway).
TOKEN_PREFIX = {
    "detection": "DETECTION",
    "faces": "FACES",
    "style": "STYLE",
    "classify": "CLASSIFY",
    "gateway": "GATEWAY",
    "worker": "STYLE",
    "classify-worker": "CLASSIFY",
}
# Processes that use Redis (state, Celery queues), with their settings' prefix: only they may reach it.
REDIS_CLIENTS = {
    "faces": "FACES",
    "style": "STYLE",
    "worker": "STYLE",
    "classify": "CLASSIFY",
    "classify-worker": "CLASSIFY",
}
SETTINGS = {
    "FOVEA_GATEWAY_": GatewaySettings,
    "FOVEA_DETECTION_": DetectionSettings,
    "FOVEA_FACES_": FacesSettings,
    "FOVEA_STYLE_": StyleSettings,
    "FOVEA_CLASSIFY_": ClassifySettings,
    "FOVEA_TRITON_": TritonSettings,
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_every_process_is_there(compose: dict) -> None:
    assert {
        "redis",
        "triton",
        "triton-cpu",
        "detection",
        "faces",
        "style",
        "classify",
        "classify-worker",
        "worker",
        "gateway",
        "prometheus",
        "grafana",
    } <= set(compose["services"])
    assert compose["services"]["triton"]["deploy"]["resources"]["reservations"]["devices"][0][
        "capabilities"
    ] == ["gpu"]
    assert "--appendonly" in compose["services"]["redis"]["command"]
    # Triton's two flavours are profiles; everything else runs in both
    profiles = {name: service.get("profiles") for name, service in compose["services"].items()}
    assert profiles.pop("triton") == ["gpu"] and profiles.pop("triton-cpu") == ["cpu"]
    assert profiles.pop("prometheus") == profiles.pop("grafana") == ["monitoring"]
    assert set(profiles.values()) == {None}
    for name, service in compose["services"].items():  # a profiled-out Triton cannot be depended on
        assert not {"triton", "triton-cpu"} & set(service.get("depends_on") or {}), name


def test_images_carry_the_package_version(compose: dict) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    images = {name: service["image"] for name, service in compose["services"].items()}
    assert images["triton"] == f"fovea/triton:{version}"
    assert images["triton-cpu"] == f"fovea/triton:{version}-cpu"
    for name in ("gateway", "detection", "faces", "style", "classify", "worker", "classify-worker"):
        assert images[name] == f"fovea/services:{version}", name


def test_host_network_ports_are_unique_and_off_the_local_stack(compose: dict) -> None:
    """Every process shares the host's network: each binds loopback on a port of its own, none of the ports
    `fovea up` uses (both stacks can run on one machine)."""
    ports: dict[int, str] = {}
    for name, service in compose["services"].items():
        assert service.get("network_mode") == "host", name
        assert not service.get("ports"), f"{name}: ports are not published on the host network"
        bound = [int(v) for k, v in (service.get("environment") or {}).items() if k.endswith("_PORT")]
        if name == "redis":
            command = service["command"]
            bound.append(int(command[command.index("--port") + 1]))
        for port in bound:
            shared = ports.get(port, name)  # the two Triton flavours never run together
            assert shared == name or {name, shared} == {"triton", "triton-cpu"}, f"{name}, {shared}: {port}"
            ports[port] = name
    assert (
        len(ports) == 17
    )  # Redis, 3 of Triton, gateway x 3 (gRPC, HTTP, metrics), 4 services x 2, 2 workers
    local = {v for k, v in StackSettings().model_dump().items() if k.endswith("_port")}
    assert not local & set(ports), f"ports of the local stack: {sorted(local & set(ports))}"


def test_every_process_has_a_health_check(compose: dict) -> None:
    runner = CliRunner()
    for name, service in compose["services"].items():
        if name in ("prometheus", "grafana"):
            continue
        test = service["healthcheck"]["test"]
        assert test, name
        if test[:2] == ["CMD", "fovea"]:
            result = runner.invoke(main, [*test[2:-1], "--help"])
            assert result.exit_code == 0, f"{name}: `{' '.join(test[1:])}` is not a fovea command"
            target = test[-1]
            env = service.get("environment") or {}
            port = target.rsplit(":", 1)[1].split("/")[0]
            assert port in env.values(), f"{name} probes {target}, not one of its ports"
    gateway = compose["services"]["gateway"]["depends_on"]
    assert {"detection", "faces", "style", "classify"} <= set(gateway)
    assert all(d["condition"] == "service_healthy" for d in gateway.values())


def test_commands_are_fovea_commands(compose: dict) -> None:
    runner = CliRunner()
    for name, service in compose["services"].items():
        command = service.get("command")
        if name in ("redis", "prometheus") or command is None:
            continue
        result = runner.invoke(main, [*command, "--help"])
        assert result.exit_code == 0, f"{name}: `fovea {' '.join(command)}` is not a command: {result.output}"


@pytest.mark.parametrize("prefix", sorted(SETTINGS))
def test_env_matches_settings(compose: dict, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fields = set(SETTINGS[prefix].model_fields)
    seen = 0
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if key.startswith(prefix):
                seen += 1
                field = key[len(prefix) :].lower()
                assert field in fields, f"{name}: {key} is not a setting of {SETTINGS[prefix].__name__}"
                monkeypatch.setenv(key, str(value))
    assert seen, f"no {prefix}* variables in the compose file"
    SETTINGS[prefix]()  # the values parse


def test_prometheus_scrapes_every_metrics_port(compose: dict) -> None:
    """A job per compose service (job names are what the dashboard filters on), its loopback metrics port."""
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {
        job["job_name"]: {t for sc in job["static_configs"] for t in sc["targets"]}
        for job in config["scrape_configs"]
    }
    seen = 0
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if key.endswith("METRICS_PORT"):
                job = "triton" if name == "triton-cpu" else name  # one job, whichever flavour runs
                assert f"127.0.0.1:{value}" in jobs.get(job, set()), (
                    f"Prometheus does not scrape {name}:{value}"
                )
                seen += 1
    assert seen >= 9


def test_grafana_is_provisioned(compose: dict) -> None:
    mounts = {v.split(":")[0]: v.split(":")[1] for v in compose["services"]["grafana"]["volumes"]}
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    datasources = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    prometheus = datasources["datasources"][0]
    assert prometheus["url"] == "http://prometheus:9090" and prometheus["uid"] == "prometheus"
    providers = yaml.safe_load((REPO / "deploy/grafana/provisioning/dashboards/fovea.yml").read_text())
    folder = providers["providers"][0]["options"]["path"]
    assert mounts["./deploy/grafana/dashboards"] == folder
    assert list((REPO / "deploy/grafana/dashboards").glob("*.json"))


def test_dockerfiles_use_the_fovea_entry_point() -> None:
    for path in [REPO / "deploy/Dockerfile", REPO / "deploy/triton/Dockerfile"]:
        assert 'ENTRYPOINT ["fovea"]' in path.read_text(), path


def compose_tool() -> list[str] | None:
    """The compose command that answers here: the plugin (`docker compose`), else Debian's `docker-compose`."""
    for argv in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(argv[0]) is None:
            continue
        probe = subprocess.run([*argv, "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return argv
    return None


COMPOSE_TOOL = compose_tool()


@pytest.mark.skipif(
    COMPOSE_TOOL is None,
    reason="neither `docker compose` nor `docker-compose` is installed (.ci/run installs one)",
)
def test_docker_compose_config() -> None:
    assert COMPOSE_TOOL is not None
    secrets = {REPO / "deploy/api-keys.json": '{"keys": []}\n', REPO / "deploy/internal-token": "x" * 43}
    created = [path for path in secrets if not path.exists()]
    for path in created:
        path.write_text(secrets[path])
    try:
        proc = subprocess.run(
            [*COMPOSE_TOOL, "-f", str(REPO / "docker-compose.yml"), "config"],
            capture_output=True,
            text=True,
            env={**os.environ, "FOVEA_REDIS_PASSWORD": "test-password"},
            check=False,
            timeout=60,
        )
    finally:
        for path in created:
            path.unlink()
    assert proc.returncode == 0, f"{' '.join(COMPOSE_TOOL)} config: {proc.stderr}"
    resolved = yaml.safe_load(proc.stdout)  # what compose made of the file, anchors and merges applied
    services = resolved["services"]
    assert services["triton"]["environment"]["FOVEA_TRITON_MODEL_CONFIG_NAME"] == "gpu"
    assert "FOVEA_TRITON_MODEL_CONFIG_NAME" not in services["triton-cpu"]["environment"]  # config.pbtxt
    devices = services["triton"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert services["worker"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert set(services["gateway"]["depends_on"]) >= {"detection", "faces", "style"}


def k8s_docs() -> list[dict]:
    docs = []
    for path in sorted((REPO / "deploy/k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_k8s_manifests_share_entry_points_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = k8s_docs()
    kustomization = next(d for d in docs if d["kind"] == "Kustomization")
    listed = {r for r in kustomization["resources"] if r.endswith(".yaml")}
    assert listed == {p.name for p in (REPO / "deploy/k8s").glob("*.yaml")} - {"kustomization.yaml"}
    for folder in set(kustomization["resources"]) - listed:  # other kustomizations (the Grafana dashboard)
        assert (REPO / "deploy/k8s" / folder / "kustomization.yaml").is_file(), folder
    literals = dict(item.split("=", 1) for item in kustomization["configMapGenerator"][0]["literals"])
    runner = CliRunner()
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} >= {
        "triton",
        "gateway",
        "detection",
        "faces",
        "style",
        "classify",
        "classify-worker",
        "worker",
    }
    for deployment in deployments:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        result = runner.invoke(main, [*container["args"], "--help"])
        assert result.exit_code == 0, f"{deployment['metadata']['name']}: not a fovea command"
        env = {**literals, **{e["name"]: e["value"] for e in container.get("env", []) if "value" in e}}
        for key, value in env.items():
            prefix = next((p for p in SETTINGS if key.startswith(p)), None)
            if prefix is None:
                continue
            assert key[len(prefix) :].lower() in SETTINGS[prefix].model_fields, f"{key} is not a setting"
            monkeypatch.setenv(key, str(value))
    for cls in SETTINGS.values():
        cls()  # every value parses


def test_k8s_autoscaling() -> None:
    docs = k8s_docs()
    deployments = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    scaled = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "ScaledObject"}
    assert scaled, "no KEDA ScaledObjects in deploy/k8s"
    for name, spec in scaled.items():
        assert spec["scaleTargetRef"]["name"] in deployments, f"{name} scales no Deployment"
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], name
        assert spec["triggers"], name
    assert set(scaled) == deployments - {"redis"}
    # The queues' scalers find the primary through the Sentinels, by names KEDA resolves from its own namespace
    sentinels = [f"{pod}.redis-sentinel.fovea.svc.cluster.local:26379" for pod in sentinel_pods()]
    (worker,) = scaled["worker"]["triggers"]
    assert worker["type"] == "redis-sentinel" and worker["metadata"]["listName"] == QUEUE
    assert [a.strip() for a in worker["metadata"]["addresses"].split(",")] == sentinels
    assert worker["metadata"]["sentinelMaster"] == sentinel_master()
    (training,) = scaled["classify-worker"]["triggers"]
    assert training["type"] == "redis-sentinel" and training["metadata"]["listName"] == CLASSIFY_QUEUE
    assert training["metadata"]["addresses"] == worker["metadata"]["addresses"]
    assert training["metadata"]["sentinelMaster"] == worker["metadata"]["sentinelMaster"]
    assert training["authenticationRef"] == worker["authenticationRef"]
    (auth,) = [d for d in docs if d["kind"] == "TriggerAuthentication"]
    assert auth["metadata"]["name"] == worker["authenticationRef"]["name"]
    refs = {r["parameter"]: r["name"] for r in auth["spec"]["secretTargetRef"]}
    assert refs == {"password": "fovea-redis", "sentinelPassword": "fovea-redis"}  # Redis and its Sentinels
    for name in ("gateway", "detection", "faces", "style", "classify"):  # one pod lost, another answers
        assert scaled[name]["minReplicaCount"] >= 2, name
    (triton,) = scaled["triton"]["triggers"]
    assert "nv_gpu_utilization" in triton["metadata"]["query"]
    assert 0 < float(triton["metadata"]["threshold"]) <= 1  # Triton reports utilisation as 0..1


def k8s_env(docs: list[dict], deployment: dict) -> dict[str, str | None]:
    """The variables a Deployment's container gets: fovea-env's literals, then its own (None: from a Secret)."""
    kustomization = next(d for d in docs if d["kind"] == "Kustomization")
    literals = dict(item.split("=", 1) for item in kustomization["configMapGenerator"][0]["literals"])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {**literals, **{e["name"]: e.get("value") for e in container.get("env", [])}}


def test_k8s_runs_every_compose_process_with_its_variables(compose: dict) -> None:
    """Each compose process that has FOVEA_* variables is a Deployment of the same name setting all of them."""
    docs = k8s_docs()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    # Triton's ports: compose moves them (host network, beside the local stack), the manifests leave them to
    # the settings' defaults
    defaults = {f"FOVEA_TRITON_{port}_PORT" for port in ("HTTP", "GRPC", "METRICS")}
    checked = 0
    for name, service in compose["services"].items():
        wanted = {k for k in service.get("environment") or {} if k.startswith("FOVEA_")}
        # the CPU flavour of Triton is compose's own: Kubernetes runs it on GPU nodes
        if not wanted or name == "triton-cpu":
            continue
        assert name in deployments, f"compose runs {name}, deploy/k8s has no Deployment for it"
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == service.get("command", ["triton"]), name  # Triton: its image's CMD
        missing = wanted - set(k8s_env(docs, deployments[name]))
        for key in missing & defaults:
            assert key.removeprefix("FOVEA_TRITON_").lower() in TritonSettings.model_fields, key
        assert not missing - defaults, f"{name}: deploy/k8s does not set {sorted(missing - defaults)}"
        checked += 1
    assert checked >= 8


def test_k8s_user_models_volume_is_shared() -> None:
    """Trained classifiers: one RWX claim, Triton's second repository, written by classify and its worker."""
    docs = k8s_docs()
    (claim,) = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # pods on several nodes mount it
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}

    def mounts(name: str, claim_name: str) -> list[dict]:
        pod = deployments[name]["spec"]["template"]["spec"]
        volumes = [
            v["name"]
            for v in pod["volumes"]
            if v.get("persistentVolumeClaim", {}).get("claimName") == claim_name
        ]
        return [m for m in pod["containers"][0]["volumeMounts"] if m["name"] in volumes]

    users = {n for n in deployments if mounts(n, claim["metadata"]["name"])}
    assert users == {"triton", "classify", "classify-worker"}
    (triton,) = mounts("triton", claim["metadata"]["name"])
    assert k8s_env(docs, deployments["triton"])["FOVEA_TRITON_USER_MODEL_REPOSITORY"] == triton["mountPath"]
    for name in ("classify", "classify-worker"):
        env = k8s_env(docs, deployments[name])
        (user_models,) = mounts(name, claim["metadata"]["name"])
        assert env["FOVEA_CLASSIFY_TRAINED_REPOSITORY"] == user_models["mountPath"], name
        assert not user_models.get("readOnly"), f"{name} writes versions, rollbacks and deletions"
        # the backbone the head is appended to (and Explain reads) is the one Triton serves
        (models,) = mounts(name, "fovea-models")
        assert env["FOVEA_CLASSIFY_MODEL_REPOSITORY"] == models["mountPath"] and models["readOnly"], name


def test_k8s_model_control_reaches_every_triton_replica() -> None:
    """A headless Service (one A record per Triton pod) that classify and its worker name: each new version is
    loaded, a deleted classifier unloaded, on every replica, at the gRPC port of their Triton URL."""
    docs = k8s_docs()
    services = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "Service"}
    spec = services["triton-headless"]
    assert spec["clusterIP"] == "None"  # headless: its name answers the pods' own addresses
    assert spec["selector"] == services["triton"]["selector"] == {"app": "triton"}
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    (grpc,) = [p for p in spec["ports"] if p["name"] == "grpc"]
    triton = deployments["triton"]["spec"]["template"]["spec"]["containers"][0]
    assert {"containerPort": grpc["port"]} in triton["ports"]
    for name in ("classify", "classify-worker"):
        env = k8s_env(docs, deployments[name])
        assert env["FOVEA_CLASSIFY_TRITON_REPLICAS_DNS"] == "triton-headless", name
        url = env["FOVEA_CLASSIFY_TRITON_URL"]
        assert url is not None and url.rpartition(":")[2] == str(grpc["port"]), name


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed here")
def test_kubectl_kustomize_builds() -> None:
    proc = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "deploy/k8s")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    built = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert {d["metadata"].get("namespace") for d in built if d["kind"] != "Namespace"} == {"fovea"}
    kinds = {(d["kind"], d["metadata"]["name"]) for d in built}
    assert ("ConfigMap", "fovea-grafana-dashboards") in kinds
    assert ("ScaledObject", "worker") in kinds and ("ScaledObject", "triton") in kinds
    assert ("ScaledObject", "classify-worker") in kinds
    assert ("PersistentVolumeClaim", "fovea-user-models") in kinds


# ------------------------------------------------------------------------------------ Kubernetes: several hosts
# What deploy/multihost/run.py tests across network namespaces, in the manifests: Redis behind Sentinels, faces
# writes acknowledged by a replica, the gateway spreading over every pod of a service, probes on the health the
# gateway watches, disruption budgets.

REDIS_SCRIPT = REPO / "deploy/k8s/redis/redis.sh"
GRPC_SERVICES = {"detection": "DETECTION", "faces": "FACES", "style": "STYLE", "classify": "CLASSIFY"}


def workloads(docs: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet")}


def sentinel_pods() -> list[str]:
    """The Sentinel pods redis.sh asks (SENTINELS=...)."""
    match = re.search(r'^SENTINELS="([^"]+)"$', REDIS_SCRIPT.read_text(), re.M)
    assert match, "redis.sh names no SENTINELS"
    return match.group(1).split()


def sentinel_master() -> str:
    match = re.search(r"^MASTER=\$\{REDIS_MASTER_NAME:-(\w+)\}$", REDIS_SCRIPT.read_text(), re.M)
    assert match, "redis.sh sets no MASTER"
    return match.group(1)


def sentinel_setting(text: str, name: str) -> str:
    """A Sentinel directive's value for the monitored primary, in redis.sh or deploy/multihost/run.py."""
    match = re.search(rf"sentinel {name} \S+ (\d+)", text)
    assert match, name
    return match.group(1)


def test_k8s_every_manifest_parses() -> None:
    """Every YAML file under deploy/k8s parses, each document a Kubernetes object with a name; those kustomize
    builds from files (the Redis scripts) exist. The schema check is test_k8s_manifests_match_the_schemas."""
    paths = sorted((REPO / "deploy/k8s").rglob("*.yaml"))
    assert paths
    for path in paths:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert docs, path
        for doc in docs:
            assert {"apiVersion", "kind"} <= set(doc), path.name
            assert doc["kind"] == "Kustomization" or doc["metadata"].get("name"), (
                f"{path.name}: {doc['kind']}"
            )
    kustomization = yaml.safe_load((REPO / "deploy/k8s/kustomization.yaml").read_text())
    generated = {g["name"]: g for g in kustomization["configMapGenerator"]}
    for name, generator in generated.items():
        for file in generator.get("files", []):
            assert (REPO / "deploy/k8s" / file).is_file(), f"{name}: {file}"
    # every ConfigMap a pod mounts is one kustomize generates
    for workload in workloads(k8s_docs()).values():
        for volume in workload["spec"]["template"]["spec"].get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in generated, volume


def test_k8s_redis_behind_sentinels() -> None:
    """A primary/replica StatefulSet and three Sentinels, each pod a stable DNS name (headless Services), run by
    redis.sh on the image compose runs; every Redis client finds the primary through all three Sentinels."""
    docs = k8s_docs()
    found = workloads(docs)
    services = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "Service"}
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    redis_image = compose["services"]["redis"]["image"]
    replicas = {}
    for name, mode in (("redis", "server"), ("redis-sentinel", "sentinel")):
        workload = found[name]
        assert workload["kind"] == "StatefulSet", name
        spec = workload["spec"]
        headless = services[spec["serviceName"]]
        assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True, name
        assert headless["selector"] == spec["selector"]["matchLabels"] == {"app": name}
        container = spec["template"]["spec"]["containers"][0]
        assert container["image"] == redis_image, name  # fovea/redis, as make images builds it
        assert container["command"] == ["sh", "/scripts/redis.sh", mode], name
        env = {e["name"]: e for e in container["env"]}
        assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", name
        assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace", name
        assert env["REDIS_PODS"]["value"] == str(found["redis"]["spec"]["replicas"]), name
        replicas[name] = spec["replicas"]
    assert replicas["redis"] >= 2  # a primary and a replica: WAIT 1 has someone to wait for
    pods = sentinel_pods()
    assert pods == [f"redis-sentinel-{i}" for i in range(replicas["redis-sentinel"])] and len(pods) == 3
    assert found["redis"]["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"][
        "command"
    ] == ["sh", "/scripts/redis.sh", "pre-stop"]  # a planned stop hands the primary over first
    assert found["redis"]["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"  # the AOF survives
    # the Sentinels' timing is the one deploy/multihost/run.py measures (deploy/README.md quotes its figures)
    script = REDIS_SCRIPT.read_text()
    multihost = (REPO / "deploy/multihost/run.py").read_text()
    for setting in ("down-after-milliseconds", "failover-timeout", "parallel-syncs"):
        assert sentinel_setting(script, setting) == sentinel_setting(multihost, setting), setting
    quorum = re.search(r"sentinel monitor \$MASTER \$p 6379 (\d+)", script)
    assert quorum and int(quorum.group(1)) == len(pods) // 2 + 1
    assert "sentinel announce-hostnames yes" in script and "replica-announce-ip $self" in script

    urls = set()
    for name, prefix in REDIS_CLIENTS.items():
        env = k8s_env(docs, found[name])
        url = env[f"FOVEA_{prefix}_REDIS_URL"]
        assert url is not None, name
        target = SentinelTarget.parse(url)
        assert target is not None, f"{name}: {url} is not a redis+sentinel:// URL"
        assert target.sentinels == tuple((f"{pod}.redis-sentinel", 26379) for pod in pods), name
        assert (target.master, target.db) == (sentinel_master(), 0), name
        assert target.password == target.sentinel_password == "$(REDIS_PASSWORD)", name
        broker, options = celery_broker(url)  # the workers' Celery broker: kombu's sentinel transport
        assert broker.count("sentinel://") == len(pods) and options["master_name"] == sentinel_master()
        urls.add(url)
    assert len(urls) == 1
    # faces answers a gallery write once a replica holds it; there is a replica to hold it
    faces = k8s_env(docs, found["faces"])
    assert faces["FOVEA_FACES_REDIS_MIN_REPLICAS"] == "1"
    assert int(faces["FOVEA_FACES_REDIS_MIN_REPLICAS"]) <= replicas["redis"] - 1


def test_k8s_gateway_spreads_over_headless_services() -> None:
    """FOVEA_GATEWAY_<SVC>_ADDR is a headless Service of that service's pods at its gRPC port (one A record per
    ready pod: the gateway balances over them); no Service with a cluster IP stands in front of them (it would
    pin the gateway's HTTP/2 connection to one pod). The gateway's Service publishes gRPC and HTTP."""
    docs = k8s_docs()
    found = workloads(docs)
    services = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "Service"}
    gateway = k8s_env(docs, found["gateway"])
    for name, prefix in GRPC_SERVICES.items():
        address = gateway[f"FOVEA_GATEWAY_{prefix}_ADDR"]
        assert address is not None
        assert upstream_target(address) == address  # a DNS name: gRPC's resolver gets every A record
        host, _, port = address.rpartition(":")
        spec = services[host]
        assert spec["clusterIP"] == "None" and spec["selector"] == {"app": name}, host
        assert not spec.get("publishNotReadyAddresses"), host  # only ready pods get calls
        (grpc_port,) = [p["port"] for p in spec["ports"] if p["name"] == "grpc"]
        assert str(grpc_port) == port == k8s_env(docs, found[name])[f"FOVEA_{prefix}_PORT"], name
        container = found[name]["spec"]["template"]["spec"]["containers"][0]
        assert {"containerPort": grpc_port, "name": "grpc"} in container["ports"], name
        in_front = [s for s, spec in services.items() if spec.get("selector") == {"app": name}]
        assert in_front == [host], f"{name}: {in_front}"
    edge = services["gateway"]
    published = {p["name"]: p["port"] for p in edge["ports"]}
    assert str(published["http"]) == gateway["FOVEA_GATEWAY_HTTP_PORT"] != "0"
    assert str(published["grpc"]) == gateway["FOVEA_GATEWAY_PORT"]


def probe_target(probe: dict) -> tuple[str, str | int, str]:
    """(kind, port, path or health name) of a Kubernetes probe."""
    if "grpc" in probe:
        return "grpc", probe["grpc"]["port"], probe["grpc"].get("service", "")
    if "httpGet" in probe:
        return "http", probe["httpGet"]["port"], probe["httpGet"]["path"]
    return "exec", "", " ".join(probe["exec"]["command"])


def test_k8s_probes_ask_the_health_compose_checks() -> None:
    """Every container has readiness and liveness probes. The gRPC services: the health name the gateway balances
    on (REPLICA_HEALTH: SERVING from the first readiness until stopping, so a dependency's outage neither
    restarts nor removes pods), with a startup probe long enough for Triton's first load; the gateway: HTTP
    /healthz on its HTTP port (compose's check) and gRPC health; Triton: /v2/health/ready; the workers: their
    metrics page; Redis and the Sentinels: redis.sh. Each asks what compose's health check asks."""
    docs = k8s_docs()
    found = workloads(docs)
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    named_ports: dict[str, dict[str, int]] = {}
    for name, workload in found.items():
        container = workload["spec"]["template"]["spec"]["containers"][0]
        assert "readinessProbe" in container and "livenessProbe" in container, name
        named_ports[name] = {
            p.get("name", str(p["containerPort"])): p["containerPort"] for p in container["ports"]
        }
    for name, prefix in GRPC_SERVICES.items():
        container = found[name]["spec"]["template"]["spec"]["containers"][0]
        grpc_port = named_ports[name]["grpc"]
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert probe_target(container[kind]) == ("grpc", grpc_port, REPLICA_HEALTH), f"{name} {kind}"
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 300, name  # Triton's first load
        assert compose[name]["healthcheck"]["test"][-1].endswith(
            f":{compose[name]['environment'][f'FOVEA_{prefix}_PORT']}"
        )
    gateway = found["gateway"]["spec"]["template"]["spec"]["containers"][0]
    env = k8s_env(docs, found["gateway"])
    kind, port, path = probe_target(gateway["readinessProbe"])
    assert (kind, named_ports["gateway"][str(port)], path) == (
        "http",
        int(env["FOVEA_GATEWAY_HTTP_PORT"] or 0),
        "/healthz",
    )
    assert compose["gateway"]["healthcheck"]["test"][-1].endswith("/healthz")
    assert probe_target(gateway["livenessProbe"]) == ("grpc", int(env["FOVEA_GATEWAY_PORT"] or 0), "")
    triton = found["triton"]["spec"]["template"]["spec"]["containers"][0]
    assert probe_target(triton["readinessProbe"]) == ("http", TritonSettings().http_port, "/v2/health/ready")
    assert compose["triton"]["healthcheck"]["test"][-1].endswith("/v2/health/ready")
    assert probe_target(triton["startupProbe"])[0] == "http"
    for name, prefix in (("worker", "STYLE"), ("classify-worker", "CLASSIFY")):
        container = found[name]["spec"]["template"]["spec"]["containers"][0]
        metrics = k8s_env(docs, found[name])[f"FOVEA_{prefix}_WORKER_METRICS_PORT"]
        for kind in ("readinessProbe", "livenessProbe"):
            kind_, port, path = probe_target(container[kind])
            assert (kind_, named_ports[name][str(port)], path) == ("http", int(metrics or 0), "/metrics"), (
                name
            )
        assert compose[name]["healthcheck"]["test"][-1].endswith("/metrics")
    for name in ("redis", "redis-sentinel"):
        container = found[name]["spec"]["template"]["spec"]["containers"][0]
        assert probe_target(container["readinessProbe"]) == ("exec", "", "sh /scripts/redis.sh ready")
        assert probe_target(container["livenessProbe"]) == ("exec", "", "sh /scripts/redis.sh live")
    script = REDIS_SCRIPT.read_text()
    assert "ready)" in script and "live)" in script and "pre-stop)" in script


def test_k8s_disruption_budgets() -> None:
    """One PodDisruptionBudget per workload, selecting its pods, never one that blocks a drain for ever: a drain
    takes one pod of a kind at a time (two of three Sentinels, the quorum, stay)."""
    docs = k8s_docs()
    found = workloads(docs)
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    covered: dict[str, str] = {}
    for budget in budgets:
        name, spec = budget["metadata"]["name"], budget["spec"]
        matched = [
            w
            for w, d in found.items()
            if d["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
        ]
        assert len(matched) == 1, f"{name} selects {matched}"
        assert matched[0] not in covered, f"{matched[0]}: two budgets"
        covered[matched[0]] = name
        replicas = found[matched[0]]["spec"].get("replicas", 1)
        if "maxUnavailable" in spec:
            assert spec["maxUnavailable"] == 1 and "minAvailable" not in spec, name
        else:
            assert 1 <= spec["minAvailable"] < replicas, f"{name}: would block every drain"
    assert set(covered) == set(found), f"no budget: {sorted(set(found) - set(covered))}"
    assert budgets_of(docs)["redis-sentinel"] == {"minAvailable": 2}


def budgets_of(docs: list[dict]) -> dict[str, dict]:
    return {
        d["metadata"]["name"]: {k: v for k, v in d["spec"].items() if k != "selector"}
        for d in docs
        if d["kind"] == "PodDisruptionBudget"
    }


SCHEMA_VERSION = "1.30.0"  # the oldest Kubernetes the manifests are written for (grpc probes: GA in 1.27)


@pytest.mark.skipif(
    shutil.which("kubectl") is None or importlib.util.find_spec("kubernetes_validate") is None,
    reason="kubectl (kustomize) or kubernetes-validate (pip install kubernetes-validate) is not installed",
)
def test_k8s_manifests_match_the_schemas() -> None:
    """What `kubectl kustomize deploy/k8s` builds, checked strictly (unknown fields too) against Kubernetes'
    OpenAPI schemas, offline; KEDA's custom resources have no schema there and are left to the tests above."""
    import kubernetes_validate

    proc = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "deploy/k8s")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    checked = 0
    for doc in yaml.safe_load_all(proc.stdout):
        if not doc or doc["apiVersion"].startswith("keda.sh/"):
            continue
        kubernetes_validate.validate(doc, SCHEMA_VERSION, strict=True)
        checked += 1
    assert checked > 30


# ---------------------------------------------------------------------------------------------- no back doors


def test_compose_publishes_only_the_edge(compose: dict) -> None:
    """On the host network nothing is published by mapping: every process binds loopback (Triton, Redis and the
    services always; the plaintext gateway too), so no other machine reaches any of them."""
    services = compose["services"]
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if key.startswith("FOVEA_") and key.endswith("_HOST"):
                assert value == "127.0.0.1" or name == "gateway", f"{name}: {key}={value}"
    env = services["gateway"]["environment"]
    if env.get("FOVEA_GATEWAY_ALLOW_PLAINTEXT") == "true":
        assert env["FOVEA_GATEWAY_HOST"] == "127.0.0.1"
    redis_command = services["redis"]["command"]
    assert redis_command[redis_command.index("--bind") + 1] == "127.0.0.1"
    assert services["prometheus"]["command"][-1] == "--web.listen-address=127.0.0.1:9090"
    assert services["grafana"]["environment"]["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
    assert "--requirepass" in " ".join(services["redis"]["command"])
    for name, svc in TOKEN_PREFIX.items():
        token = services[name]["environment"][f"FOVEA_{svc}_INTERNAL_TOKEN_FILE"]
        assert token == "/run/secrets/internal-token" and "internal-token" in services[name]["secrets"]
    triton_cpu = services["triton-cpu"]
    assert triton_cpu["environment"]["FOVEA_TRITON_INTERNAL_TOKEN_FILE"] == "/run/secrets/internal-token"
    assert "internal-token" in triton_cpu["secrets"]
    for name, svc in REDIS_CLIENTS.items():
        assert "${FOVEA_REDIS_PASSWORD" in services[name]["environment"][f"FOVEA_{svc}_REDIS_URL"]


def pod_apps(selector: dict) -> set[str]:
    """The `app` labels a NetworkPolicy podSelector (or peer) names: matchLabels or `app In [...]`."""
    apps = {selector["matchLabels"]["app"]} if "app" in selector.get("matchLabels", {}) else set()
    for expr in selector.get("matchExpressions", []):
        assert expr["key"] == "app" and expr["operator"] == "In", expr
        apps |= set(expr["values"])
    return apps


def test_k8s_keeps_triton_redis_and_services_private() -> None:
    docs = k8s_docs()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet")}
    for name, svc in TOKEN_PREFIX.items():
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert f"FOVEA_{svc}_INTERNAL_TOKEN_FILE" in env, name
    for name, svc in REDIS_CLIENTS.items():
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "fovea-redis", name
        assert "$(REDIS_PASSWORD)" in env[f"FOVEA_{svc}_REDIS_URL"]["value"], name
    script = (REPO / "deploy/k8s/redis/redis.sh").read_text()
    for directive in ("requirepass", "masterauth", "sentinel auth-pass", "sentinel sentinel-pass"):
        assert f'{directive} $REDIS_PASSWORD"' in script or f"{directive} $MASTER $REDIS_PASSWORD" in script
    for name in ("redis", "redis-sentinel"):  # from the Secret, never on a command line
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "fovea-redis", name
        assert "REDIS_PASSWORD" not in " ".join(container["command"]), name
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    for name, spec in policies.items():
        assert spec["policyTypes"] == ["Ingress"] and spec["ingress"], name
    # Who may talk to whom: Redis and its Sentinels answer their clients, each other (replication, monitoring,
    # votes) and KEDA's scalers; Triton those that call it.
    for policy, app, port in (
        ("redis-from-services", "redis", 6379),
        ("redis-sentinel-from-services", "redis-sentinel", 26379),
    ):
        spec = policies[policy]
        assert pod_apps(spec["podSelector"]) == {app}
        (rule,) = spec["ingress"]
        assert {p["port"] for p in rule["ports"]} == {port}
        peers = set().union(*(pod_apps(peer.get("podSelector", {})) for peer in rule["from"]))
        assert peers == set(REDIS_CLIENTS) | {"redis", "redis-sentinel"}, policy
        namespaces = [peer["namespaceSelector"] for peer in rule["from"] if "namespaceSelector" in peer]
        assert namespaces == [{"matchLabels": {"kubernetes.io/metadata.name": "keda"}}]
    triton_from = policies["triton-from-services"]
    assert pod_apps(triton_from["podSelector"]) == {"triton"}
    peers = {
        app
        for r in triton_from["ingress"]
        for peer in r.get("from", [])
        for app in pod_apps(peer["podSelector"])
    }
    assert peers == set(TOKEN_PREFIX)  # every process that calls Triton, each with the internal token
    assert [r for r in triton_from["ingress"] if "from" not in r] == [{"ports": [{"port": 8002}]}]  # metrics
    services = policies["services-from-gateway"]
    assert pod_apps(services["podSelector"]) == {"detection", "faces", "style", "classify"}
    assert services["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"app": "gateway"}}}]
    assert services["ingress"][1:] == [{"ports": [{"port": "metrics"}]}]
    workers = policies["workers-metrics-only"]
    assert pod_apps(workers["podSelector"]) == {"worker", "classify-worker"}
    assert workers["ingress"] == [{"ports": [{"port": "metrics"}]}]
    covered = set().union(*(pod_apps(spec["podSelector"]) for spec in policies.values()))
    assert set(deployments) - covered == {"gateway"}, "a pod other than the public edge has no ingress policy"
    for d in docs:
        if d["kind"] == "Service" and d["metadata"]["name"] != "gateway":
            assert d["spec"].get("type", "ClusterIP") == "ClusterIP", d["metadata"]["name"]


# ------------------------------------------------------------------------------------------------------- images


def lock_pins() -> dict[str, tuple[str, list[str]]]:
    """deploy/requirements.lock as ``{name: (version, [sha256, ...])}``."""
    text = (REPO / "deploy/requirements.lock").read_text().replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        requirement, *options = line.split()
        name, version = requirement.split("==")
        pins[name] = (version, [o.removeprefix("--hash=sha256:") for o in options])
    return pins


def image_extras() -> list[str]:
    """The extras the images install (the Makefile's FOVEA_EXTRAS)."""
    match = re.search(r"^FOVEA_EXTRAS\s*\?=\s*(\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert match, "the Makefile sets no FOVEA_EXTRAS"
    return match.group(1).split(",")


def test_lock_covers_every_dependency() -> None:
    """Every runtime dependency of pyproject.toml, those of the extras the images install included, is locked at
    a version it allows (`make lock` after a change), each with its hash (the images install with
    --require-hashes --no-deps); constraints.txt holds the same pins."""
    pins = lock_pins()
    assert len(pins) > 50
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = image_extras()
    assert extras == ["server"]
    header = (REPO / "deploy/requirements.lock").read_text().splitlines()[:3]
    assert f"# extras: {','.join(extras)}" in header, "the lock was made for other extras: make lock"
    required = list(project["dependencies"])
    for extra in extras:
        required += project["optional-dependencies"][extra]
    for line in required:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in deploy/requirements.lock: make lock"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), f"{name}=={pins[name][0]}"
    for name, (_, hashes) in pins.items():
        assert len(hashes) == 1 and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), name
    assert pins["torch"][0].endswith("+cpu")  # the CPU wheel, not PyPI's CUDA build
    constraints = {
        line.split("==")[0]: line.split("==")[1]
        for line in (REPO / "deploy/constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert constraints == {name: version.split("+")[0] for name, (version, _) in pins.items()}


def test_dockerignore_lets_through_what_the_dockerfiles_copy() -> None:
    patterns = [
        p.removeprefix("!").rstrip("/")
        for p in (REPO / ".dockerignore").read_text().splitlines()
        if p.startswith("!")
    ]
    dockerfiles = [
        REPO / "deploy/Dockerfile",
        REPO / "deploy/triton/Dockerfile",
        REPO / "deploy/redis/Dockerfile",
    ]
    copied = [
        line.split()[1].rstrip("/")
        for path in dockerfiles
        for line in path.read_text().splitlines()
        if line.startswith("COPY ") and "--from=" not in line
    ]
    assert copied, "no COPY in the Dockerfiles"
    for source in copied:
        assert any(fnmatch.fnmatch(source, p) or source.startswith(p + "/") for p in patterns) or any(
            p.startswith(source + "/") for p in patterns
        ), f"{source} is copied but .dockerignore leaves it out"
