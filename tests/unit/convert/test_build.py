"""``fovea.convert.build.build_one``: conversion cached by source checksum, weights and companions copied into
the repository."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fovea.convert.build import ModelBuild, build_one


def test_weights_and_companions_land_next_to_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOVEA_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "source.bin"
    source.write_bytes(b"registry bytes")
    port = tmp_path / "port.pt"
    port.write_bytes(b"the port, version 1")
    conversions: list[Path] = []

    def convert(out: Path) -> Path:
        conversions.append(out)
        out.write_bytes(b"onnx from " + source.read_bytes())
        return out

    build = ModelBuild(
        name="demo",
        weights_file="model.onnx",
        fetch=lambda: source,
        source_sha256=hashlib.sha256(source.read_bytes()).hexdigest(),
        convert=convert,
        companions=(("demo_port.pt", lambda: port),),
    )
    repository = tmp_path / "repo"
    (repository / "demo" / "1").mkdir(parents=True)
    assert "converted" in build_one(build, repository)
    assert (repository / "demo/1/model.onnx").read_bytes() == b"onnx from registry bytes"
    assert (repository / "demo/1/demo_port.pt").read_bytes() == b"the port, version 1"
    port.write_bytes(
        b"the port, version 2"
    )  # a companion that changed is copied again; the weights are cached
    assert "cached" in build_one(build, repository) and len(conversions) == 1
    assert (repository / "demo/1/demo_port.pt").read_bytes() == b"the port, version 2"
