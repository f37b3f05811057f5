"""Generate the Python gRPC stubs from ``protos/`` into the package (``make protos``).

The stubs are committed; ``tests/unit/test_protos_fresh.py`` regenerates them into a temporary folder and
fails when the committed ones differ.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
PROTO_ROOT = REPO_ROOT / "protos"
PACKAGE_ROOT = REPO_ROOT / "src" / "fovea"
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.glob("fovea/**/*.proto"))


def generate(out_root: Path) -> list[Path]:
    """Run protoc (grpcio-tools) on every proto; write ``<out_root>/<svc>/v1/*_pb2*.py``; return them."""
    from grpc_tools import protoc  # dev dependency, imported only here

    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{Path(protoc.__file__).parent / '_proto'}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *[str(p) for p in proto_files()],
        ]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed on " + " ".join(args[4:]))
        written = []
        for src in sorted(Path(tmp, "fovea").rglob("*")):
            if src.is_file() and src.name.endswith(SUFFIXES):
                dest = out_root / src.relative_to(Path(tmp, "fovea"))
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
                written.append(dest)
        return written


def main() -> None:
    for path in generate(PACKAGE_ROOT):
        print(path.relative_to(REPO_ROOT))
    sys.exit(0)


if __name__ == "__main__":
    main()
