"""Write deploy/requirements.lock: every package the images install, pinned, with the sha256 of its file.

1. The versions: those the dev venv runs (the tests' versions), for the runtime dependencies of fovea (and the
   extras in FOVEA_EXTRAS), followed recursively through their own requirements.
2. The files: pip resolves them as constraints in the images' own Python (the `python` stage of deploy/Dockerfile:
   Debian 12, CPython 3.11, x86_64) against PyPI, wheels only, and reports the file it would install with its
   hash. torch is the CPU build from dist/wheels (PyPI's Linux torch is the CUDA build, gigabytes of nvidia-*
   wheels); its hash is that file's.
3. deploy/requirements.lock (`pip install --no-deps --require-hashes -r`, the CPU images) and
   deploy/constraints.txt (the same pins without hashes or torch's local tag, for the GPU image on NGC's Python).

    python deploy/lock.py   (make lock; needs the python stage image: make python-image)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "deploy" / "requirements.lock"
CONSTRAINTS = REPO / "deploy" / "constraints.txt"
WHEELS = REPO / "dist" / "wheels"
FOVEA_WHEELS = REPO / "dist" / "fovea"
PYTHON_IMAGE = os.environ.get("PYTHON_IMAGE", "fovea/python:bookworm")
DOCKER = os.environ.get("DOCKER", "docker")
CA_BUNDLE = os.environ.get("BUILD_CA_BUNDLE") or os.environ.get("PIP_CERT", "")  # as deploy/context.sh
CA_BUNDLE = "" if CA_BUNDLE == "none" else CA_BUNDLE
EXTRAS = [e for e in os.environ.get("FOVEA_EXTRAS", "").split(",") if e]


def closure(root: str, extras: list[str]) -> dict[str, str]:
    """``{name: version}`` of ``root``'s runtime requirements in this venv, recursively (markers evaluated)."""
    pins: dict[str, str] = {}
    todo = [(root, tuple(extras))]
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while todo:
        name, wanted = todo.pop()
        if (name, wanted) in seen:
            continue
        seen.add((name, wanted))
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            sys.exit(f"{name} is required but not installed in {sys.prefix}: make setup")
        for line in dist.requires or []:
            req = Requirement(line)
            envs = [{**default_environment(), "extra": e} for e in ("", *wanted)]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            key = canonicalize_name(req.name)
            pins[key] = distribution(req.name).version
            todo.append((req.name, tuple(sorted(req.extras))))
    pins.pop(canonicalize_name(root), None)
    return pins


def resolve(pins: dict[str, str], torch_wheel: Path, fovea_wheel: Path) -> list[dict]:
    """pip's install report for the fovea wheel under ``pins``, run in the images' Python against PyPI."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "constraints.txt").write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
        target = f"/fovea/{fovea_wheel.name}" + (f"[{','.join(EXTRAS)}]" if EXTRAS else "")
        script = (
            "python3.11 -m venv /tmp/v && /tmp/v/bin/pip install -q --dry-run --ignore-installed "
            "--only-binary :all: --find-links /wheels --constraint /out/constraints.txt "
            f"--report /out/report.json '{target}'"
        )
        command = [DOCKER, "run", "--rm", "--network", "host", "--user", f"{os.getuid()}:{os.getgid()}"]
        command += ["-e", "HOME=/tmp", "-v", f"{tmp}:/out", "-v", f"{torch_wheel.parent}:/wheels:ro"]
        command += ["-v", f"{fovea_wheel.parent}:/fovea:ro"]
        # a TLS-inspecting proxy on the way to PyPI: its CA, for pip only (see deploy/Dockerfile)
        if CA_BUNDLE:
            command += ["-v", f"{CA_BUNDLE}:/ca.pem:ro", "-e", "PIP_CERT=/ca.pem"]
        command += [PYTHON_IMAGE, "sh", "-c", script]
        subprocess.run(command, check=True)
        report = json.loads((Path(tmp) / "report.json").read_text())
    return report["install"]


def main() -> None:
    (torch_wheel,) = WHEELS.glob("torch-*.whl")
    (fovea_wheel,) = FOVEA_WHEELS.glob("fovea-*.whl")
    pins = closure("fovea", EXTRAS)
    pins["torch"] = re.sub(r"-cp.*", "", torch_wheel.name).split("-")[1]  # 2.13.0+cpu, the file's version
    lines, constraints = [], []
    for item in resolve(pins, torch_wheel, fovea_wheel):
        meta = item["metadata"]
        name, version = canonicalize_name(meta["name"]), meta["version"]
        if name == "fovea":
            continue
        if name == "torch":
            digest = hashlib.sha256(torch_wheel.read_bytes()).hexdigest()
        else:
            digest = item["download_info"]["archive_info"]["hashes"]["sha256"]
        if pins.get(name) not in (None, version):
            sys.exit(f"{name}: pip chose {version}, the dev venv has {pins[name]}")
        lines.append(f"{name}=={version} \\\n    --hash=sha256:{digest}\n")
        constraints.append(f"{name}=={version.split('+')[0]}\n")
    header = (
        "# Generated by deploy/lock.py (make lock) from the dev venv's versions; do not edit.\n"
        "# CPython 3.11, Linux x86_64 (Debian 12), wheels only; torch is the CPU wheel from dist/wheels.\n"
        f"# extras: {','.join(EXTRAS) or '(none)'}\n"
    )
    LOCK.write_text(header + "".join(sorted(lines)))
    CONSTRAINTS.write_text(
        "# Generated by deploy/lock.py with deploy/requirements.lock: the same versions, no hashes, for the GPU\n"
        "# Triton image (NGC's Python, CUDA torch from PyPI).\n" + "".join(sorted(constraints))
    )
    print(f"{LOCK.relative_to(REPO)}: {len(lines)} packages; {CONSTRAINTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
