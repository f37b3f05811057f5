"""A YOLOX-nano-shaped network for timing only: the held-out script's model class, with seeded random weights.

Issue 23's first two must-shows are ratios against a user's YOLOX-nano script. No registry package ships
YOLOX-nano weights, but a network's speed is its shape, not its weights: this is YOLOX-nano's layer plan
(Megvii's ``yolox`` 0.3.0, ``exps/default/yolox_nano.py``: depth 0.33, width 0.25, depthwise convolutions,
SiLU, a 416x416 input; CSPDarknet with Focus and SPP, a PAFPN, the decoupled head), about 0.91 M parameters,
exported the way YOLOX's ``tools/export_onnx.py`` does (``decode_in_inference`` off: one output
``(1, 3549, 85)`` = raw box offsets, sigmoid objectness, 80 sigmoid class scores per anchor). The class and
objectness biases start where YOLOX's ``initialize_biases(1e-2)`` puts them, and the prediction weights are
small, so that every score sits near 1e-4: no box passes a 0.3 threshold on either side, and both sides time
the same fixed work. A real export (``--onnx`` of ``bench/yolox_user.py``) replaces it where one is at hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

SIZE = 416
STRIDES = (8, 16, 32)
CLASSES = 80


class Conv(nn.Sequential):
    """Convolution (no bias), batch norm (YOLOX's eps 1e-3), SiLU."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> None:
        conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False)
        super().__init__(conv, nn.BatchNorm2d(cout, eps=1e-3, momentum=0.03), nn.SiLU())


class DWConv(nn.Sequential):
    """Depthwise k x k then pointwise 1 x 1 (YOLOX's ``DWConv``)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1) -> None:
        super().__init__(Conv(cin, cin, k, stride, groups=cin), Conv(cin, cout, 1))


class Bottleneck(nn.Module):
    def __init__(self, channels: int, shortcut: bool) -> None:
        super().__init__()
        self.conv1, self.conv2 = Conv(channels, channels, 1), DWConv(channels, channels, 3)
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        return y + x if self.shortcut else y


class CSPLayer(nn.Module):
    def __init__(self, cin: int, cout: int, n: int, shortcut: bool = True) -> None:
        super().__init__()
        hidden = cout // 2
        self.conv1, self.conv2, self.conv3 = (
            Conv(cin, hidden, 1),
            Conv(cin, hidden, 1),
            Conv(2 * hidden, cout, 1),
        )
        self.m = nn.Sequential(*(Bottleneck(hidden, shortcut) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(torch.cat((self.m(self.conv1(x)), self.conv2(x)), 1))


class Focus(nn.Module):
    """Space to depth (every other pixel into channels), then a 3x3 convolution."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = Conv(cin * 4, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tl, tr = x[..., ::2, ::2], x[..., ::2, 1::2]
        bl, br = x[..., 1::2, ::2], x[..., 1::2, 1::2]
        return self.conv(torch.cat((tl, bl, tr, br), 1))


class SPP(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = Conv(cin, cin // 2, 1), Conv(cin // 2 * 4, cout, 1)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in (5, 9, 13))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x, *(p(x) for p in self.pools)], 1))


class YoloxNano(nn.Module):
    """(1, 3, 416, 416) float32 BGR pixels 0-255 -> (1, 3549, 85): box offsets (cx, cy, log w, log h in grid
    cells), objectness, 80 class scores."""

    def __init__(self) -> None:
        super().__init__()
        c, d = 16, 1  # base channels int(64 * 0.25), base depth round(3 * 0.33)
        self.stem = Focus(3, c)
        self.dark2 = nn.Sequential(DWConv(c, 2 * c, 3, 2), CSPLayer(2 * c, 2 * c, d))
        self.dark3 = nn.Sequential(DWConv(2 * c, 4 * c, 3, 2), CSPLayer(4 * c, 4 * c, 3 * d))
        self.dark4 = nn.Sequential(DWConv(4 * c, 8 * c, 3, 2), CSPLayer(8 * c, 8 * c, 3 * d))
        self.dark5 = nn.Sequential(
            DWConv(8 * c, 16 * c, 3, 2), SPP(16 * c, 16 * c), CSPLayer(16 * c, 16 * c, d, shortcut=False)
        )
        # PAFPN over (64, 128, 256) channels
        self.lateral0, self.c3_p4 = Conv(256, 128, 1), CSPLayer(256, 128, 1, False)
        self.reduce1, self.c3_p3 = Conv(128, 64, 1), CSPLayer(128, 64, 1, False)
        self.bu2, self.c3_n3 = DWConv(64, 64, 3, 2), CSPLayer(128, 128, 1, False)
        self.bu1, self.c3_n4 = DWConv(128, 128, 3, 2), CSPLayer(256, 256, 1, False)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        # decoupled head, 64 hidden channels a level
        self.stems = nn.ModuleList(Conv(ch, 64, 1) for ch in (64, 128, 256))
        self.cls_convs = nn.ModuleList(nn.Sequential(DWConv(64, 64, 3), DWConv(64, 64, 3)) for _ in STRIDES)
        self.reg_convs = nn.ModuleList(nn.Sequential(DWConv(64, 64, 3), DWConv(64, 64, 3)) for _ in STRIDES)
        self.cls_preds = nn.ModuleList(nn.Conv2d(64, CLASSES, 1) for _ in STRIDES)
        self.reg_preds = nn.ModuleList(nn.Conv2d(64, 4, 1) for _ in STRIDES)
        self.obj_preds = nn.ModuleList(nn.Conv2d(64, 1, 1) for _ in STRIDES)
        prior = -math.log((1 - 1e-2) / 1e-2)
        for pred in (*self.cls_preds, *self.obj_preds, *self.reg_preds):
            nn.init.normal_(pred.weight, std=1e-3)
            nn.init.constant_(pred.bias, prior if pred.out_channels != 4 else 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dark2(self.stem(x))
        x2 = self.dark3(x)
        x1 = self.dark4(x2)
        x0 = self.dark5(x1)
        fpn0 = self.lateral0(x0)
        f0 = self.c3_p4(torch.cat((self.up(fpn0), x1), 1))
        fpn1 = self.reduce1(f0)
        pan2 = self.c3_p3(torch.cat((self.up(fpn1), x2), 1))
        pan1 = self.c3_n3(torch.cat((self.bu2(pan2), fpn1), 1))
        pan0 = self.c3_n4(torch.cat((self.bu1(pan1), fpn0), 1))
        levels = []
        for i, feature in enumerate((pan2, pan1, pan0)):
            f = self.stems[i](feature)
            cls, reg = self.cls_convs[i](f), self.reg_convs[i](f)
            out = torch.cat(
                (self.reg_preds[i](reg), self.obj_preds[i](reg).sigmoid(), self.cls_preds[i](cls).sigmoid()),
                1,
            )
            levels.append(out.flatten(2))
        return torch.cat(levels, 2).permute(0, 2, 1)


def export(path: Path, seed: int = 0) -> Path:
    """The stand-in as ``tools/export_onnx.py`` writes a YOLOX-nano (opset 11, input ``images``, output
    ``output``, batch of 1)."""
    torch.manual_seed(seed)
    model = YoloxNano().eval()
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, SIZE, SIZE),),
        str(path),
        dynamo=False,
        opset_version=11,
        input_names=["images"],
        output_names=["output"],
    )
    return path
