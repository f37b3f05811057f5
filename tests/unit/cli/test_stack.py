"""`fovea status` / `down` with no stack running in the data dir: one error line, nothing to stop; the
processes `up` supervises are commands of their own."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from fovea.cli.main import main


def test_no_stack_running(tmp_path: Path) -> None:
    runner = CliRunner(env={"FOVEA_DATA_DIR": str(tmp_path)})
    status = runner.invoke(main, ["status", "--json"])
    assert status.exit_code == 1
    assert (
        status.output
        == f"error: the stack is not running (no supervisord at {tmp_path}/supervisor.sock): `fovea up`\n"
    )
    down = runner.invoke(main, ["down"])
    assert down.exit_code == 0 and down.output == "the stack was not running\n"


def test_serve_and_worker_take_the_known_kinds() -> None:
    refused = CliRunner().invoke(main, ["serve", "nothing"])
    assert refused.exit_code == 2 and "'gateway', 'detection', 'faces', 'style', 'classify'" in refused.output
    assert CliRunner().invoke(main, ["worker", "nothing"]).exit_code == 2
