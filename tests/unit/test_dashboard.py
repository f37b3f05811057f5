"""deploy/grafana/dashboards/fovea.json only asks for metrics that some process exports.

Our names come from the prometheus_client objects in ``src/fovea/*/metrics.py`` (the per-RPC set of
``fovea.common.metrics.rpc_metrics`` made for every service that calls ``create_server``); Triton's from
its documented list below. A dashboard panel over a misspelt or removed metric stays empty without
any error, which is why this is a test.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from fovea.common.metrics import RpcMetrics, rpc_metrics

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy/grafana/dashboards/fovea.json"
AUTOSCALING = REPO / "deploy/k8s/autoscaling.yaml"

# Triton's metrics (https://github.com/triton-inference-server/server/blob/main/docs/user_guide/metrics.md),
# served on its metrics port (8002). Its counters carry no `_total` suffix.
TRITON_METRICS = frozenset(
    {
        "nv_inference_request_success",
        "nv_inference_request_failure",
        "nv_inference_count",
        "nv_inference_exec_count",
        "nv_inference_pending_request_count",
        "nv_inference_request_duration_us",
        "nv_inference_queue_duration_us",
        "nv_inference_compute_input_duration_us",
        "nv_inference_compute_infer_duration_us",
        "nv_inference_compute_output_duration_us",
        "nv_gpu_utilization",
        "nv_gpu_memory_total_bytes",
        "nv_gpu_memory_used_bytes",
        "nv_gpu_power_usage",
        "nv_gpu_power_limit",
        "nv_energy_consumption",
        "nv_cpu_utilization",
        "nv_cpu_memory_total_bytes",
        "nv_cpu_memory_used_bytes",
    }
)

# The series one prometheus_client family exports, by its type.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
}

# PromQL words that are not metric names.
KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless"}
)


def served_services() -> list[str]:
    """Every service name passed to ``create_server`` (each gets the per-RPC metrics under that name)."""
    names = []
    for path in sorted((REPO / "src" / "fovea").glob("*/__main__.py")):
        names += re.findall(r'create_server\(\s*"(\w+)"', path.read_text())
    return names


def exported_names() -> set[str]:
    """The series names our processes export, from the metric objects in the code."""
    objects: list[MetricWrapperBase] = []
    for path in sorted((REPO / "src" / "fovea").glob("*/metrics.py")):
        module = importlib.import_module(f"fovea.{path.parent.name}.metrics")
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                objects.append(value)
    for service in served_services():
        rpc: RpcMetrics = rpc_metrics(service)
        objects += [rpc.requests, rpc.latency]
    names = set()
    for obj in objects:
        for family in obj.describe():
            names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels, keywords and durations left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values may hold anything
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range durations, $__rate_interval
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # label lists
    expr = re.sub(r"\$\w+", "", expr)  # Grafana variables
    found = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?", expr):
        word, call = match.group(1), match.group(2)
        if call or word in KEYWORDS:
            continue
        found.add(word)
    return found


def test_metric_names_parser() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, method) (rate(fovea_x_seconds_bucket{code!="OK"}[$__rate_interval])))'
        " / on (model) group_left sum without (gpu) (nv_y) / 1e6"
    )
    assert metric_names(expr) == {"fovea_x_seconds_bucket", "nv_y"}


@pytest.fixture(scope="module")
def expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"]))
    assert found, "no PromQL expressions in the dashboard"
    return found


def test_every_expression_names_an_exported_metric(expressions: list[tuple[str, str]]) -> None:
    known = exported_names() | TRITON_METRICS
    assert "fovea_gateway_request_duration_seconds_bucket" in known  # the collection found the code's metrics
    for title, expr in expressions:
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr!r}"
        unknown = names - known
        assert not unknown, f"{title}: {sorted(unknown)} exported by no process (expr {expr!r})"


def test_autoscaling_queries_name_exported_metrics() -> None:
    queries = [
        (doc["metadata"]["name"], trigger["metadata"]["query"])
        for doc in yaml.safe_load_all(AUTOSCALING.read_text())
        if doc and doc["kind"] == "ScaledObject"
        for trigger in doc["spec"]["triggers"]
        if trigger["type"] == "prometheus"
    ]
    assert queries, "no prometheus triggers in deploy/k8s/autoscaling.yaml"
    known = exported_names() | TRITON_METRICS
    for name, query in queries:
        names = metric_names(query)
        assert names and names <= known, f"{name}: {sorted(names - known)} exported by no process"


def test_dashboard_covers_what_operators_asked_for(expressions: list[tuple[str, str]]) -> None:
    used = set().union(*(metric_names(expr) for _, expr in expressions))
    wanted = {
        "fovea_gateway_requests_total",  # request rate, error rate by code
        "fovea_gateway_request_duration_seconds_bucket",  # p50/p95/p99 per method
        "nv_inference_queue_duration_us",  # Triton queue vs compute per model
        "nv_inference_compute_infer_duration_us",
        "nv_inference_count",  # batch size = inferences / executions
        "nv_inference_exec_count",
        "nv_gpu_utilization",
        "nv_gpu_memory_used_bytes",
        "fovea_style_queue_depth_jobs",  # Celery queue depth
        "fovea_style_job_duration_seconds_bucket",  # job durations
        "fovea_faces_door_decisions_total",  # door decisions by result
    }
    assert not wanted - used, f"the dashboard lacks {sorted(wanted - used)}"
    quantiles = {q for _, expr in expressions for q in re.findall(r"histogram_quantile\((0\.\d+)", expr)}
    assert {"0.5", "0.95", "0.99"} <= quantiles


def test_panel_ids_unique_and_datasource_templated() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert ids and len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
