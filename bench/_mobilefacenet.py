"""A MobileFaceNet-shaped face embedder for timing only: the held-out Verify script's embedder class, with
seeded random weights.

Issue 23's Verify must-show is a ratio against a RetinaFace-mobilenet0.25 + MobileFaceNet script. No registry
package here ships MobileFaceNet weights, and the platform keeps dlib's ResNet (stored templates stay
comparable), so only the script's side changes: this is MobileFaceNet's layer plan (Chen et al. 2018,
Table 1: a 112x112 input, a 3x3 convolution and a depthwise one at 64 channels, inverted-residual bottlenecks
(expansion, channels, repeats, stride) (2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2),
(2, 128, 2, 1), a 1x1 convolution to 512, the global depthwise 7x7 and a linear 1x1 to 128; batch norm and
PReLU), exported as InsightFace's ONNX embedders are (float32 NCHW, pixels (x - 127.5) / 127.5, one 128-float
output). Its distances mean nothing: ``bench/verify_user.py --embedder mobilefacenet`` times it and does not
compare decisions.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

SIZE = 112
PLAN = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


def conv(
    cin: int,
    cout: int,
    k: int,
    stride: int = 1,
    groups: int = 1,
    act: bool = True,
    padding: int | None = None,
) -> nn.Sequential:
    pad = (k - 1) // 2 if padding is None else padding
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.PReLU(cout))
    return nn.Sequential(*layers)


class Bottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, expansion: int, stride: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.body = nn.Sequential(
            conv(cin, hidden, 1),
            conv(hidden, hidden, 3, stride, groups=hidden),
            conv(hidden, cout, 1, act=False),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class MobileFaceNet(nn.Module):
    """(N, 3, 112, 112) float32 -> (N, 128)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv(3, 64, 3, 2), conv(64, 64, 3, groups=64)]
        channels = 64
        for expansion, cout, repeats, stride in PLAN:
            for i in range(repeats):
                layers.append(Bottleneck(channels, cout, expansion, stride if i == 0 else 1))
                channels = cout
        layers += [conv(channels, 512, 1), conv(512, 512, 7, groups=512, act=False, padding=0)]  # GDConv
        self.features = nn.Sequential(*layers)
        self.linear = nn.Sequential(nn.Conv2d(512, 128, 1, bias=False), nn.BatchNorm2d(128))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(x)).flatten(1)


def export(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    torch.onnx.export(
        MobileFaceNet().eval(),
        (torch.zeros(1, 3, SIZE, SIZE),),
        str(path),
        dynamo=False,
        opset_version=13,
        input_names=["data"],
        output_names=["fc1"],
        dynamic_axes={"data": {0: "n"}, "fc1": {0: "n"}},
    )
    return path
