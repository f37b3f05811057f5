"""The torch module that runs a graph spec, and the loading of a saved graph artefact."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from fovea.ports.tfjs_graph.builder import Builder, Node, Step, topological_order
from fovea.ports.tfjs_graph.ops import OPS, SUPPORTED_OPS
from fovea.ports.tfjs_graph.parse import SPEC_FORMAT, TF_DTYPES, env_key, natural_key

logger = logging.getLogger(__name__)


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
            Node(n["name"], n["op"], [k for k in map(env_key, n["inputs"]) if k], n["attrs"])
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
                    TF_DTYPES.get(str(node.attrs.get("dtype", "DT_FLOAT")), torch.float32),
                )
            )
        first_shape = self._input_specs[0][0] if self._input_specs else None
        batch = first_shape[0] if first_shape and first_shape[0] > 0 else None

        builder = Builder(batch, batch_polymorphic)
        for node in nodes:
            for key in node.inputs:
                builder.consumers[key] = builder.consumers.get(key, 0) + 1
        weights: dict[str, Tensor] = spec["weights"]
        for node in topological_order(nodes):
            if node.op == "Placeholder":
                continue
            if node.op == "Const":
                if node.name not in weights:
                    raise ValueError(f"constant {node.name!r} has no weight in the spec")
                builder.consts[node.name] = weights[node.name]
                continue
            OPS[node.op](builder, node)

        out_keys = [builder.resolve(k) for k in map(env_key, self.output_names) if k]
        self._finalize(builder, out_keys)

    def _finalize(self, builder: Builder, out_keys: list[str]) -> None:
        live = set(out_keys)
        plan: list[Step] = []
        for step in reversed(builder.steps):  # dead-code elimination (fused-away producers disappear here)
            if live.intersection(step.outputs):
                plan.append(step)
                live.update(step.args)
        plan.reverse()
        inputs = set(self.input_names)
        const_refs: list[tuple[str, str]] = []
        for key in sorted(live, key=natural_key):
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
