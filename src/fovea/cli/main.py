"""The ``fovea`` command: run the platform (up/down/status/serve), build models, and call the gateway.

This module is the root group and its global options; each command group lives in its own module
(``stack``, ``keys``, ``models``, ``detect``, ``classify``, ``faces``, ``style``) and the helpers they share
in ``output``. The command line imports only the base install (click and the client) until a command that
needs the server packages runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from fovea.cli import classify, detect, faces, keys, models, stack, style
from fovea.cli.output import Group


@click.group(cls=Group)
@click.version_option(package_name="fovea")
@click.option("--gateway", envvar="FOVEA_GATEWAY", default=None, help="host:port (default 127.0.0.1:50051)")
@click.option(
    "--tls/--no-tls",
    "tls",
    default=None,
    help="TLS to the gateway [env FOVEA_TLS=1/0]; default: plaintext on loopback, TLS elsewhere",
)
@click.option(
    "--ca",
    envvar="FOVEA_TLS_CA",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PEM CA bundle that signed the gateway's certificate (implies --tls) [env FOVEA_TLS_CA]",
)
@click.option(
    "--cert",
    envvar="FOVEA_TLS_CERT",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PEM client certificate, for a gateway that requires one (mTLS) [env FOVEA_TLS_CERT]",
)
@click.option(
    "--key",
    envvar="FOVEA_TLS_KEY",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PEM private key of --cert [env FOVEA_TLS_KEY]",
)
@click.pass_context
def main(
    ctx: click.Context,
    gateway: str | None,
    tls: bool | None,
    ca: Path | None,
    cert: Path | None,
    key: Path | None,
) -> None:
    """Fovea: detection, faces and style transfer behind one gRPC gateway, models in Triton."""
    ctx.obj = {"address": gateway, "tls": tls, "ca": ca, "cert": cert, "key": key}


for command in (
    *stack.COMMANDS,
    keys.keys,
    models.models,
    detect.detect,
    classify.classify,
    classify.classifiers,
    faces.faces,
    style.style,
):
    main.add_command(command)
