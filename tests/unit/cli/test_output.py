"""The helpers every command group shares: JSON or text, one error line, the progress bar, the default
subcommand, the client the global options describe, and a command without its server packages."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fovea.cli.main import main
from fovea.cli.output import Command, DefaultGroup, Group, bar, emit, fail


def test_emit_prints_json_unless_there_is_text(capsys: pytest.CaptureFixture[str]) -> None:
    emit({"a": 1, "path": Path("x")}, as_json=False)
    assert json.loads(capsys.readouterr().out) == {"a": 1, "path": "x"}  # no text: JSON; str() for others
    emit({"a": 1}, as_json=False, human="one a")
    assert capsys.readouterr().out == "one a\n"
    emit({"a": 1}, as_json=True, human="one a")
    assert json.loads(capsys.readouterr().out) == {"a": 1}


def test_fail_is_one_line_on_stderr_and_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        fail(ValueError("no such thing"))
    assert done.value.code == 1 and capsys.readouterr().err == "error: no such thing\n"


def test_bar() -> None:
    assert bar(0, 10, width=10) == "[..........]"
    assert bar(3, 10, width=10) == "[###.......]"  # 10 * 3 // 10 = 3 filled
    assert bar(10, 10, width=10) == "[##########]"
    assert bar(0, 0, width=4) == "[....]"  # no total yet: nothing filled, no division by zero


def test_a_default_group_runs_its_default_unless_given_a_subcommand() -> None:
    @click.group(cls=DefaultGroup, default_cmd="show")
    def thing() -> None:
        pass

    @thing.command("show")
    @click.argument("name")
    def show(name: str) -> None:
        click.echo(f"show {name}")

    @thing.command("list")
    def list_() -> None:
        click.echo("list")

    runner = CliRunner()
    assert runner.invoke(thing, ["x.jpg"]).output == "show x.jpg\n"
    assert runner.invoke(thing, ["list"]).output == "list\n"
    assert "Commands:" in runner.invoke(thing, ["--help"]).output


def test_a_missing_server_package_says_what_to_install() -> None:
    @click.group(cls=Group)
    def root() -> None:
        pass

    @root.command("build")
    def build() -> None:
        import fovea_no_such_server_package  # noqa: F401

    @root.command("ours")
    def ours() -> None:
        import fovea.no_such_module  # noqa: F401

    assert isinstance(build, Command) and isinstance(ours, Command)
    result = CliRunner().invoke(root, ["build"], prog_name="fovea")
    assert result.exit_code == 1
    assert result.output == (
        "error: `fovea build` needs the server packages, which are not installed here (no module named "
        "'fovea_no_such_server_package'): pip install 'fovea[server]'\n"
    )
    bug = CliRunner().invoke(root, ["ours"], prog_name="fovea")  # a module of ours missing is a bug
    assert isinstance(bug.exception, ModuleNotFoundError)


def test_tls_options_that_do_not_go_together_fail_before_any_call(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    result = CliRunner().invoke(main, ["--cert", str(cert), "models", "list"])
    assert result.exit_code == 1 and "error: a client certificate needs its key" in result.output
    result = CliRunner().invoke(main, ["--ca", str(tmp_path / "missing.pem"), "models", "list"])
    assert result.exit_code == 1 and "error: CA file" in result.output and "missing.pem" in result.output
