"""`fovea classifiers train` reads its labelled folder before it calls the gateway."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from fovea.cli.main import main


def test_train_refuses_a_folder_without_class_folders(tmp_path: Path) -> None:
    (tmp_path / "loose.jpg").write_bytes(b"")
    result = CliRunner().invoke(main, ["classifiers", "train", "pets", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == (
        f"error: {tmp_path} has no class folders with images: expected {tmp_path}/<class name>/*.jpg\n"
    )
