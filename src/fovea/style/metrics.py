"""Prometheus metrics of style jobs (service: queue depth; worker: durations and outcomes)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

QUEUE_DEPTH = Gauge("fovea_style_queue_depth_jobs", "Style jobs waiting in the Celery queue")
JOBS_SUBMITTED = Counter("fovea_style_jobs_submitted_total", "Style jobs accepted, by kind", ["kind"])
JOB_DURATION = Histogram(
    "fovea_style_job_duration_seconds",
    "Wall time of one style job run in a worker, by kind and final state",
    ["kind", "state"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
JOBS_FINISHED = Counter(
    "fovea_style_jobs_finished_total", "Style job runs ended, by kind and state", ["kind", "state"]
)
JOBS_REQUEUED = Counter(
    "fovea_style_jobs_requeued_total", "Style jobs requeued because their worker stopped heartbeating"
)
