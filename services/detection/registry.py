"""The detectors this service can run: every model directory with a ``fovea.json`` detector spec."""

from __future__ import annotations

from pathlib import Path

from fovea.detection.core.spec import DetectorSpec, load_spec

SPEC_FILE = "fovea.json"


def load_detectors(repository: Path, default_model: str) -> dict[str, DetectorSpec]:
    """Read and validate every detector spec at start-up; the default model must be among them."""
    if not repository.is_dir():
        raise ValueError(f"model repository {repository} does not exist")
    specs = {}
    for path in sorted(repository.glob(f"*/{SPEC_FILE}")):
        try:
            spec = load_spec(path)
        except ValueError as exc:
            raise ValueError(f"invalid detector spec {path}: {exc}") from exc
        if spec.name != path.parent.name:
            raise ValueError(f"{path}: name {spec.name!r} differs from its directory {path.parent.name!r}")
        specs[spec.name] = spec
    if default_model not in specs:
        raise ValueError(
            f"default detector {default_model!r} has no {SPEC_FILE} in {repository}; found: {sorted(specs) or 'none'}"
        )
    return specs
