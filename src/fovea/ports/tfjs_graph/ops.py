"""Op handlers: each TF.js op a graph spec may hold, turned into plan steps over the kernels."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from fovea.ports.tfjs_graph.builder import Builder, Node
from fovea.ports.tfjs_graph.kernels import (
    ConvCfg,
    PoolCfg,
    concat_kernel,
    conv_kernel,
    index_kernel,
    matmul_kernel,
    mean_kernel,
    pad_kernel,
    pool_kernel,
    prelu_kernel,
    reshape_kernel,
    resize_bilinear_kernel,
    resize_nearest_kernel,
    sparse_to_dense_kernel,
    split_kernel,
    squeeze_kernel,
    stack_kernel,
)
from fovea.ports.tfjs_graph.parse import TF_DTYPES


def _data_format_nhwc(node: Node) -> bool:
    fmt = node.attrs.get("data_format", "NHWC") or "NHWC"
    if fmt not in ("NHWC", "NCHW"):
        raise ValueError(f"node {node.name!r}: unsupported data_format {fmt!r}")
    return fmt == "NHWC"


def _hw(values: list[int] | None, nhwc: bool, default: int = 1) -> tuple[int, int]:
    if not values:
        return default, default
    if len(values) == 2:
        return int(values[0]), int(values[1])
    return (int(values[1]), int(values[2])) if nhwc else (int(values[2]), int(values[3]))


def _padding(node: Node, nhwc: bool) -> tuple[bool, tuple[int, int, int, int]]:
    mode = node.attrs.get("padding", "VALID")
    if mode == "SAME":
        return True, (0, 0, 0, 0)
    if mode == "VALID":
        return False, (0, 0, 0, 0)
    if mode == "EXPLICIT":
        p = [int(v) for v in node.attrs.get("explicit_paddings", [])]
        if len(p) != 8:
            raise ValueError(f"node {node.name!r}: explicit_paddings must have 8 entries, got {p}")
        h, w = (2, 4) if nhwc else (4, 6)  # entries are (before, after) per dim in data_format order
        return False, (p[h], p[h + 1], p[w], p[w + 1])
    raise ValueError(f"node {node.name!r}: unsupported padding {mode!r}")


_ACTIVATIONS = {
    "Relu": "relu",
    "Relu6": "relu6",
    "Elu": "elu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "LeakyRelu": "leakyrelu",
    "Prelu": "prelu",
}


def _op_conv(b: Builder, node: Node) -> None:
    nhwc = _data_format_nhwc(node)
    depthwise = "Depthwise" in node.op
    filt = b.static(node, 1).float()
    if filt.dim() != 4:
        raise ValueError(f"node {node.name!r}: filter must be 4-D, got shape {list(filt.shape)}")
    if depthwise:  # (kh, kw, C, M) -> (C*M, 1, kh, kw); output channel c*M + m as in TF
        kh, kw, c, m = filt.shape
        weight = filt.permute(2, 3, 0, 1).reshape(c * m, 1, kh, kw).contiguous()
    else:  # (kh, kw, I, O) -> (O, I, kh, kw)
        weight = filt.permute(3, 2, 0, 1).contiguous()
    same, pads = _padding(node, nhwc)
    cfg = ConvCfg(
        strides=_hw(node.attrs.get("strides"), nhwc),
        dilations=_hw(node.attrs.get("dilations"), nhwc),
        same=same,
        pads=pads,
        nhwc=nhwc,
        depthwise=depthwise,
    )
    x = b.arg(node, 0)
    absorbed = b.absorb_pad(x, 0.0, (1, 2) if nhwc else (2, 3))
    if absorbed is not None and not same and pads == (0, 0, 0, 0):
        x, perm, spatial = absorbed
        cfg = replace(cfg, pads=spatial, src_perm=None if perm is None else tuple(perm))
    args = [x, b.add_const(weight)]

    fused = list(node.attrs.get("fused_ops", [])) if node.op.startswith(("_Fused", "Fused")) else []
    extra = node.inputs[2:]
    if fused:
        if fused[0] != "BiasAdd":
            raise ValueError(f"node {node.name!r}: unsupported fused ops {fused}")
        args.append(b.add_const(b.static(node, 2).float().reshape(-1)))
        cfg = replace(cfg, has_bias=True)
        for op in fused[1:]:
            if op not in _ACTIVATIONS:
                raise ValueError(f"node {node.name!r}: unsupported fused activation {op!r}")
            act = _ACTIVATIONS[op]
            cfg = replace(cfg, act=act, alpha=float(node.attrs.get("leakyrelu_alpha", 0.2)))
            if act == "prelu":
                if len(extra) < 2:
                    raise ValueError(f"node {node.name!r}: fused Prelu needs an alpha input")
                alpha = b.static(node, 3).float()
                if alpha.numel() != alpha.shape[-1]:
                    raise ValueError(f"node {node.name!r}: only per-channel Prelu alpha is supported")
                args.append(b.add_const(alpha.reshape(-1, 1, 1)))
    b.emit(
        node,
        partial(conv_kernel, cfg=cfg),
        args,
        kind="conv",
        meta={"cfg": cfg, "out_channels": weight.shape[0]},
    )


def _op_pool(b: Builder, node: Node) -> None:
    nhwc = _data_format_nhwc(node)
    same, pads = _padding(node, nhwc)
    kind = "max" if node.op == "MaxPool" else "avg"
    cfg = PoolCfg(
        kind=kind,
        ksize=_hw(node.attrs.get("ksize"), nhwc),
        strides=_hw(node.attrs.get("strides"), nhwc),
        same=same,
        pads=pads,
        nhwc=nhwc,
    )
    x = b.arg(node, 0)
    if kind == "max" and not same and pads == (0, 0, 0, 0):
        absorbed = b.absorb_pad(x, -math.inf, (1, 2) if nhwc else (2, 3))
        if absorbed is not None:
            x, perm, spatial = absorbed
            cfg = replace(cfg, pads=spatial, src_perm=None if perm is None else tuple(perm))
    b.emit(node, partial(pool_kernel, cfg=cfg), [x])


def _op_binary(fn: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Builder, Node], None]:
    def handler(b: Builder, node: Node) -> None:
        lhs, rhs = b.arg(node, 0), b.arg(node, 1)
        if node.op in ("Add", "AddV2", "BiasAdd") and _try_fuse_bias(b, node, lhs, rhs):
            return
        if node.op == "BiasAdd" and not _data_format_nhwc(node):
            bias = b.const(rhs)
            if bias is None:
                raise ValueError(f"node {node.name!r}: NCHW BiasAdd needs a constant bias")
            rhs = b.add_const(bias.reshape(-1, 1, 1))
        b.emit(node, fn, [lhs, rhs])

    return handler


def _try_fuse_bias(b: Builder, node: Node, lhs: str, rhs: str) -> bool:
    """Fold ``conv + constant per-channel vector`` into the convolution's bias (conv used only here)."""
    for x, other in ((lhs, rhs), (rhs, lhs)):
        step = b.producer.get(x)
        bias = b.const(other)
        if step is None or step.kind != "conv" or bias is None or not bias.is_floating_point():
            continue
        cfg: ConvCfg = step.meta["cfg"]
        channels = step.meta["out_channels"]
        if b.consumers.get(x, 0) != 1 or cfg.has_bias or cfg.act is not None or bias.numel() != channels:
            continue
        if node.op == "BiasAdd":
            if bias.dim() != 1 or _data_format_nhwc(node) != cfg.nhwc:
                continue
        elif bias.dim() > 4 or bias.shape[bias.dim() - 1 if cfg.nhwc else bias.dim() - 3 :] != (
            (channels,) if cfg.nhwc else (channels, 1, 1)
        ):
            continue
        new_cfg = replace(cfg, has_bias=True)
        args = [step.args[0], step.args[1], b.add_const(bias.float().reshape(-1))]
        b.emit(node, partial(conv_kernel, cfg=new_cfg), args, kind="conv", meta={**step.meta, "cfg": new_cfg})
        return True
    return False


