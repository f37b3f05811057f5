"""The detectors this service can run: every model directory with a ``fovea.json`` detector spec.

Specs come from the platform's model repository and, optionally, a user repository (models added by
``fovea models import-onnx``, loaded into Triton while the service runs): :class:`DetectorRegistry`
rescans the repositories when a request names a model it does not know.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from fovea.contracts.detector import DetectorSpec, load_spec

log = logging.getLogger(__name__)

SPEC_FILE = "fovea.json"


def _scan(repository: Path, strict: bool) -> list[DetectorSpec]:
    specs = []
    for path in sorted(repository.glob(f"*/{SPEC_FILE}")):
        if path.parent.name.startswith("."):  # an import being assembled (onnx_import stages there)
            continue
        try:
            spec = load_spec(path)
            if spec.name != path.parent.name:
                raise ValueError(f"name {spec.name!r} differs from its directory {path.parent.name!r}")
        except ValueError as exc:
            if strict:
                raise ValueError(f"invalid detector spec {path}: {exc}") from exc
            log.warning("skipping invalid detector spec %s: %s", path, exc)
            continue
        specs.append(spec)
    return specs


def load_detectors(
    repositories: Path | Sequence[Path], default_model: str, *, strict: bool = True
) -> dict[str, DetectorSpec]:
    """Read and validate every detector spec; the default model must be among them.

    Args:
        repositories: the platform's repository (must exist), then any others (missing = empty).
        default_model: the detector used when a request names none.
        strict: raise on an invalid spec or a name found twice (start-up); otherwise log and skip it.
    """
    repositories = [repositories] if isinstance(repositories, Path) else list(repositories)
    if not repositories or not repositories[0].is_dir():
        raise ValueError(f"model repository {repositories[0] if repositories else None} does not exist")
    specs: dict[str, DetectorSpec] = {}
    where: dict[str, Path] = {}
    for repository in repositories:
        if not repository.is_dir():
            continue
        for spec in _scan(repository, strict):
            if spec.name in specs:
                message = f"detector {spec.name!r} is in both {where[spec.name]} and {repository}"
                if strict:
                    raise ValueError(message)
                log.warning("%s; keeping the first", message)
                continue
            specs[spec.name], where[spec.name] = spec, repository
    if default_model not in specs:
        raise ValueError(
            f"default detector {default_model!r} has no {SPEC_FILE} in {repositories[0]}; found: {sorted(specs) or 'none'}"
        )
    return specs


class DetectorRegistry:
    """Detector specs by name; asking for an unknown name rescans the repositories once.

    Start-up is strict (an invalid spec stops the service); a rescan skips invalid specs with a warning
    and keeps serving the detectors it already knows.
    """

    def __init__(self, repositories: Sequence[Path], default_model: str) -> None:
        self.repositories = list(repositories)
        self.default_model = default_model
        self._specs = load_detectors(self.repositories, default_model)

    @property
    def specs(self) -> dict[str, DetectorSpec]:
        return dict(self._specs)

    def rescan(self) -> None:
        try:
            self._specs = load_detectors(self.repositories, self.default_model, strict=False)
        except ValueError as exc:  # e.g. the platform repository went away: keep what we have
            log.warning("detector rescan failed, keeping %d known detectors: %s", len(self._specs), exc)

    def get(self, name: str) -> DetectorSpec | None:
        """The spec of ``name``, rescanning the repositories first when it is not known (yet)."""
        spec = self._specs.get(name)
        if spec is None:
            self.rescan()
            spec = self._specs.get(name)
        return spec
