"""``fovea demo``: one request per capability through the gateway, printed as JSON (on the sample photos
of :mod:`fovea.convert.samples`, so it needs the server packages)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import click

from fovea.client import FoveaClient, FoveaClientError
from fovea.convert.samples import sample


def _detection(client: FoveaClient) -> Any:
    out = {}
    for name in ("dog", "person"):
        result = client.detect(sample(name).read_bytes())
        out[f"{name}.jpg"] = [f"{d.label} {d.score:.2f} box {d.box}" for d in result.detections]
    return out


def _faces(client: FoveaClient) -> Any:
    gallery = "demo"
    client.ensure_gallery(gallery)
    client.enroll(gallery, "obama", [sample("obama").read_bytes()])
    return {
        "verify obama2 as obama": asdict(client.verify(gallery, "obama", sample("obama2").read_bytes())),
        "verify biden as obama": asdict(client.verify(gallery, "obama", sample("biden").read_bytes())),
    }


def _classify(client: FoveaClient) -> Any:
    out = {}
    for name in ("dog", "giraffe"):
        result = client.classify(sample(name).read_bytes(), top_k=3)
        out[f"{name}.jpg"] = [f"{c.label} {c.probability:.2f}" for c in result.classifications]
    return out


def _style(client: FoveaClient) -> Any:
    styles = client.list_styles()
    job = client.submit_style(sample("dog").read_bytes(), style=styles[0])
    updates = list(client.watch_job(job.job_id, timeout_s=300))
    final = updates[-1] if updates else job
    return {
        "style": styles[0],
        "job": job.job_id,
        "state": final.state,
        "result_png_bytes": len(final.result_png or b""),
    }


DEMOS: dict[str, Callable[[FoveaClient], Any]] = {
    "detection": _detection,
    "classify": _classify,
    "faces": _faces,
    "style": _style,
}


def run_demo() -> int:
    """Exit status 0 when every built capability answered; unbuilt ones are reported, not failed."""
    failed = 0
    with FoveaClient() as client:
        for name, demo in DEMOS.items():
            try:
                result = demo(client)
            except FoveaClientError as exc:
                if exc.code == "UNIMPLEMENTED":
                    click.echo(f"== {name}: not built yet ({exc.message})")
                    continue
                click.echo(f"== {name}: FAILED {exc}")
                failed += 1
                continue
            click.echo(f"== {name}\n{json.dumps(result, indent=2)}")
    return 1 if failed else 0
