"""``fovea style``: neural style transfer jobs (list the styles, submit, get, cancel: client calls) and
``sheet`` (a content image in every style on one contact sheet; needs the server packages to draw it)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from fovea.cli.output import Group, connect, emit, fail, gateway_call
from fovea.client import FoveaClientError, GatysParams


@click.group(cls=Group)
def style() -> None:
    """Neural style transfer jobs."""


@style.command("list")
@click.option("--json", "as_json", is_flag=True)
def style_list(as_json: bool) -> None:
    """The feed-forward styles: name, its other names, what it looks like (see also `fovea style sheet`)."""
    styles = gateway_call(lambda client: client.style_catalog())
    width = max((len(s.name) for s in styles), default=0)
    lines = [f"{s.name:<{width}}  {','.join(s.aliases):<8} {s.description}" for s in styles]
    emit([asdict(s) for s in styles], as_json, "\n".join(lines))


@style.command("sheet")
@click.argument("content", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="PNG to write")
@click.option("--max-side", type=int, default=256, show_default=True, help="Longest side of each result")
@click.option("--columns", type=click.IntRange(1, 27), default=6, show_default=True)
@click.option("--preserve-color", is_flag=True, help="Keep the content's colours (luminance-only transfer)")
def style_sheet(content: Path, out: Path, max_side: int, columns: int, preserve_color: bool) -> None:
    """A contact sheet: CONTENT in every feed-forward style, each tile labelled with the style's name."""
    from fovea.style.tools.sheet import style_sheet

    with connect() as client:
        try:
            sheet, styles = style_sheet(
                client,
                content.read_bytes(),
                max_side=max_side,
                columns=columns,
                preserve_color=preserve_color,
            )
        except (FoveaClientError, RuntimeError) as exc:
            fail(exc)
    sheet.save(out)
    click.echo(f"{out}: {styles} styles, {sheet.width}x{sheet.height}")


@style.command("submit")
@click.argument("content", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--style", "style_name", default="", help="A name from `fovea style list`")
@click.option("--style-image", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--iterations", type=int, default=100, show_default=True, help="Gatys: optimiser steps")
@click.option("--max-side", type=int, default=0, help="Longest side of the result (0 = the service default)")
@click.option("--optimizer", type=click.Choice(["lbfgs", "adam"]), default="lbfgs", show_default=True)
@click.option(
    "--init", "init_from", type=click.Choice(["content", "noise"]), default="content", show_default=True
)
@click.option("--alpha", type=float, default=0.0, help="Gatys: weight of J_content (0 = default)")
@click.option("--beta", type=float, default=0.0, help="Gatys: weight of J_style (0 = default)")
@click.option("--idempotency-key", default="", help="Same key, same job")
@click.option(
    "--preserve-color", is_flag=True, help="Keep the content's colours: only the luminance is stylised"
)
@click.option("--wait", is_flag=True, help="Follow progress until the job ends")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the result PNG"
)
@click.option("--json", "as_json", is_flag=True)
def style_submit(
    content: Path,
    style_name: str,
    style_image: Path | None,
    iterations: int,
    max_side: int,
    optimizer: str,
    init_from: str,
    alpha: float,
    beta: float,
    idempotency_key: str,
    preserve_color: bool,
    wait: bool,
    out: Path | None,
    as_json: bool,
) -> None:
    """Queue a style transfer job (with --wait or --out, follow its progress to the end)."""
    if bool(style_name) == (style_image is not None):
        fail(ValueError("give exactly one of --style NAME or --style-image PATH"))
    gatys = GatysParams(
        iterations=iterations, max_side=max_side, optimizer=optimizer, init=init_from, alpha=alpha, beta=beta
    )
    with connect() as client:
        try:
            job = client.submit_style(
                content.read_bytes(),
                style=style_name,
                style_image=style_image.read_bytes() if style_image else None,
                idempotency_key=idempotency_key,
                gatys=gatys,
                max_side=max_side if style_name else 0,
                preserve_color=preserve_color,
            )
            if wait or out:
                for update in client.watch_job(job.job_id):
                    job, p = update, update.progress
                    click.echo(
                        f"{job.state} {p.iteration}/{p.total_iterations} "
                        f"J_content {p.content_cost:.4g} J_style {p.style_cost:.4g} J {p.total_cost:.4g}",
                        err=True,
                    )
        except FoveaClientError as exc:
            fail(exc)
    if out and job.result_png:
        out.write_bytes(job.result_png)
    emit({"job_id": job.job_id, "state": job.state, "error": job.error}, as_json)


@style.command("get")
@click.argument("job_id")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the result PNG"
)
@click.option("--json", "as_json", is_flag=True)
def style_get(job_id: str, out: Path | None, as_json: bool) -> None:
    job = gateway_call(lambda client: client.get_job(job_id, omit_result=out is None))
    if out and job.result_png:
        out.write_bytes(job.result_png)
    p = job.progress
    emit(
        {
            "job_id": job.job_id,
            "state": job.state,
            "kind": job.kind,
            "iteration": p.iteration,
            "total_iterations": p.total_iterations,
            "costs": {"content": p.content_cost, "style": p.style_cost, "total": p.total_cost},
            "error": job.error,
            "result_expired": job.result_expired,
        },
        as_json,
    )


@style.command("cancel")
@click.argument("job_id")
def style_cancel(job_id: str) -> None:
    job = gateway_call(lambda client: client.cancel_job(job_id))
    click.echo(f"{job.job_id}: {job.state}")
