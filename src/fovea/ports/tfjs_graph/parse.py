"""Reading ``model.json`` and its weight shards into a graph spec: a plain dict of lists, numbers, tensors."""

from __future__ import annotations

import base64
import json
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

logger = logging.getLogger(__name__)

SPEC_FORMAT = "fovea.tfjs-graph/1"

TF_DTYPES: dict[str, torch.dtype] = {
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


def parse_graph_model(model_json: Path, output_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Read a TF.js graph model into a graph spec (see the package docstring).

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
            dtype = TF_DTYPES.get(attrs.get("dtype", "DT_FLOAT"))
            if dtype is None:
                raise ValueError(f"constant {node['name']!r} has unsupported dtype {attrs.get('dtype')!r}")
            const_weights[node["name"]] = weights[node["name"]].to(dtype)

    signature = model.get("signature") or topology.get("signature") or {}
    placeholders = [n["name"] for n in nodes if n["op"] == "Placeholder"]
    sig_inputs = [env_key(name) for name in signature.get("inputs", {})]
    inputs = [name for name in sig_inputs if name in placeholders] or placeholders
    if output_names is None:
        outputs = sorted(signature.get("outputs", {}), key=natural_key) or _sink_outputs(nodes)
    else:
        outputs = list(output_names)
    names = {n["name"] for n in nodes}
    for out in outputs:
        if node_name(env_key(out)) not in names:
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
    consumed = {node_name(k) for n in nodes for k in (env_key(i) for i in n["inputs"]) if k is not None}
    sinks = [
        n["name"] for n in nodes if n["name"] not in consumed and n["op"] not in ("Const", "Placeholder")
    ]
    return [f"{name}:0" for name in sorted(sinks, key=natural_key)]


def natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def env_key(ref: str) -> str | None:
    """Environment key of a tensor reference: ``"n"`` / ``"n:0"`` -> ``"n"``, ``"n:2"`` kept, ``"^n"`` -> None."""
    if ref.startswith("^"):
        return None
    name, sep, index = ref.rpartition(":")
    if sep and index.isdigit():
        return name if index == "0" else ref
    return ref


def node_name(key: str | None) -> str:
    if key is None:
        return ""
    name, sep, index = key.rpartition(":")
    return name if sep and index.isdigit() else key
