"""The platform on this machine: ``fovea up``, ``down``, ``status``, and the processes ``up`` supervises run
in the foreground (``triton``, ``serve SERVICE``, ``worker``); ``fovea demo`` calls each capability once."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from fovea.cli.output import Command, emit, fail

if TYPE_CHECKING:
    from fovea.stack.config import StackSettings


@click.command(cls=Command)
@click.option("--no-wait", is_flag=True, help="Return once processes are started, before they are healthy.")
def up(no_wait: bool) -> None:
    """Start Triton, Redis (if needed), the services, a Celery worker and the gateway."""
    from fovea.stack.config import StackSettings
    from fovea.stack.control import StackError
    from fovea.stack.control import up as stack_up

    settings = StackSettings()
    try:
        stack_up(settings, wait=not no_wait)
    except (StackError, RuntimeError) as exc:
        fail(exc)
    _print_status(settings, as_json=False)


@click.command(cls=Command)
def down() -> None:
    """Stop every process of the local stack."""
    from fovea.stack.config import StackSettings
    from fovea.stack.control import down as stack_down

    click.echo("stopped" if stack_down(StackSettings()) else "the stack was not running")


@click.command(cls=Command)
@click.option("--json", "as_json", is_flag=True)
def status(as_json: bool) -> None:
    """Each process: supervisor state, health endpoint, metrics endpoint. Exit 1 unless all healthy."""
    from fovea.stack.config import StackSettings

    if not _print_status(StackSettings(), as_json):
        sys.exit(1)


def _print_status(settings: StackSettings, as_json: bool) -> bool:
    from fovea.stack.control import StackError
    from fovea.stack.control import status as stack_status

    try:
        procs = stack_status(settings)
    except StackError as exc:
        fail(exc)
    rows = [
        {
            "name": p.name,
            "state": p.state,
            "pid": p.pid,
            "uptime_s": p.uptime_s,
            "healthy": p.healthy,
            "checks": [{"target": c.name, "ok": c.ok, "detail": c.detail} for c in p.probes],
        }
        for p in procs
    ]
    lines = [f"{'process':<10} {'state':<9} {'pid':>7} {'uptime':>7}  health"]
    for p in procs:
        checks = "; ".join(f"{c.detail} {c.name}" for c in p.probes)
        lines.append(
            f"{p.name:<10} {p.state:<9} {p.pid:>7} {p.uptime_s:>6}s  {'ok' if p.healthy else 'NOT OK'}: {checks}"
        )
    emit(rows, as_json, "\n".join(lines))
    return all(p.healthy for p in procs)


@click.command(cls=Command)
def triton() -> None:
    """Run the bundled Triton server in the foreground (what `fovea up` supervises)."""
    from fovea.common.logs import setup_logging
    from fovea.stack.config import TritonSettings
    from fovea.stack.triton import run

    setup_logging()
    sys.exit(run(TritonSettings()))


@click.command(cls=Command)
@click.argument("service", type=click.Choice(["gateway", "detection", "faces", "style", "classify"]))
def serve(service: str) -> None:
    """Run one gRPC service in the foreground."""
    import importlib

    importlib.import_module(f"fovea.{service}.__main__").main()


@click.command(cls=Command)
@click.argument("kind", type=click.Choice(["style", "classify"]), default="style")
def worker(kind: str) -> None:
    """Run a Celery worker in the foreground: style jobs (default) or classifier training jobs."""
    if kind == "classify":
        from fovea.classify.worker import main as classify_worker_main

        classify_worker_main()
        return
    from fovea.style.worker import main as worker_main

    worker_main()


@click.command(cls=Command)
def demo() -> None:
    """One request per capability through the gateway, on images shipped in installed packages."""
    from fovea.cli.demo import run_demo

    sys.exit(run_demo())


@click.command(cls=Command)
@click.argument("target")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.1, 60), default=2.0, show_default=True)
def probe(target: str, timeout_s: float) -> None:
    """Health of one endpoint, for container health checks: gRPC health of TARGET (host:port), or an HTTP URL that
    must answer 200 (Triton's /v2/health/ready, a /metrics page). Exit 0 when healthy, 1 otherwise."""
    from fovea.stack.health import grpc_health, http_ok

    if target.startswith(("http://", "https://")):
        result = http_ok(target, timeout_s)
    else:
        result = grpc_health(target, timeout_s=timeout_s)
    click.echo(f"{result.name}: {result.detail}")
    sys.exit(0 if result.ok else 1)


COMMANDS = (up, down, status, triton, serve, worker, demo, probe)
