"""Kernels: pure functions of tensors with TensorFlow's semantics, static parameters bound by ``partial``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class ConvCfg:
    strides: tuple[int, int]
    dilations: tuple[int, int]
    same: bool
    pads: tuple[int, int, int, int]  # top, bottom, left, right (explicit or absorbed from a Pad)
    nhwc: bool
    depthwise: bool
    has_bias: bool = False
    act: str | None = None
    alpha: float = 0.2
    src_perm: tuple[int, ...] | None = None  # permutation applied to the input first (absorbed Transpose)


@dataclass(frozen=True)
class PoolCfg:
    kind: str  # "max" | "avg"
    ksize: tuple[int, int]
    strides: tuple[int, int]
    same: bool
    pads: tuple[int, int, int, int]
    nhwc: bool
    src_perm: tuple[int, ...] | None = None


def _same_pads(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _spatial_pads(x: Tensor, k: tuple[int, int], cfg: ConvCfg | PoolCfg) -> tuple[int, int, int, int]:
    top, bottom, left, right = cfg.pads
    if cfg.same:
        dil = cfg.dilations if isinstance(cfg, ConvCfg) else (1, 1)
        st, sb = _same_pads(x.shape[2] + top + bottom, k[0], cfg.strides[0], dil[0])
        sl, sr = _same_pads(x.shape[3] + left + right, k[1], cfg.strides[1], dil[1])
        top, bottom, left, right = top + st, bottom + sb, left + sl, right + sr
    return top, bottom, left, right


def _activate(y: Tensor, act: str | None, alpha: float, prelu: Tensor | None) -> Tensor:
    """Activation on an NCHW tensor (``prelu`` is the per-channel slope shaped (C, 1, 1))."""
    if act is None:
        return y
    if act == "relu":
        return F.relu(y)
    if act == "relu6":
        return F.hardtanh(y, 0.0, 6.0)
    if act == "elu":
        return F.elu(y)
    if act == "sigmoid":
        return torch.sigmoid(y)
    if act == "tanh":
        return torch.tanh(y)
    if act == "leakyrelu":
        return F.leaky_relu(y, alpha)
    if act == "prelu" and prelu is not None:
        return torch.where(y >= 0, y, y * prelu)
    raise ValueError(f"unsupported fused activation {act!r}")


def conv_kernel(x: Tensor, w: Tensor, *extra: Tensor, cfg: ConvCfg) -> Tensor:
    """``w`` is already in torch layout: (O, I/groups, kh, kw); depthwise: (C*M, 1, kh, kw)."""
    if cfg.src_perm is not None:
        x = x.permute(cfg.src_perm)
    if cfg.nhwc:
        x = x.permute(0, 3, 1, 2)
    top, bottom, left, right = _spatial_pads(x, (w.shape[2], w.shape[3]), cfg)
    if top == bottom and left == right:
        padding: tuple[int, int] = (top, left)
    else:
        x = F.pad(x, (left, right, top, bottom))
        padding = (0, 0)
    groups = x.shape[1] if cfg.depthwise else x.shape[1] // w.shape[1]
    bias = extra[0] if cfg.has_bias else None
    prelu = extra[-1] if cfg.act == "prelu" else None
    y = F.conv2d(x, w, bias, cfg.strides, padding, cfg.dilations, groups)
    y = _activate(y, cfg.act, cfg.alpha, prelu)
    return y.permute(0, 2, 3, 1) if cfg.nhwc else y


def pool_kernel(x: Tensor, cfg: PoolCfg) -> Tensor:
    if cfg.src_perm is not None:
        x = x.permute(cfg.src_perm)
    if cfg.nhwc:
        x = x.permute(0, 3, 1, 2)
    top, bottom, left, right = _spatial_pads(x, cfg.ksize, cfg)
    kh, kw = cfg.ksize
    if cfg.kind == "max":
        if top == bottom and left == right and top <= kh // 2 and left <= kw // 2:
            y = F.max_pool2d(x, cfg.ksize, cfg.strides, (top, left))
        else:
            y = F.max_pool2d(F.pad(x, (left, right, top, bottom), value=-math.inf), cfg.ksize, cfg.strides)
    elif top == bottom == left == right == 0:
        y = F.avg_pool2d(x, cfg.ksize, cfg.strides)
    else:  # TF averages over the window cells inside the input only
        pads = (left, right, top, bottom)
        total = F.avg_pool2d(F.pad(x, pads), cfg.ksize, cfg.strides, divisor_override=1)
        ones = torch.ones((1, 1, x.shape[2], x.shape[3]), dtype=x.dtype, device=x.device)
        count = F.avg_pool2d(F.pad(ones, pads), cfg.ksize, cfg.strides, divisor_override=1)
        y = total / count
    return y.permute(0, 2, 3, 1) if cfg.nhwc else y


def reshape_kernel(x: Tensor, shape: tuple[int, ...], keep_batch: bool) -> Tensor:
    if keep_batch:
        shape = (x.shape[0], *shape[1:])
    return x.reshape(shape)


def pad_kernel(x: Tensor, pads: tuple[int, ...], value: float) -> Tensor:
    return F.pad(x, pads, value=value)


def split_kernel(x: Tensor, sizes: list[int], axis: int) -> tuple[Tensor, ...]:
    return torch.split(x, sizes, dim=axis)


def concat_kernel(*xs: Tensor, axis: int) -> Tensor:
    return torch.cat(xs, dim=axis)


def stack_kernel(*xs: Tensor, axis: int) -> Tensor:
    return torch.stack(xs, dim=axis)


def index_kernel(x: Tensor, index: tuple[Any, ...]) -> Tensor:
    return x[index]


def squeeze_kernel(x: Tensor, dims: tuple[int, ...]) -> Tensor:
    if not dims:
        return x.squeeze()
    return x.squeeze(tuple(d % x.dim() for d in dims))


def mean_kernel(x: Tensor, dims: tuple[int, ...], keepdim: bool) -> Tensor:
    return torch.mean(x, dim=dims, keepdim=keepdim)


def sparse_to_dense_kernel(indices: Tensor, shape: Tensor, values: Tensor, default: Tensor) -> Tensor:
    out = torch.full(shape.tolist(), default.item(), dtype=values.dtype, device=values.device)
    if indices.numel() == 0:
        return out
    idx = indices.long().reshape(indices.shape[0], -1) if indices.dim() > 0 else indices.long().reshape(1, 1)
    out[tuple(idx.t())] = values
    return out


def resize_bilinear_kernel(x: Tensor, size: tuple[int, int], align_corners: bool, half_pixel: bool) -> Tensor:
    """NHWC bilinear resize with TensorFlow's coordinate conventions."""
    y = x.permute(0, 3, 1, 2)
    if align_corners or half_pixel:  # torch's two modes are exactly TF's (half-pixel clamps below 0 alike)
        if not y.is_floating_point():
            y = y.float()
        out = F.interpolate(y, size=size, mode="bilinear", align_corners=align_corners)
        return out.permute(0, 2, 3, 1)
    # legacy TF: src = dst * in / out
    for axis, (n_in, n_out) in ((2, (y.shape[2], size[0])), (3, (y.shape[3], size[1]))):
        factor = n_out // n_in
        if n_out == factor * n_in and factor > 1 and factor & (factor - 1) == 0 and n_in > 1:
            y = _upsample_legacy_integer(y, axis, factor)  # 2x, 4x, ...: the same numbers, no gathers
            continue
        src = torch.arange(n_out, device=y.device, dtype=torch.float32) * (n_in / n_out)
        lo = src.floor().long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        frac = (src - lo.float()).to(y.dtype)
        shape = [1, 1, 1, 1]
        shape[axis] = n_out
        a, b = y.index_select(axis, lo), y.index_select(axis, hi)
        y = a + (b - a) * frac.reshape(shape)
    return y.permute(0, 2, 3, 1)


