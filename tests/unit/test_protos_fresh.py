"""The committed gRPC stubs must be what grpcio-tools generates from protos/ today."""

from __future__ import annotations

from pathlib import Path

from fovea.common.protogen import PACKAGE_ROOT, generate


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    written = generate(tmp_path)
    assert written, "no protos found"
    stale = []
    for path in written:
        committed = PACKAGE_ROOT / path.relative_to(tmp_path)
        if not committed.exists() or committed.read_bytes() != path.read_bytes():
            stale.append(str(committed.relative_to(PACKAGE_ROOT.parent)))
    assert not stale, f"stale generated code, run `make protos`: {stale}"
