"""The wheel holds the whole package: built from a copy of the sources, installed into a fresh venv, every module
imports from that install and `fovea --help` runs, with the source tree nowhere on the path.

The fresh venv gets no dependencies of its own (that would be a download of torch and the rest): a .pth file
appends the dev venv's site-packages after its own. Entries of a .pth file are added as plain paths, so the dev
venv's editable install of fovea (its own .pth and import hook) is not active there; the wheel's copy is the only
`fovea` that can be found. About 30 s, mostly importing torch, onnx and the service modules.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "src" / "fovea"  # the `fovea` package (pyproject.toml: packages.find in src/)
BUILD_FILES = ("pyproject.toml", "README.md")

# Imports every module of the installed package (source tree off the path) and prints where they came from.
IMPORT_ALL = """
import importlib, json, pkgutil, sys
import fovea
names, failed = [], {}
for info in pkgutil.walk_packages(fovea.__path__, "fovea."):
    if info.name == "fovea.__main__":  # runs the CLI: checked as `python -m fovea --help`
        continue
    try:
        importlib.import_module(info.name)
    except Exception as exc:  # every failure is reported, not just the first
        failed[info.name] = f"{type(exc).__name__}: {exc}"
    names.append(info.name)
print(json.dumps({"file": fovea.__file__, "modules": names, "failed": failed,
                  "path": sys.path, "finders": [getattr(f, "__name__", type(f).__name__) for f in sys.meta_path]}))
"""

pytestmark = pytest.mark.wheel


def source_modules() -> set[str]:
    """Every module of the source tree as the wheel must name it (``fovea.<package>.<module>``)."""
    modules = set()
    for path in SOURCE.rglob("*.py"):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules.add(".".join(("fovea", *parts)))
    return modules


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel --no-deps` of a copy of the sources (the build leaves build/ and *.egg-info where it runs)."""
    src = tmp_path_factory.mktemp("src")
    for name in BUILD_FILES:
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(SOURCE, src / "src" / "fovea", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (built,) = out.glob("fovea-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed and the dev venv's site-packages appended for the dependencies."""
    env = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=120)
    python = env / "bin" / "python"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "zz-dev-venv-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return env


def test_wheel_holds_every_module(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    in_wheel = {
        n.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for n in names if n.endswith(".py")
    }
    expected = source_modules()
    assert expected, "no modules found under src/fovea/"
    assert expected - in_wheel == set(), "modules of src/fovea/ missing from the wheel"
    assert "fovea/py.typed" in names


def test_every_module_imports_from_the_install(venv: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", IMPORT_ALL],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repository: nothing of the source tree on sys.path
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(report["file"]).is_relative_to(venv), f"fovea imported from {report['file']}, not the wheel"
    assert not any(Path(p).resolve() == REPO or Path(p).resolve() == SOURCE for p in report["path"] if p)
    assert "_EditableFinder" not in report["finders"], "the dev venv's editable install is active"
    assert report["failed"] == {}, "modules that do not import from the installed wheel"
    assert report["modules"], "no modules walked"
    assert set(report["modules"]) == source_modules() - {"fovea", "fovea.__main__"}


@pytest.mark.parametrize("command", [["bin/fovea"], ["bin/python", "-m", "fovea"]], ids=["script", "module"])
def test_fovea_help_from_the_install(venv: Path, tmp_path: Path, command: list[str]) -> None:
    proc = subprocess.run(
        [str(venv / command[0]), *command[1:], "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: ") and "fovea" in proc.stdout.splitlines()[0]
    assert "serve " in proc.stdout and "models " in proc.stdout
