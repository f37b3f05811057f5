"""`fovea detect`: `eval` checks its arguments before it connects to a gateway; `IMAGE` is the default
subcommand."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from fovea.cli.main import main


def test_eval_checks_its_arguments_before_connecting(tmp_path: Path) -> None:
    annotations = tmp_path / "instances.json"
    annotations.write_text("{}")
    runner = CliRunner()
    no_images = runner.invoke(main, ["detect", "eval", "--coco", str(annotations)])
    assert no_images.exit_code == 1 and "--coco takes --images DIR" in no_images.output
    both = runner.invoke(
        main, ["detect", "eval", str(tmp_path), "--coco", str(annotations), "--images", str(tmp_path)]
    )
    assert both.exit_code == 1 and "neither a dataset folder nor --split" in both.output
    nothing = runner.invoke(main, ["detect", "eval"])
    assert nothing.exit_code == 1 and "or --coco annotations.json --images DIR" in nothing.output
    stray = runner.invoke(main, ["detect", "eval", str(tmp_path), "--images", str(tmp_path)])
    assert stray.exit_code == 1 and "--images goes with --coco" in stray.output


def test_an_image_path_runs_the_image_subcommand(tmp_path: Path) -> None:
    # a missing file is refused by `detect image`'s own argument check, so the path reached it
    missing = runner_output(["detect", str(tmp_path / "missing.jpg")])
    assert "Invalid value for 'IMAGE'" in missing
    assert "detect image [OPTIONS] IMAGE" in runner_output(["detect", "image", "--help"])


def runner_output(args: list[str]) -> str:
    return CliRunner().invoke(main, args).output