def _op_unary(fn: Callable[[Tensor], Tensor]) -> Callable[[Builder, Node], None]:
    def handler(b: Builder, node: Node) -> None:
        b.emit(node, fn, [b.arg(node, 0)])

    return handler


def _op_matmul(b: Builder, node: Node) -> None:
    """``MatMul`` / ``_FusedMatMul`` (Keras ``Dense``): x @ W (+ bias, then an activation when fused); W
    must be constant (transposed once at build time when ``transpose_b``)."""
    w = b.static(node, 1).float()
    if w.dim() != 2:
        raise ValueError(f"node {node.name!r}: MatMul weights must be 2-D, got shape {list(w.shape)}")
    if node.attrs.get("transpose_b", False):
        w = w.t().contiguous()
    args = [b.arg(node, 0), b.add_const(w)]
    act, alpha = None, 0.2
    fused = list(node.attrs.get("fused_ops", [])) if node.op.startswith("_Fused") else []
    if fused:
        if fused[0] != "BiasAdd":
            raise ValueError(f"node {node.name!r}: unsupported fused ops {fused}")
        args.append(b.add_const(b.static(node, 2).float().reshape(-1)))
        for op in fused[1:]:
            if op not in _ACTIVATIONS or _ACTIVATIONS[op] == "prelu":
                raise ValueError(f"node {node.name!r}: unsupported fused activation {op!r}")
            act, alpha = _ACTIVATIONS[op], float(node.attrs.get("leakyrelu_alpha", 0.2))
    transpose_a = bool(node.attrs.get("transpose_a", False))
    b.emit(node, partial(matmul_kernel, transpose_a=transpose_a, act=act, alpha=alpha), args)