def _upsample_legacy_integer(y: Tensor, axis: int, factor: int) -> Tensor:
    """Legacy TF bilinear upsampling of float ``y`` along ``axis`` by a power-of-two ``factor``, no gathers.

    Output ``factor * i + j`` reads ``src = i + j / factor``: ``y[i] + (y[i + 1] - y[i]) * (j / factor)``,
    ``y[n]`` clamped to ``y[n - 1]``. The general (index-select) path computes the same formula with the same
    fractions (exact in binary for these factors), so the results are identical; slices, broadcasts and a
    reshape run several times faster in onnxruntime than its ``Gather``.
    """
    n_in = y.shape[axis]
    following = torch.cat((y.narrow(axis, 1, n_in - 1), y.narrow(axis, n_in - 1, 1)), axis)
    step = following - y
    parts = [y, *(y + step * (j / factor) for j in range(1, factor))]  # j = 0 is y itself (frac 0)
    return torch.stack(parts, axis + 1).flatten(axis, axis + 1)


def resize_nearest_kernel(x: Tensor, size: tuple[int, int], align_corners: bool, half_pixel: bool) -> Tensor:
    """NHWC nearest-neighbour resize with TensorFlow's index rule."""
    for axis, n_out in ((1, size[0]), (2, size[1])):
        n_in = x.shape[axis]
        dst = torch.arange(n_out, device=x.device, dtype=torch.float32)
        if align_corners:
            scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
            src = torch.floor(dst * scale + 0.5)  # TF rounds half away from zero; values are >= 0
        elif half_pixel:
            src = torch.floor((dst + 0.5) * (n_in / n_out))
        else:
            src = torch.floor(dst * (n_in / n_out))
        x = x.index_select(axis, src.long().clamp(0, n_in - 1))
    return x


def matmul_kernel(
    x: Tensor, w: Tensor, *bias: Tensor, transpose_a: bool, act: str | None, alpha: float
) -> Tensor:
    y = (x.transpose(-1, -2) if transpose_a else x) @ w
    if bias:
        y = y + bias[0]
    return _activate(y, act, alpha, None)


def prelu_kernel(x: Tensor, alpha: Tensor) -> Tensor:
    """TF's ``Prelu(x, alpha)``: ``x`` where ``x >= 0``, else ``alpha * x`` (``alpha`` broadcasts from the
    right, per channel for an NHWC ``x``)."""
    return torch.where(x >= 0, x, x * alpha)
