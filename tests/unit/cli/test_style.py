"""`fovea style submit`: exactly one of a style name or a style image, refused before any call."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from fovea.cli.main import main


def test_submit_takes_one_style(tmp_path: Path) -> None:
    content = tmp_path / "content.jpg"
    content.write_bytes(b"not read before the check")
    for extra in ([], ["--style", "mosaic", "--style-image", str(content)]):
        result = CliRunner().invoke(main, ["style", "submit", str(content), *extra])
        assert result.exit_code == 1, result.output
        assert result.output == "error: give exactly one of --style NAME or --style-image PATH\n"
