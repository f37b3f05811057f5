"""docker-compose.yml uses the local stack's entry points and settings (no Docker engine here).

Every service's command must be a `fovea` command, every FOVEA_* variable a field of that process's
settings class (they forbid unknown fields), and compose itself must accept the file (`docker compose
config`, or Debian's `docker-compose config`: neither needs an engine) where one is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from fovea.classify.config import ClassifySettings
from fovea.cli.main import main
from fovea.detection.config import DetectionSettings
from fovea.faces.config import FacesSettings
from fovea.gateway.config import GatewaySettings
from fovea.stack.config import TritonSettings
from fovea.style.config import StyleSettings
from fovea.style.tasks import QUEUE

REPO = Path(__file__).resolve().parents[2]
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
        "detection",
        "faces",
        "style",
        "classify",
        "worker",
        "gateway",
        "prometheus",
        "grafana",
    } <= set(compose["services"])
    assert compose["services"]["triton"]["deploy"]["resources"]["reservations"]["devices"][0][
        "capabilities"
    ] == ["gpu"]
    assert "--appendonly" in compose["services"]["redis"]["command"]


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
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if key.endswith("METRICS_PORT"):
                assert f"{name}:{value}" in targets, f"Prometheus does not scrape {name}:{value}"
    assert "triton:8002" in targets


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
    (worker,) = scaled["worker"]["triggers"]
    assert worker["type"] == "redis" and worker["metadata"]["listName"] == QUEUE
    assert worker["metadata"]["address"].startswith("redis.fovea.svc")  # KEDA resolves it from its namespace
    (triton,) = scaled["triton"]["triggers"]
    assert "nv_gpu_utilization" in triton["metadata"]["query"]
    assert 0 < float(triton["metadata"]["threshold"]) <= 1  # Triton reports utilisation as 0..1


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


# ---------------------------------------------------------------------------------------------- no back doors


def test_compose_publishes_only_the_edge(compose: dict) -> None:
    """Triton and Redis are not published; the plaintext gateway only on the host's loopback."""
    services = compose["services"]
    for name in ("triton", "redis", "detection", "faces", "style", "classify", "worker"):
        assert not services[name].get("ports"), f"{name} is published"
    env = services["gateway"]["environment"]
    if env.get("FOVEA_GATEWAY_ALLOW_PLAINTEXT") == "true":
        ports = services["gateway"]["ports"]
        assert ports and all(p.startswith("127.0.0.1:") for p in ports)
    assert "--requirepass" in " ".join(services["redis"]["command"])
    for name in ("detection", "faces", "style", "classify", "gateway"):
        token = services[name]["environment"][f"FOVEA_{name.upper()}_INTERNAL_TOKEN_FILE"]
        assert token == "/run/secrets/internal-token" and "internal-token" in services[name]["secrets"]
    for name, key in (("faces", "FOVEA_FACES_REDIS_URL"), ("style", "FOVEA_STYLE_REDIS_URL")):
        assert "${FOVEA_REDIS_PASSWORD" in services[name]["environment"][key]


def test_k8s_keeps_triton_redis_and_services_private() -> None:
    docs = k8s_docs()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet")}
    for name in ("detection", "faces", "style", "classify", "gateway"):
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert f"FOVEA_{name.upper()}_INTERNAL_TOKEN_FILE" in env, name
    for name in ("faces", "style", "worker"):
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "fovea-redis"
        assert "$(REDIS_PASSWORD)" in next(v["value"] for k, v in env.items() if k.endswith("_REDIS_URL"))
    redis = deployments["redis"]["spec"]["template"]["spec"]["containers"][0]
    assert "--requirepass" in redis["args"]
    policies = {
        d["spec"]["podSelector"].get("matchLabels", {}).get("app"): d
        for d in docs
        if d["kind"] == "NetworkPolicy"
    }
    assert {"triton", "redis"} <= set(policies)
    allowed = {
        value
        for rule in policies["redis"]["spec"]["ingress"]
        for peer in rule["from"]
        for expr in peer.get("podSelector", {}).get("matchExpressions", [])
        for value in expr["values"]
    }
    assert allowed == {"faces", "style", "worker"}
    services = next(
        d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "services-from-gateway"
    )
    assert services["spec"]["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"app": "gateway"}}}]
    for d in docs:
        if d["kind"] == "Service" and d["metadata"]["name"] in ("triton", "redis"):
            assert d["spec"].get("type", "ClusterIP") == "ClusterIP"
