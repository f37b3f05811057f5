"""`fovea models`: import-onnx from the command line (options parsed, the default repository, refusals
named by their flag) and `load` refusing a model no repository holds, before it asks Triton. The ONNX
models are synthetic (tests/onnx_detectors.py)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from onnx_detectors import constant_detector, end2end_predictions, yolov8_predictions

from fovea.cli.main import main
from fovea.contracts.detector import load_spec

LABELS = ["widget", "gadget"]
THREE = ["widget", "gadget", "sprocket"]
BOXES = [(100.0, 160.0, 300.0, 360.0), (400.0, 280.0, 600.0, 520.0)]


def stack_env(tmp_path: Path) -> dict[str, str]:
    return {"FOVEA_DATA_DIR": str(tmp_path / "data"), "FOVEA_MODEL_REPOSITORY": str(tmp_path / "platform")}


def test_cli_import_onnx(tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("widget\ngadget\n")
    predictions = yolov8_predictions(BOXES, [0, 1], [0.9, 0.8], num_classes=2)
    source = constant_detector(tmp_path / "toy-v8.onnx", predictions)
    args = [
        "models",
        "import-onnx",
        str(source),
        "--name",
        "toy",
        "--family",
        "yolov8",
        "--labels",
        str(labels),
    ]
    repo = tmp_path / "repo"
    runner = CliRunner(env=stack_env(tmp_path))
    ok = runner.invoke(main, [*args, "--repository", str(repo), "--mean", "0,0,0"])
    assert ok.exit_code == 0, ok.output
    assert "imported toy" in ok.output and "fovea models load toy" in ok.output
    assert load_spec(repo / "toy").labels == LABELS
    default = runner.invoke(main, args)  # default repository: <data dir>/user-models
    assert default.exit_code == 0, default.output
    assert (tmp_path / "data" / "user-models" / "toy" / "fovea.json").is_file()
    again = runner.invoke(main, args)
    assert again.exit_code == 1 and "already exists: pass --force" in again.output
    bad = runner.invoke(main, [*args, "--name", "toy2", "--mean", "1,2"])
    assert bad.exit_code == 1 and "--mean must be 3 comma-separated numbers" in bad.output


def test_cli_import_onnx_says_which_layout(tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(THREE) + "\n")
    rows = end2end_predictions(BOXES, [0, 2], [0.9, 0.8], normalise_by=(640, 640))
    source = constant_detector(tmp_path / "e2e.onnx", rows)
    args = ["models", "import-onnx", str(source), "--name", "e2e", "--labels", str(labels)]
    args += ["--repository", str(tmp_path / "repo")]
    runner = CliRunner(env=stack_env(tmp_path))
    refused = runner.invoke(main, args)
    assert refused.exit_code == 1 and "--boxes normalised" in refused.output
    ok = runner.invoke(main, [*args, "--boxes", "normalised"])
    assert ok.exit_code == 0, ok.output
    assert "layout: found end2end" in ok.output and "imported e2e" in ok.output


def test_load_refuses_a_model_no_repository_holds(tmp_path: Path) -> None:
    result = CliRunner(env=stack_env(tmp_path)).invoke(main, ["models", "load", "nope"])
    assert result.exit_code == 1, result.output
    assert "error: no model 'nope' in" in result.output and "user-models" in result.output