def _op_leaky_relu(b: Builder, node: Node) -> None:
    b.emit(node, partial(F.leaky_relu, negative_slope=float(node.attrs.get("alpha", 0.2))), [b.arg(node, 0)])


def _op_prelu(b: Builder, node: Node) -> None:
    """``Prelu(x, alpha)`` as the TF.js converter writes Keras ``PReLU``: its ``alpha`` constant (named
    ``.../Neg``, already negated back by the converter) is the slope for negative inputs."""
    b.emit(node, prelu_kernel, [b.arg(node, 0), b.arg(node, 1)])


def _op_softmax(b: Builder, node: Node) -> None:
    b.emit(node, partial(torch.softmax, dim=-1), [b.arg(node, 0)])


def _op_identity(b: Builder, node: Node) -> None:
    b.alias[node.name] = b.arg(node, 0)


def _op_reshape(b: Builder, node: Node) -> None:
    x = b.arg(node, 0)
    shape = tuple(b.static_ints(node, 1))
    keep_batch = (
        b.batch_polymorphic
        and b.const(x) is None
        and b.batch_size is not None
        and len(shape) > 0
        and shape[0] == b.batch_size
    )
    b.emit(node, partial(reshape_kernel, shape=shape, keep_batch=keep_batch), [x])


def _op_transpose(b: Builder, node: Node) -> None:
    perm = b.static_ints(node, 1)
    x = b.arg(node, 0)
    b.emit(node, partial(torch.permute, dims=perm), [x], kind="transpose", meta={"perm": perm})


def _op_pad(b: Builder, node: Node) -> None:
    paddings = b.static(node, 1).reshape(-1, 2).tolist()
    pads = [[int(lo), int(hi)] for lo, hi in paddings]
    if any(v < 0 for pair in pads for v in pair):
        raise ValueError(f"node {node.name!r}: negative paddings are not supported")
    value = float(b.static(node, 2).item()) if node.op == "PadV2" else 0.0
    flat = tuple(v for pair in reversed(pads) for v in pair)
    fn = partial(pad_kernel, pads=flat, value=value)
    b.emit(node, fn, [b.arg(node, 0)], kind="pad", meta={"pads": pads, "value": value})


