"""Run TF.js graph models (``model.json`` + binary weight shards) as torch modules.

Two steps, so that a converted model needs none of the original files at run time:

1. :func:`parse_graph_model` reads ``model.json`` and its weight shards into a *graph spec*: a plain dict of
   strings, numbers, lists and float32/int tensors (loadable with ``torch.load(weights_only=True)``)::

       {"format": "fovea.tfjs-graph/1",
        "nodes": [{"name": str, "op": str, "inputs": [str], "attrs": {str: value}}, ...],
        "weights": {const node name: Tensor},
        "inputs": [placeholder name], "outputs": ["Identity:0", ...]}

2. :class:`TFJSGraphModule` builds an execution plan from a spec: nodes in topological order, constant
   sub-graphs folded once at build time, each remaining node one torch call. Tensors keep TF's logical layouts
   (``Transpose`` is a free ``permute`` view; NHWC convolutions permute to NCHW around ``F.conv2d``, which is
   also a view when the producer was NCHW). Two rewrites remove work without changing results: a constant
   per-channel ``Add``/``BiasAdd`` after a convolution becomes the convolution's bias, and a spatial ``Pad``
   (zeros before a convolution, ``-inf`` before a max-pool), optionally seen through one ``Transpose``, becomes
   the convolution's / pool's padding.

Semantics follow TensorFlow: ``SAME`` padding is ``total = max((ceil(in/s) - 1) * s + (k - 1) * d + 1 - in, 0)``
with ``total // 2`` before and the rest after (asymmetric when ``total`` is odd); resize ops honour
``align_corners`` / ``half_pixel_centers``. Graphs exported with batch size 1 often hard-code it in
``Reshape`` targets; with ``batch_polymorphic=True`` (the default) a ``Reshape`` whose target starts with the
traced batch size keeps the input's leading (batch) dimension instead, so batches of any size run.

An op outside :data:`SUPPORTED_OPS` raises ``ValueError`` naming it when the module is built.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

logger = logging.getLogger(__name__)

SPEC_FORMAT = "fovea.tfjs-graph/1"

_TF_DTYPES: dict[str, torch.dtype] = {
    "DT_FLOAT": torch.float32,
    "DT_HALF": torch.float16,
    "DT_DOUBLE": torch.float64,
    "DT_INT32": torch.int32,
    "DT_INT64": torch.int64,
    "DT_INT16": torch.int16,
    "DT_INT8": torch.int8,
    "DT_UINT8": torch.uint8,
    "DT_BOOL": torch.bool,
}

# (numpy dtype, bytes per element) of the storage types a weights manifest may use.
_STORAGE: dict[str, tuple[str, int]] = {
    "float32": ("<f4", 4),
    "int32": ("<i4", 4),
    "bool": ("|u1", 1),
    "float16": ("<f2", 2),
    "uint8": ("|u1", 1),
    "uint16": ("<u2", 2),
}


# --------------------------------------------------------------------------------------------------------------
# Parsing model.json
# --------------------------------------------------------------------------------------------------------------


def parse_graph_model(model_json: Path, output_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Read a TF.js graph model into a graph spec (see the module docstring).

    ``model_json``: path of ``model.json``; its weight shards are read from the same folder.
    ``output_names``: tensor names (``"Identity:0"``) in the order ``forward`` returns them; default: the
    signature's outputs (or, without a signature, the nodes nothing consumes) in natural name order.
    Quantised weights (float16, uint8/uint16 with scale/min) are dequantised to float32.
    """
    try:
        model = json.loads(Path(model_json).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read TF.js model {model_json}: {exc}") from exc
    if not isinstance(model, dict) or "modelTopology" not in model:
        raise ValueError(f"{model_json} is not a TF.js graph model (no modelTopology)")
    topology = model["modelTopology"]
    if topology.get("library", {}).get("function"):
        raise ValueError(f"{model_json}: graph functions (control flow) are not supported")
    raw_nodes = topology.get("node", [])
    if not raw_nodes:
        raise ValueError(f"{model_json}: the graph has no nodes")

    weights = _read_weights(model.get("weightsManifest", []), Path(model_json).parent)
    nodes: list[dict[str, Any]] = []
    const_weights: dict[str, Tensor] = {}
    for raw in raw_nodes:
        attrs = {key: _decode_attr(value) for key, value in raw.get("attr", {}).items()}
        node = {"name": raw["name"], "op": raw["op"], "inputs": list(raw.get("input", [])), "attrs": attrs}
        nodes.append(node)
        if node["op"] == "Const":
            if node["name"] not in weights:
                raise ValueError(
                    f"{model_json}: constant {node['name']!r} has no entry in the weights manifest"
                )
            dtype = _TF_DTYPES.get(attrs.get("dtype", "DT_FLOAT"))
            if dtype is None:
                raise ValueError(f"constant {node['name']!r} has unsupported dtype {attrs.get('dtype')!r}")
            const_weights[node["name"]] = weights[node["name"]].to(dtype)

    signature = model.get("signature") or topology.get("signature") or {}
    placeholders = [n["name"] for n in nodes if n["op"] == "Placeholder"]
    sig_inputs = [_key(name) for name in signature.get("inputs", {})]
    inputs = [name for name in sig_inputs if name in placeholders] or placeholders
    if output_names is None:
        outputs = sorted(signature.get("outputs", {}), key=_natural_key) or _sink_outputs(nodes)
    else:
        outputs = list(output_names)
    names = {n["name"] for n in nodes}
    for out in outputs:
        if _node_name(_key(out)) not in names:
            raise ValueError(f"{model_json}: output {out!r} is not a node of the graph")
    logger.info("parsed TF.js graph %s: %d nodes, %d constants", model_json, len(nodes), len(const_weights))
    return {
        "format": SPEC_FORMAT,
        "nodes": nodes,
        "weights": const_weights,
        "inputs": inputs,
        "outputs": outputs,
    }


def _read_weights(manifest: list[dict[str, Any]], base_dir: Path) -> dict[str, Tensor]:
    """Decode every weight of every manifest group (shards of a group are one concatenated buffer)."""
    weights: dict[str, Tensor] = {}
    for group in manifest:
        try:
            data = b"".join((base_dir / path).read_bytes() for path in group["paths"])
        except OSError as exc:
            raise ValueError(f"cannot read weight shard: {exc}") from exc
        offset = 0
        for entry in group["weights"]:
            shape = [int(d) for d in entry["shape"]]
            count = math.prod(shape)
            quant = entry.get("quantization")
            storage = quant["dtype"] if quant else entry["dtype"]
            if storage not in _STORAGE:
                raise ValueError(f"weight {entry['name']!r}: unsupported storage dtype {storage!r}")
            np_dtype, itemsize = _STORAGE[storage]
            if offset + count * itemsize > len(data):
                raise ValueError(f"weight {entry['name']!r} runs past the end of its shards")
            raw = np.frombuffer(data, dtype=np_dtype, count=count, offset=offset)
            offset += count * itemsize
            if quant is None:
                array = raw.astype(np.bool_) if storage == "bool" else raw
            elif storage == "float16":
                array = raw.astype(np.float32)
            else:  # affine uint8/uint16: value = q * scale + min
                array = raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
                if entry["dtype"] == "int32":
                    array = np.round(array).astype(np.int32)
            weights[entry["name"]] = torch.from_numpy(array.reshape(shape).copy())
    return weights


def _decode_attr(value: dict[str, Any]) -> Any:
    """One ``AttrValue`` of the JSON topology as a plain Python value (tensors come from the weights)."""
    if "list" in value:
        items = value["list"]
        for kind in ("s", "i", "f", "b", "type", "shape"):
            if kind in items:
                return [_decode_attr({kind: item}) for item in items[kind]]
        return []
    if "s" in value:
        return base64.b64decode(value["s"]).decode("utf-8", errors="replace")
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return str(value["type"])
    if "shape" in value:
        shape = value["shape"]
        if shape.get("unknownRank"):
            return None
        return [int(d.get("size", -1)) for d in shape.get("dim", [])]
    if "func" in value:
        return str(value["func"].get("name", ""))
    return None  # "tensor" (values live in the weights) and empty attributes


def _sink_outputs(nodes: list[dict[str, Any]]) -> list[str]:
    consumed = {_node_name(k) for n in nodes for k in (_key(i) for i in n["inputs"]) if k is not None}
    sinks = [
        n["name"] for n in nodes if n["name"] not in consumed and n["op"] not in ("Const", "Placeholder")
    ]
    return [f"{name}:0" for name in sorted(sinks, key=_natural_key)]


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _key(ref: str) -> str | None:
    """Environment key of a tensor reference: ``"n"`` / ``"n:0"`` -> ``"n"``, ``"n:2"`` kept, ``"^n"`` -> None."""
    if ref.startswith("^"):
        return None
    name, sep, index = ref.rpartition(":")
    if sep and index.isdigit():
        return name if index == "0" else ref
    return ref


def _node_name(key: str | None) -> str:
    if key is None:
        return ""
    name, sep, index = key.rpartition(":")
    return name if sep and index.isdigit() else key


# --------------------------------------------------------------------------------------------------------------
# Kernels (pure functions of tensors; static parameters are bound with functools.partial)
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ConvCfg:
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
class _PoolCfg:
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


def _spatial_pads(x: Tensor, k: tuple[int, int], cfg: _ConvCfg | _PoolCfg) -> tuple[int, int, int, int]:
    top, bottom, left, right = cfg.pads
    if cfg.same:
        dil = cfg.dilations if isinstance(cfg, _ConvCfg) else (1, 1)
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


def _conv_kernel(x: Tensor, w: Tensor, *extra: Tensor, cfg: _ConvCfg) -> Tensor:
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


def _pool_kernel(x: Tensor, cfg: _PoolCfg) -> Tensor:
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


def _reshape_kernel(x: Tensor, shape: tuple[int, ...], keep_batch: bool) -> Tensor:
    if keep_batch:
        shape = (x.shape[0], *shape[1:])
    return x.reshape(shape)


def _pad_kernel(x: Tensor, pads: tuple[int, ...], value: float) -> Tensor:
    return F.pad(x, pads, value=value)


def _split_kernel(x: Tensor, sizes: list[int], axis: int) -> tuple[Tensor, ...]:
    return torch.split(x, sizes, dim=axis)


def _concat_kernel(*xs: Tensor, axis: int) -> Tensor:
    return torch.cat(xs, dim=axis)


def _stack_kernel(*xs: Tensor, axis: int) -> Tensor:
    return torch.stack(xs, dim=axis)


def _index_kernel(x: Tensor, index: tuple[Any, ...]) -> Tensor:
    return x[index]


def _squeeze_kernel(x: Tensor, dims: tuple[int, ...]) -> Tensor:
    if not dims:
        return x.squeeze()
    return x.squeeze(tuple(d % x.dim() for d in dims))


def _mean_kernel(x: Tensor, dims: tuple[int, ...], keepdim: bool) -> Tensor:
    return torch.mean(x, dim=dims, keepdim=keepdim)


def _sparse_to_dense_kernel(indices: Tensor, shape: Tensor, values: Tensor, default: Tensor) -> Tensor:
    out = torch.full(shape.tolist(), default.item(), dtype=values.dtype, device=values.device)
    if indices.numel() == 0:
        return out
    idx = indices.long().reshape(indices.shape[0], -1) if indices.dim() > 0 else indices.long().reshape(1, 1)
    out[tuple(idx.t())] = values
    return out


def _resize_bilinear_kernel(
    x: Tensor, size: tuple[int, int], align_corners: bool, half_pixel: bool
) -> Tensor:
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


def _resize_nearest_kernel(x: Tensor, size: tuple[int, int], align_corners: bool, half_pixel: bool) -> Tensor:
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


# --------------------------------------------------------------------------------------------------------------
# Plan building
# --------------------------------------------------------------------------------------------------------------


@dataclass
class _Node:
    name: str
    op: str
    inputs: list[str]
    attrs: dict[str, Any]


@dataclass
class _Step:
    fn: Callable[..., Any]
    args: list[str]
    outputs: list[str]
    kind: str = "op"
    meta: dict[str, Any] = field(default_factory=dict)


class _Builder:
    def __init__(self, batch_size: int | None, batch_polymorphic: bool) -> None:
        self.consts: dict[str, Tensor] = {}
        self.producer: dict[str, _Step] = {}
        self.steps: list[_Step] = []
        self.alias: dict[str, str] = {}
        self.consumers: dict[str, int] = {}
        self.batch_size = batch_size
        self.batch_polymorphic = batch_polymorphic
        self._n_synth = 0

    # references -------------------------------------------------------------------------------------------
    def resolve(self, key: str) -> str:
        while key in self.alias:
            key = self.alias[key]
        return key

    def arg(self, node: _Node, i: int) -> str:
        if i >= len(node.inputs):
            raise ValueError(f"node {node.name!r} ({node.op}) needs at least {i + 1} inputs")
        return self.resolve(node.inputs[i])

    def const(self, key: str) -> Tensor | None:
        return self.consts.get(self.resolve(key))

    def static(self, node: _Node, i: int) -> Tensor:
        value = self.const(self.arg(node, i))
        if value is None:
            raise ValueError(f"node {node.name!r} ({node.op}): input {i} must be constant")
        return value

    def static_ints(self, node: _Node, i: int) -> list[int]:
        return [int(v) for v in self.static(node, i).reshape(-1).tolist()]

    def add_const(self, tensor: Tensor) -> str:
        self._n_synth += 1
        key = f"__const_{self._n_synth}"
        self.consts[key] = tensor
        return key

    # emission ---------------------------------------------------------------------------------------------
    def emit(
        self,
        node: _Node,
        fn: Callable[..., Any],
        args: list[str],
        n_out: int = 1,
        kind: str = "op",
        meta: dict[str, Any] | None = None,
    ) -> None:
        outputs = [node.name] + [f"{node.name}:{i}" for i in range(1, n_out)]
        values = [self.consts.get(a) for a in args]
        if all(v is not None for v in values):  # constant folding
            result = fn(*values)
            results = list(result) if n_out > 1 else [result]
            for key, value in zip(outputs, results, strict=True):
                self.consts[key] = value
            return
        step = _Step(fn, list(args), outputs, kind, meta or {})
        self.steps.append(step)
        for key in outputs:
            self.producer[key] = step

    def absorb_pad(
        self, key: str, value: float, spatial: tuple[int, int]
    ) -> tuple[str, list[int] | None, tuple[int, int, int, int]] | None:
        """If ``key`` is ``[Transpose](Pad(src))`` padding only dims ``spatial`` with ``value``, describe it.

        Returns ``(src, perm or None, [top, bottom, left, right])`` in the layout of ``key``.
        """
        step = self.producer.get(key)
        perm = None
        if step is not None and step.kind == "transpose":
            perm = step.meta["perm"]
            step = self.producer.get(step.args[0])
        if step is None or step.kind != "pad" or step.meta["value"] != value:
            return None
        pads = step.meta["pads"]
        if perm is not None:
            pads = [pads[p] for p in perm]
        if len(pads) != 4 or any(pads[d] != [0, 0] for d in range(4) if d not in spatial):
            return None
        (top, bottom), (left, right) = pads[spatial[0]], pads[spatial[1]]
        return step.args[0], perm, (int(top), int(bottom), int(left), int(right))


def _data_format_nhwc(node: _Node) -> bool:
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


def _padding(node: _Node, nhwc: bool) -> tuple[bool, tuple[int, int, int, int]]:
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


# ---- op handlers ---------------------------------------------------------------------------------------------

_ACTIVATIONS = {
    "Relu": "relu",
    "Relu6": "relu6",
    "Elu": "elu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "LeakyRelu": "leakyrelu",
    "Prelu": "prelu",
}


def _op_conv(b: _Builder, node: _Node) -> None:
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
    cfg = _ConvCfg(
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
        partial(_conv_kernel, cfg=cfg),
        args,
        kind="conv",
        meta={"cfg": cfg, "out_channels": weight.shape[0]},
    )


def _op_pool(b: _Builder, node: _Node) -> None:
    nhwc = _data_format_nhwc(node)
    same, pads = _padding(node, nhwc)
    kind = "max" if node.op == "MaxPool" else "avg"
    cfg = _PoolCfg(
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
    b.emit(node, partial(_pool_kernel, cfg=cfg), [x])


def _op_binary(fn: Callable[[Tensor, Tensor], Tensor]) -> Callable[[_Builder, _Node], None]:
    def handler(b: _Builder, node: _Node) -> None:
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


def _try_fuse_bias(b: _Builder, node: _Node, lhs: str, rhs: str) -> bool:
    """Fold ``conv + constant per-channel vector`` into the convolution's bias (conv used only here)."""
    for x, other in ((lhs, rhs), (rhs, lhs)):
        step = b.producer.get(x)
        bias = b.const(other)
        if step is None or step.kind != "conv" or bias is None or not bias.is_floating_point():
            continue
        cfg: _ConvCfg = step.meta["cfg"]
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
        b.emit(
            node, partial(_conv_kernel, cfg=new_cfg), args, kind="conv", meta={**step.meta, "cfg": new_cfg}
        )
        return True
    return False


def _op_unary(fn: Callable[[Tensor], Tensor]) -> Callable[[_Builder, _Node], None]:
    def handler(b: _Builder, node: _Node) -> None:
        b.emit(node, fn, [b.arg(node, 0)])

    return handler


def _matmul_kernel(
    x: Tensor, w: Tensor, *bias: Tensor, transpose_a: bool, act: str | None, alpha: float
) -> Tensor:
    y = (x.transpose(-1, -2) if transpose_a else x) @ w
    if bias:
        y = y + bias[0]
    return _activate(y, act, alpha, None)


def _op_matmul(b: _Builder, node: _Node) -> None:
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
    b.emit(node, partial(_matmul_kernel, transpose_a=transpose_a, act=act, alpha=alpha), args)


def _op_leaky_relu(b: _Builder, node: _Node) -> None:
    b.emit(node, partial(F.leaky_relu, negative_slope=float(node.attrs.get("alpha", 0.2))), [b.arg(node, 0)])


def _prelu_kernel(x: Tensor, alpha: Tensor) -> Tensor:
    """TF's ``Prelu(x, alpha)``: ``x`` where ``x >= 0``, else ``alpha * x`` (``alpha`` broadcasts from the
    right, per channel for an NHWC ``x``)."""
    return torch.where(x >= 0, x, x * alpha)


def _op_prelu(b: _Builder, node: _Node) -> None:
    """``Prelu(x, alpha)`` as the TF.js converter writes Keras ``PReLU``: its ``alpha`` constant (named
    ``.../Neg``, already negated back by the converter) is the slope for negative inputs."""
    b.emit(node, _prelu_kernel, [b.arg(node, 0), b.arg(node, 1)])


def _op_softmax(b: _Builder, node: _Node) -> None:
    b.emit(node, partial(torch.softmax, dim=-1), [b.arg(node, 0)])


def _op_identity(b: _Builder, node: _Node) -> None:
    b.alias[node.name] = b.arg(node, 0)


def _op_reshape(b: _Builder, node: _Node) -> None:
    x = b.arg(node, 0)
    shape = tuple(b.static_ints(node, 1))
    keep_batch = (
        b.batch_polymorphic
        and b.const(x) is None
        and b.batch_size is not None
        and len(shape) > 0
        and shape[0] == b.batch_size
    )
    b.emit(node, partial(_reshape_kernel, shape=shape, keep_batch=keep_batch), [x])


def _op_transpose(b: _Builder, node: _Node) -> None:
    perm = b.static_ints(node, 1)
    x = b.arg(node, 0)
    b.emit(node, partial(torch.permute, dims=perm), [x], kind="transpose", meta={"perm": perm})


def _op_pad(b: _Builder, node: _Node) -> None:
    paddings = b.static(node, 1).reshape(-1, 2).tolist()
    pads = [[int(lo), int(hi)] for lo, hi in paddings]
    if any(v < 0 for pair in pads for v in pair):
        raise ValueError(f"node {node.name!r}: negative paddings are not supported")
    value = float(b.static(node, 2).item()) if node.op == "PadV2" else 0.0
    flat = tuple(v for pair in reversed(pads) for v in pair)
    fn = partial(_pad_kernel, pads=flat, value=value)
    b.emit(node, fn, [b.arg(node, 0)], kind="pad", meta={"pads": pads, "value": value})


def _op_concat(b: _Builder, node: _Node) -> None:
    if node.op == "ConcatV2":
        axis = int(b.static(node, len(node.inputs) - 1).item())
        args = [b.arg(node, i) for i in range(len(node.inputs) - 1)]
    else:  # Concat: axis first
        axis = int(b.static(node, 0).item())
        args = [b.arg(node, i) for i in range(1, len(node.inputs))]
    b.emit(node, partial(_concat_kernel, axis=axis), args)


def _op_pack(b: _Builder, node: _Node) -> None:
    args = [b.arg(node, i) for i in range(len(node.inputs))]
    b.emit(node, partial(_stack_kernel, axis=int(node.attrs.get("axis", 0))), args)


def _op_split(b: _Builder, node: _Node) -> None:
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
        return _split_kernel(t, parts, axis)

    b.emit(node, split, [x], n_out=n_out)


def _op_strided_slice(b: _Builder, node: _Node) -> None:
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
    b.emit(node, partial(_index_kernel, index=tuple(index)), [b.arg(node, 0)])


def _op_slice(b: _Builder, node: _Node) -> None:
    begin, size = b.static_ints(node, 1), b.static_ints(node, 2)
    index = tuple(slice(lo, None if n == -1 else lo + n) for lo, n in zip(begin, size, strict=True))
    b.emit(node, partial(_index_kernel, index=index), [b.arg(node, 0)])


def _op_squeeze(b: _Builder, node: _Node) -> None:
    dims = tuple(int(d) for d in node.attrs.get("squeeze_dims", []) or node.attrs.get("axis", []) or [])
    b.emit(node, partial(_squeeze_kernel, dims=dims), [b.arg(node, 0)])


def _op_expand_dims(b: _Builder, node: _Node) -> None:
    axis = int(b.static(node, 1).item())
    b.emit(node, partial(torch.unsqueeze, dim=axis), [b.arg(node, 0)])


def _op_mean(b: _Builder, node: _Node) -> None:
    dims = tuple(b.static_ints(node, 1))
    keep = bool(node.attrs.get("keep_dims", False))
    b.emit(node, partial(_mean_kernel, dims=dims, keepdim=keep), [b.arg(node, 0)])


def _op_cast(b: _Builder, node: _Node) -> None:
    dtype = _TF_DTYPES.get(node.attrs.get("DstT", ""))
    if dtype is None:
        raise ValueError(f"node {node.name!r}: unsupported Cast target {node.attrs.get('DstT')!r}")
    b.emit(node, partial(Tensor.to, dtype=dtype), [b.arg(node, 0)])


def _op_sparse_to_dense(b: _Builder, node: _Node) -> None:
    args = [b.arg(node, i) for i in range(4)]
    b.emit(node, _sparse_to_dense_kernel, args)


def _op_resize(b: _Builder, node: _Node) -> None:
    size = b.static_ints(node, 1)
    if len(size) != 2:
        raise ValueError(f"node {node.name!r}: resize size must have 2 entries, got {size}")
    align = bool(node.attrs.get("align_corners", False))
    half = bool(node.attrs.get("half_pixel_centers", False))
    kernel = _resize_bilinear_kernel if node.op == "ResizeBilinear" else _resize_nearest_kernel
    b.emit(
        node, partial(kernel, size=(size[0], size[1]), align_corners=align, half_pixel=half), [b.arg(node, 0)]
    )


_OPS: dict[str, Callable[[_Builder, _Node], None]] = {
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

SUPPORTED_OPS: frozenset[str] = frozenset(_OPS) | {"Const", "Placeholder"}


def _topological_order(nodes: list[_Node]) -> list[_Node]:
    by_name = {n.name: n for n in nodes}
    if len(by_name) != len(nodes):
        raise ValueError("graph has duplicate node names")
    deps = {n.name: {_node_name(k) for k in n.inputs} for n in nodes}
    for n in nodes:
        missing = deps[n.name] - by_name.keys()
        if missing:
            raise ValueError(f"node {n.name!r} reads unknown node(s) {sorted(missing)}")
    order: list[_Node] = []
    done: set[str] = set()
    pending = list(nodes)
    while pending:
        ready = [n for n in pending if deps[n.name] <= done]
        if not ready:
            raise ValueError(f"graph has a cycle through {sorted(n.name for n in pending)[:5]}")
        order.extend(ready)
        done.update(n.name for n in ready)
        ready_names = {n.name for n in ready}
        pending = [n for n in pending if n.name not in ready_names]
    return order


# --------------------------------------------------------------------------------------------------------------
# The module
# --------------------------------------------------------------------------------------------------------------


class TFJSGraphModule(nn.Module):
    """Executes a graph spec from :func:`parse_graph_model`; ``forward(*inputs)`` returns a tuple of tensors.

    Inputs are the graph's placeholders in ``spec["inputs"]`` order, with their declared rank, dtype and
    non-batch sizes (the leading dimension may be any batch size). Outputs come back contiguous, in
    ``spec["outputs"]`` order. Constants are (non-persistent) buffers, so ``.to(device)`` moves the model.
    """

    def __init__(self, spec: dict[str, Any], *, batch_polymorphic: bool = True) -> None:
        super().__init__()
        if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
            raise ValueError(f"not a TF.js graph spec (expected format {SPEC_FORMAT!r})")
        nodes = [
            _Node(n["name"], n["op"], [k for k in map(_key, n["inputs"]) if k], n["attrs"])
            for n in spec["nodes"]
        ]
        unknown = sorted({n.op for n in nodes} - SUPPORTED_OPS)
        if unknown:
            raise ValueError(f"unsupported TF.js op(s) {unknown}; supported: {sorted(SUPPORTED_OPS)}")
        by_name = {n.name: n for n in nodes}
        self.input_names: list[str] = list(spec["inputs"])
        self.output_names: list[str] = list(spec["outputs"])
        self._input_specs: list[tuple[list[int] | None, torch.dtype]] = []
        for name in self.input_names:
            node = by_name.get(name)
            if node is None or node.op != "Placeholder":
                raise ValueError(f"graph input {name!r} is not a Placeholder node")
            self._input_specs.append(
                (
                    node.attrs.get("shape"),
                    _TF_DTYPES.get(str(node.attrs.get("dtype", "DT_FLOAT")), torch.float32),
                )
            )
        first_shape = self._input_specs[0][0] if self._input_specs else None
        batch = first_shape[0] if first_shape and first_shape[0] > 0 else None

        builder = _Builder(batch, batch_polymorphic)
        for node in nodes:
            for key in node.inputs:
                builder.consumers[key] = builder.consumers.get(key, 0) + 1
        weights: dict[str, Tensor] = spec["weights"]
        for node in _topological_order(nodes):
            if node.op == "Placeholder":
                continue
            if node.op == "Const":
                if node.name not in weights:
                    raise ValueError(f"constant {node.name!r} has no weight in the spec")
                builder.consts[node.name] = weights[node.name]
                continue
            _OPS[node.op](builder, node)

        out_keys = [builder.resolve(k) for k in map(_key, self.output_names) if k]
        self._finalize(builder, out_keys)

    def _finalize(self, builder: _Builder, out_keys: list[str]) -> None:
        live = set(out_keys)
        plan: list[_Step] = []
        for step in reversed(builder.steps):  # dead-code elimination (fused-away producers disappear here)
            if live.intersection(step.outputs):
                plan.append(step)
                live.update(step.args)
        plan.reverse()
        inputs = set(self.input_names)
        const_refs: list[tuple[str, str]] = []
        for key in sorted(live, key=_natural_key):
            if key in builder.consts:
                buf = f"_c{len(const_refs)}"
                self.register_buffer(buf, builder.consts[key].clone(), persistent=False)
                const_refs.append((key, buf))
            elif key not in inputs and key not in builder.producer:
                raise ValueError(f"tensor {key!r} is needed but no node produces it")
        last_use: dict[str, int] = {}
        for i, step in enumerate(plan):
            for a in step.args:
                last_use[a] = i
        keep = set(out_keys) | {k for k, _ in const_refs}
        drops: list[list[str]] = [[] for _ in plan]
        for key, i in last_use.items():
            if key not in keep:
                drops[i].append(key)
        self._plan = plan
        self._drops = drops
        self._const_refs = const_refs
        self._out_keys = out_keys
        fused = sum(1 for s in plan if s.kind == "conv" and s.meta["cfg"].has_bias)
        logger.debug(
            "TF.js plan: %d steps, %d constants, %d convs with bias", len(plan), len(const_refs), fused
        )

    def _check_inputs(self, inputs: tuple[Tensor, ...]) -> None:
        if len(inputs) != len(self.input_names):
            raise ValueError(
                f"expected {len(self.input_names)} input(s) {self.input_names}, got {len(inputs)}"
            )
        for name, x, (shape, dtype) in zip(self.input_names, inputs, self._input_specs, strict=True):
            if not isinstance(x, Tensor):
                raise ValueError(f"input {name!r} must be a torch.Tensor, got {type(x).__name__}")
            if x.dtype != dtype:
                raise ValueError(f"input {name!r} must be {dtype}, got {x.dtype}")
            if shape is None:
                continue
            bad = x.dim() != len(shape) or any(
                s > 0 and s != d for s, d in zip(shape[1:], x.shape[1:], strict=False)
            )
            if bad or (x.dim() > 0 and x.shape[0] == 0):
                want = ["N", *(s if s > 0 else "?" for s in shape[1:])]
                raise ValueError(f"input {name!r} must have shape {want} with N >= 1, got {list(x.shape)}")

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        self._check_inputs(inputs)
        buffers = self._buffers
        env: dict[str, Tensor] = {key: buffers[buf] for key, buf in self._const_refs}  # type: ignore[misc]
        env.update(zip(self.input_names, inputs, strict=True))
        for step, drops in zip(self._plan, self._drops, strict=True):
            result = step.fn(*[env[a] for a in step.args])
            if len(step.outputs) == 1:
                env[step.outputs[0]] = result
            else:
                env.update(zip(step.outputs, result, strict=False))
            for key in drops:
                del env[key]
        return tuple(env[key].contiguous() for key in self._out_keys)


def load_graph_artefact(path: Path, artefact_format: str, what: str, device: str = "cpu") -> TFJSGraphModule:
    """An artefact of :func:`save_graph_artefact` as an eval-mode module on ``device``; ``ValueError`` naming
    ``what`` (the network, for the message) when ``path`` holds another format."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != artefact_format:
        raise ValueError(f"{path} is not a {what} artefact (expected format {artefact_format!r})")
    return TFJSGraphModule(payload["graph"]).to(device).eval()
