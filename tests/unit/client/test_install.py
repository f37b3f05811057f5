"""``pip install fovea`` (the base install, ``fovea[client]``) without the server packages.

A fresh virtual environment gets the fovea wheel (``pip install --no-deps --no-index``) and only the closure
of fovea's base requirements (grpcio, grpcio-health-checking, protobuf, click and what they require), copied
from this environment where pip installed them, so the test needs no network. There ``import fovea.client``
and ``fovea --help`` work, torch and numpy cannot be imported, the client's commands run up to the gateway
call, and a command of the platform says to install ``fovea[server]``. About 20 s: a wheel build and a
dozen short processes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version
from ports import free_port

REPO = Path(__file__).resolve().parents[3]
SERVER_PACKAGES = ("torch", "numpy", "PIL", "pydantic", "tritonclient", "redis", "celery", "onnxruntime")


def base_requirements(dist: metadata.Distribution) -> list[str]:
    """The names of what ``dist`` requires outside any extra (on this platform)."""
    requirements = [Requirement(text) for text in dist.requires or []]
    return [r.name for r in requirements if r.marker is None or r.marker.evaluate({"extra": ""})]


def base_closure(name: str, seen: dict[str, metadata.Distribution]) -> None:
    """``name``'s distribution as installed here and, recursively, its base requirements."""
    dist = metadata.distribution(name)
    key = dist.metadata["Name"].lower().replace("_", "-")
    if key in seen:
        return
    seen[key] = dist
    for required in base_requirements(dist):
        base_closure(required, seen)


def copy_installed(dist: metadata.Distribution, site: Path) -> None:
    """What pip installed of ``dist`` under site-packages (its RECORD), copied to ``site``."""
    for file in dist.files or []:
        source = Path(str(dist.locate_file(file)))
        if file.parts[0] == ".." or not source.is_file():  # console scripts live outside site-packages
            continue
        (site / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, site / file)


def build_wheel(out: Path) -> Path:
    """The fovea wheel, built from a copy of the sources with this environment's setuptools."""
    try:
        setuptools = Version(metadata.version("setuptools"))
    except metadata.PackageNotFoundError:
        setuptools = Version("0")
    if setuptools < Version("77"):
        pytest.skip(
            f"building the wheel offline needs setuptools>=77 here (the dev extra), found {setuptools}"
        )
    source = out / "source"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    run([*pip, "--wheel-dir", str(out), str(source)], cwd=out)
    [wheel] = out.glob("fovea-*.whl")
    return wheel


def clean_env() -> dict[str, str]:
    """This process's environment without what would point a Python at this one's modules."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "FOVEA_", "VIRTUAL_ENV"))}


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=120, check=False, env=clean_env(), cwd=cwd
    )
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A virtual environment with fovea and its base requirements only."""
    tmp = tmp_path_factory.mktemp("client-install")
    wheel = build_wheel(tmp / "wheel")
    env_dir = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], cwd=tmp)
    python = env_dir / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index"]
    run([*pip, str(wheel)], cwd=tmp)
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(run([str(python), "-c", purelib], cwd=tmp).stdout.strip())
    [installed] = site.glob("fovea-*.dist-info")
    base: dict[str, metadata.Distribution] = {}
    for name in base_requirements(metadata.Distribution.at(installed)):  # what the wheel declares
        base_closure(name, base)
    assert {"grpcio", "grpcio-health-checking", "protobuf", "click"} <= set(base), base
    for dist in base.values():
        copy_installed(dist, site)
    yield env_dir


def in_venv(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A command of the environment, run from an empty folder with nothing of this one's Python path."""
    env = clean_env()
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, env=env, cwd=venv)


def test_the_client_imports_without_server_packages(venv: Path) -> None:
    code = (
        "import importlib.util, sys; import fovea.client, fovea.cli.main; "
        f"print([p for p in {SERVER_PACKAGES!r} if importlib.util.find_spec(p) is not None]); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(" + repr(SERVER_PACKAGES) + ")))"
    )
    done = in_venv(venv, "python", "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "[]"], done.stdout  # none installed, none imported


def test_fovea_help_lists_every_group(venv: Path) -> None:
    done = in_venv(venv, "fovea", "--help")
    assert done.returncode == 0, done.stderr
    for group in ("classify", "classifiers", "detect", "faces", "keys", "models", "style", "up"):
        assert f"  {group} " in done.stdout, group


def test_client_commands_run_up_to_the_gateway(venv: Path) -> None:
    image = venv / "photo.jpg"
    image.write_bytes(b"\xff\xd8 not read by the gateway: nothing answers")
    (venv / "set" / "cat").mkdir(parents=True)
    (venv / "set" / "cat" / "a.jpg").write_bytes(b"")
    gateway = ["fovea", "--gateway", f"127.0.0.1:{free_port()}"]
    commands = [
        ["detect", str(image)],
        ["classify", str(image)],
        ["faces", "verify", "--gallery", "g", "--identity", "i", str(image)],
        ["faces", "enroll", "--gallery", "g", "--identity", "i", str(image)],
        ["style", "submit", str(image), "--style", "mosaic"],
        ["classifiers", "train", "pets", str(venv / "set")],
        ["models", "list"],
    ]
    for command in commands:
        done = in_venv(venv, *gateway, *command)
        assert done.returncode == 1 and done.stderr.startswith("error: UNAVAILABLE"), (command, done.stderr)


def test_platform_commands_say_what_to_install(venv: Path) -> None:
    for command, args in (
        (["models", "build"], []),
        (["up"], []),
        (["demo"], []),
        (["detect", "eval"], ["."]),
    ):
        done = in_venv(venv, "fovea", *command, *args)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert f"error: `fovea {' '.join(command)}` needs the server packages" in done.stderr, done.stderr
        assert done.stderr.rstrip().endswith("pip install 'fovea[server]'"), done.stderr
