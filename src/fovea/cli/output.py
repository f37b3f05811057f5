"""What every command group shares: printing (a table or ``--json``), failing with one ``error:`` line, the
gateway client the global options describe, a progress bar, and the click classes that make a command
without the server packages say what to install.

Only the base install here (click, the client): a command imports what else it needs inside its body.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from fovea.client import FoveaClient, FoveaClientError

T = TypeVar("T")

SERVER_EXTRA = "fovea[server]"


def emit(data: Any, as_json: bool, human: str | None = None) -> None:
    """``data`` as indented JSON (with ``--json``, or when there is no ``human`` text), else ``human``."""
    if as_json or human is None:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(human)


def fail(exc: BaseException | str) -> NoReturn:
    """``error: <exc>`` on stderr, exit status 1."""
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


def bar(done: int, total: int, width: int = 30) -> str:
    """``[#####.....]``: ``done`` of ``total`` as a text progress bar."""
    filled = width * done // max(total, 1)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def connect(address: str | None = None) -> FoveaClient:
    """A client of the gateway as the global options (--gateway, --tls, --ca, --cert, --key) say;
    ``address`` instead of --gateway when given."""
    options = dict(click.get_current_context().find_root().obj or {})
    if address is not None:
        options["address"] = address
    try:
        return FoveaClient(**options)
    except ValueError as exc:
        fail(exc)


def gateway_call(fn: Callable[[FoveaClient], T]) -> T:
    """Run ``fn(client)`` against the gateway; a gRPC error ends the command with its status and message."""
    with connect() as client:
        try:
            return fn(client)
        except FoveaClientError as exc:
            fail(exc)


def server_packages_missing(ctx: click.Context, exc: ModuleNotFoundError) -> NoReturn:
    """End a command that imported a package of ``fovea[server]`` in an install without it."""
    if (exc.name or "fovea").partition(".")[0] == "fovea":
        raise exc  # our own module: a bug, not a missing install
    fail(
        f"`{ctx.command_path}` needs the server packages, which are not installed here (no module named "
        f"{exc.name!r}): pip install '{SERVER_EXTRA}'"
    )


class Command(click.Command):
    """A command that, run without the server packages it imports, says to install ``fovea[server]``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            server_packages_missing(ctx, exc)


class Group(click.Group):
    """A group whose commands (and subgroups) are :class:`Command` s."""

    command_class = Command
    group_class = type  # subgroups of the same class


class DefaultGroup(Group):
    """A group that runs ``default_cmd`` when the first argument is not one of its subcommands."""

    def __init__(self, *args: Any, default_cmd: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_cmd = default_cmd

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_cmd, *args]
        return super().parse_args(ctx, args)