def _op_concat(b: Builder, node: Node) -> None:
    if node.op == "ConcatV2":
        axis = int(b.static(node, len(node.inputs) - 1).item())
        args = [b.arg(node, i) for i in range(len(node.inputs) - 1)]
    else:  # Concat: axis first
        axis = int(b.static(node, 0).item())
        args = [b.arg(node, i) for i in range(1, len(node.inputs))]
    b.emit(node, partial(concat_kernel, axis=axis), args)


def _op_pack(b: Builder, node: Node) -> None:
    args = [b.arg(node, i) for i in range(len(node.inputs))]
    b.emit(node, partial(stack_kernel, axis=int(node.attrs.get("axis", 0))), args)


def _op_split(b: Builder, node: Node) -> None:
    if node.op == "SplitV":
        x, sizes, axis = b.arg(node, 0), b.static_ints(node, 1), int(b.static(node, 2).item())
        n_out = len(sizes)
    else:  # Split(axis, value), equal parts
        axis, x = int(b.static(node, 0).item()), b.arg(node, 1)
        n_out = int(node.attrs.get("num_split", 1))
        sizes = [-1] * n_out
    if sizes.count(-1) > 1 and node.op == "SplitV":
        raise ValueError(f"node {node.name!r}: at most one split size may be -1")

    def split(t: Tensor) -> tuple[Tensor, ...]:
        dim = t.shape[axis]
        if node.op == "Split":
            if dim % n_out:
                raise ValueError(f"node {node.name!r}: dim {dim} not divisible into {n_out} parts")
            parts = [dim // n_out] * n_out
        else:
            known = sum(s for s in sizes if s != -1)
            parts = [dim - known if s == -1 else s for s in sizes]
        return split_kernel(t, parts, axis)

    b.emit(node, split, [x], n_out=n_out)


def _op_strided_slice(b: Builder, node: Node) -> None:
    begin, end = b.static_ints(node, 1), b.static_ints(node, 2)
    strides = b.static_ints(node, 3) if len(node.inputs) > 3 else [1] * len(begin)
    masks = {k: int(node.attrs.get(k, 0)) for k in ("begin_mask", "end_mask", "ellipsis_mask")}
    new_axis, shrink = int(node.attrs.get("new_axis_mask", 0)), int(node.attrs.get("shrink_axis_mask", 0))
    index: list[Any] = []
    for i, (lo, hi, st) in enumerate(zip(begin, end, strides, strict=True)):
        bit = 1 << i
        if masks["ellipsis_mask"] & bit:
            index.append(Ellipsis)
        elif new_axis & bit:
            index.append(None)
        elif shrink & bit:
            index.append(lo)
        else:
            if st <= 0:
                raise ValueError(f"node {node.name!r}: StridedSlice stride {st} is not supported (only > 0)")
            index.append(
                slice(None if masks["begin_mask"] & bit else lo, None if masks["end_mask"] & bit else hi, st)
            )
    b.emit(node, partial(index_kernel, index=tuple(index)), [b.arg(node, 0)])


def _op_slice(b: Builder, node: Node) -> None:
    begin, size = b.static_ints(node, 1), b.static_ints(node, 2)
    index = tuple(slice(lo, None if n == -1 else lo + n) for lo, n in zip(begin, size, strict=True))
    b.emit(node, partial(index_kernel, index=index), [b.arg(node, 0)])


def _op_squeeze(b: Builder, node: Node) -> None:
    dims = tuple(int(d) for d in node.attrs.get("squeeze_dims", []) or node.attrs.get("axis", []) or [])
    b.emit(node, partial(squeeze_kernel, dims=dims), [b.arg(node, 0)])


def _op_expand_dims(b: Builder, node: Node) -> None:
    axis = int(b.static(node, 1).item())
    b.emit(node, partial(torch.unsqueeze, dim=axis), [b.arg(node, 0)])


def _op_mean(b: Builder, node: Node) -> None:
    dims = tuple(b.static_ints(node, 1))
    keep = bool(node.attrs.get("keep_dims", False))
    b.emit(node, partial(mean_kernel, dims=dims, keepdim=keep), [b.arg(node, 0)])


def _op_cast(b: Builder, node: Node) -> None:
    dtype = TF_DTYPES.get(node.attrs.get("DstT", ""))
    if dtype is None:
        raise ValueError(f"node {node.name!r}: unsupported Cast target {node.attrs.get('DstT')!r}")
    b.emit(node, partial(Tensor.to, dtype=dtype), [b.arg(node, 0)])


def _op_sparse_to_dense(b: Builder, node: Node) -> None:
    args = [b.arg(node, i) for i in range(4)]
    b.emit(node, sparse_to_dense_kernel, args)


def _op_resize(b: Builder, node: Node) -> None:
    size = b.static_ints(node, 1)
    if len(size) != 2:
        raise ValueError(f"node {node.name!r}: resize size must have 2 entries, got {size}")
    align = bool(node.attrs.get("align_corners", False))
    half = bool(node.attrs.get("half_pixel_centers", False))
    kernel = resize_bilinear_kernel if node.op == "ResizeBilinear" else resize_nearest_kernel
    b.emit(
        node, partial(kernel, size=(size[0], size[1]), align_corners=align, half_pixel=half), [b.arg(node, 0)]
    )


OPS: dict[str, Callable[[Builder, Node], None]] = {
    "Conv2D": _op_conv,
    "_FusedConv2D": _op_conv,
    "DepthwiseConv2dNative": _op_conv,
    "DepthwiseConv2d": _op_conv,
    "FusedDepthwiseConv2dNative": _op_conv,
    "MaxPool": _op_pool,
    "MatMul": _op_matmul,
    "_FusedMatMul": _op_matmul,
    "AvgPool": _op_pool,
    "Add": _op_binary(torch.add),
    "AddV2": _op_binary(torch.add),
    "BiasAdd": _op_binary(torch.add),
    "Sub": _op_binary(torch.sub),
    "Mul": _op_binary(torch.mul),
    "RealDiv": _op_binary(torch.div),
    "Maximum": _op_binary(torch.maximum),
    "Minimum": _op_binary(torch.minimum),
    "Relu": _op_unary(F.relu),
    "Relu6": _op_unary(partial(F.hardtanh, min_val=0.0, max_val=6.0)),
    "Elu": _op_unary(F.elu),
    "Sigmoid": _op_unary(torch.sigmoid),
    "Tanh": _op_unary(torch.tanh),
    "LeakyRelu": _op_leaky_relu,
    "Prelu": _op_prelu,
    "Softmax": _op_softmax,
    "Identity": _op_identity,
    "StopGradient": _op_identity,
    "Reshape": _op_reshape,
    "Transpose": _op_transpose,
    "Pad": _op_pad,
    "PadV2": _op_pad,
    "ConcatV2": _op_concat,
    "Concat": _op_concat,
    "Pack": _op_pack,
    "Split": _op_split,
    "SplitV": _op_split,
    "StridedSlice": _op_strided_slice,
    "Slice": _op_slice,
    "Squeeze": _op_squeeze,
    "ExpandDims": _op_expand_dims,
    "Mean": _op_mean,
    "Cast": _op_cast,
    "SparseToDense": _op_sparse_to_dense,
    "ResizeBilinear": _op_resize,
    "ResizeNearestNeighbor": _op_resize,
}

SUPPORTED_OPS: frozenset[str] = frozenset(OPS) | {"Const", "Placeholder"}
