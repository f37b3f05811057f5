"""`fovea faces`: the option mistakes refused before any model is loaded or any gateway is called."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from ports import free_port

from fovea.cli.main import main


def run(*args: str) -> tuple[int, str]:
    """``fovea --gateway ADDR faces ARGS`` where nothing answers at ADDR."""
    result = CliRunner().invoke(main, ["--gateway", f"127.0.0.1:{free_port()}", "faces", *args])
    return result.exit_code, result.output


def test_pad_eval_options_of_one_mode_are_refused_in_the_other(tmp_path: Path) -> None:
    code, out = run("pad-eval", str(tmp_path), "--gateway", f"127.0.0.1:{free_port()}")
    assert code == 1 and "error: --gateway evaluates through a door: give --door too" in out
    code, out = run("pad-eval", str(tmp_path), "--dense", "--door", "d")
    assert code == 1 and "--model-repository, --dense and --passive are for the in-process evaluation" in out
    code, out = run("pad-eval", str(tmp_path), "--model-repository", str(tmp_path), "--door", "d")
    assert code == 1 and "through --door the door's own policy decides" in out


def test_pad_synth_writes_only_into_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("")
    code, out = run("pad-synth", str(tmp_path))
    assert code == 1 and f"error: {tmp_path} is not empty" in out


def test_metadata_is_key_equals_value(tmp_path: Path) -> None:
    code, out = run("gallery", "create", "g1", "--meta", "novalue")
    assert code == 2 and "expected KEY=VALUE, got 'novalue'" in out


def test_an_unreachable_gateway_is_one_error_line() -> None:
    code, out = run("gallery", "list")
    assert code == 1 and out.startswith("error: UNAVAILABLE") and len(out.splitlines()) == 1, out
