"""Shared test helpers: where the repository and its test fixtures are."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """``tests/fixtures``: reference outputs of the original runtimes (provenance in its README.md)."""
    return FIXTURES
