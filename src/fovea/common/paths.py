"""Where Fovea's files are, in one place: the project folder and its model repository.

From a source checkout the project folder is the checkout (``pyproject.toml`` beside ``src/``); from an
installed wheel, where no checkout is around the package, it is ``FOVEA_HOME`` or else the current directory
(a container's working directory, say ``/app``). No module guesses with ``Path(__file__).parents[n]``.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]  # src/fovea


def source_checkout() -> Path | None:
    """The source checkout this package runs from (an editable install or ``src/`` on the path), else None."""
    root = _PACKAGE.parents[1]
    if _PACKAGE.parent.name == "src" and (root / "pyproject.toml").is_file():
        return root
    return None


def project_root() -> Path:
    """``FOVEA_HOME`` when set; else the source checkout; else the current directory."""
    home = os.environ.get("FOVEA_HOME")
    if home:
        return Path(home).expanduser().resolve()
    return source_checkout() or Path.cwd()


def model_repository() -> Path:
    """The built-in Triton model repository: ``<project root>/model_repository``."""
    return project_root() / "model_repository"
