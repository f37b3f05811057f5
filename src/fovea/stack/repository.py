"""The local stack's model repositories: a user's exported ONNX detector imported into the user repository
(``fovea models import-onnx``), a model loaded in the running Triton (``fovea models load``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fovea.common.triton import SyncTritonClient
from fovea.convert.onnx_import import ImportOptions, ImportResult, import_onnx, is_imported, preflight
from fovea.stack.config import StackSettings


def import_user_model(
    source: Path,
    name: str,
    options: ImportOptions,
    settings: StackSettings,
    *,
    repository: Path | None = None,
    force: bool = False,
) -> ImportResult:
    """Import ``source`` as model ``name`` into ``repository`` (default: the stack's user repository),
    refusing a name the platform's or the user's repository holds already (unless ``force`` for the target).

    Raises:
        ValueError: the file, the options or the name (see :func:`fovea.convert.onnx_import.import_onnx`).
    """
    return import_onnx(
        source,
        repository or settings.user_models,
        name,
        options,
        force=force,
        other_repositories=[settings.model_repository, settings.user_models],
    )


def load_model(name: str, settings: StackSettings) -> Iterator[str]:
    """Load (or reload) model ``name`` from the user's or the platform's repository in the stack's Triton;
    an imported model is checked first (:func:`fovea.convert.onnx_import.preflight`). Yields a line per
    step done.

    Raises:
        ValueError: no such model, or its check failed.
        FoveaError: Triton refused or did not answer.
    """
    repositories = [settings.user_models, settings.model_repository.resolve()]
    found = [r / name for r in repositories if (r / name / "config.pbtxt").is_file()]
    if not found:
        raise ValueError(f"no model {name!r} in {' or '.join(map(str, repositories))}")
    token_file = settings.internal_token_file  # the running stack's Triton requires it
    token = token_file.read_bytes().strip() if token_file.is_file() else None
    client = SyncTritonClient(settings.triton_grpc_url, token=token)
    try:
        if is_imported(found[0]):
            yield f"checked {found[0]}: {preflight(found[0])}"
        client.load_model(name)
    finally:
        client.close()
    yield f"loaded {name} in Triton at {settings.triton_grpc_url}"
