"""`fovea faces pad-eval` and `pad-synth`: a labelled set written from the sample portraits (bona fide
heads turned by the 2.5D head model, prints and screens moved), scored through the served detector in
process, and the ISO/IEC 30107-3 table."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from fovea.cli.main import main
from fovea.faces.core.pad import GeometrySettings
from fovea.faces.inprocess import InProcessFaces
from fovea.faces.pad_eval import SYNTH_ATTACKS, evaluate, find_sequences, write_synthetic_dir


@pytest.fixture(scope="module")
def labelled(in_process: InProcessFaces, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pad-set")
    counts = write_synthetic_dir(out, in_process, seed=3, per_photo=1, frames=5, photos=("obama2", "biden"))
    assert counts == {"bona_fide": 2, **{f"attack/{s}": 2 for s in SYNTH_ATTACKS}}
    return out


def test_the_synthetic_set_is_told_apart(labelled: Path, in_process: InProcessFaces) -> None:
    """The geometry check on what MTCNN finds in the rendered frames: the turned heads score 0.10-0.30
    IOD of parallax (40 sequences of `pad-synth --per-photo 10`, seed 7), flat prints and screens
    0.00-0.10, prints bent like paper (radius 0.5-2 print widths, turned 25-40 degrees about the bend)
    0.00-0.10; here the threshold 0.12 separates them with no error."""
    report = evaluate(labelled, in_process, GeometrySettings())
    geometry = report.reports["geometry"]
    assert geometry.bona_fide == 2 and geometry.attacks == {s: 2 for s in SYNTH_ATTACKS}
    assert geometry.apcer == 0.0 and geometry.bpcer == 0.0 and geometry.acer == 0.0, report.as_text()
    assert [s.faces for s in report.sequences] == [5] * len(report.sequences)  # a face in every frame
    bona = [s.scores["geometry"] for s in report.sequences if s.species == "bona_fide"]
    attacks = [s.scores["geometry"] for s in report.sequences if s.species != "bona_fide"]
    assert bona and attacks and min(bona) > 0.12 > max(attacks)
    text = report.as_text()
    assert "APCER (worst species)" in text and "BPCER @ APCER <= 1%" in text and "screen_tilt" in text
    assert "print_bent_h" in text


def test_the_cli_prints_the_table_and_json(labelled: Path, repository: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main, ["faces", "pad-eval", str(labelled), "--model-repository", str(repository), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    geometry = out["checks"]["geometry"]
    assert geometry["threshold"] == 0.12 and geometry["apcer"] == 0.0 and geometry["bpcer"] == 0.0
    assert [p["apcer_target"] for p in geometry["operating_points"]] == [0.01, 0.05]
    assert len(out["sequences"]) == 2 + 2 * len(SYNTH_ATTACKS)
    strict = runner.invoke(
        main,
        ["faces", "pad-eval", str(labelled), "--model-repository", str(repository), "--min-parallax", "0.9"],
    )
    assert strict.exit_code == 0 and re.search(r"BPCER\s+2\s+100\.00%", strict.output), strict.output


def test_the_cli_writes_a_set(repository: Path, tmp_path: Path) -> None:
    out = tmp_path / "set"
    args = [
        "faces",
        "pad-synth",
        str(out),
        "--per-photo",
        "1",
        "--frames",
        "3",
        "--model-repository",
        str(repository),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "bona_fide: 4 sequences" in result.output and "attack/print_tilt: 4 sequences" in result.output
    assert len(list((out / "bona_fide" / "obama-0").glob("*.jpg"))) == 3
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "not empty" in again.output


def test_layouts(labelled: Path, tmp_path: Path) -> None:
    # attack/<seq>/*.jpg without species folders: one species, "attack"
    flat = tmp_path / "flat"
    shutil.copytree(labelled / "bona_fide", flat / "bona_fide")
    shutil.copytree(labelled / "attack" / "print_tilt" / "biden-0", flat / "attack" / "seq-1")
    bona, attacks = find_sequences(flat)
    assert len(bona) == 2 and list(attacks) == ["attack"] and attacks["attack"][0].name == "attack/seq-1"
    assert len(attacks["attack"][0].frames) == 5
    with pytest.raises(ValueError, match="bona_fide/<seq>"):
        find_sequences(tmp_path / "flat" / "attack")
    (flat / "bona_fide" / "empty").mkdir()
    with pytest.raises(ValueError, match="no frames"):
        find_sequences(flat)
