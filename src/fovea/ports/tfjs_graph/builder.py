"""Plan building: the nodes of a graph spec, the steps they become, constant folding and pad absorption."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from fovea.ports.tfjs_graph.parse import node_name


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str]
    attrs: dict[str, Any]


@dataclass
class Step:
    fn: Callable[..., Any]
    args: list[str]
    outputs: list[str]
    kind: str = "op"
    meta: dict[str, Any] = field(default_factory=dict)


class Builder:
    def __init__(self, batch_size: int | None, batch_polymorphic: bool) -> None:
        self.consts: dict[str, Tensor] = {}
        self.producer: dict[str, Step] = {}
        self.steps: list[Step] = []
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

    def arg(self, node: Node, i: int) -> str:
        if i >= len(node.inputs):
            raise ValueError(f"node {node.name!r} ({node.op}) needs at least {i + 1} inputs")
        return self.resolve(node.inputs[i])

    def const(self, key: str) -> Tensor | None:
        return self.consts.get(self.resolve(key))

    def static(self, node: Node, i: int) -> Tensor:
        value = self.const(self.arg(node, i))
        if value is None:
            raise ValueError(f"node {node.name!r} ({node.op}): input {i} must be constant")
        return value

    def static_ints(self, node: Node, i: int) -> list[int]:
        return [int(v) for v in self.static(node, i).reshape(-1).tolist()]

    def add_const(self, tensor: Tensor) -> str:
        self._n_synth += 1
        key = f"__const_{self._n_synth}"
        self.consts[key] = tensor
        return key

    # emission ---------------------------------------------------------------------------------------------
    def emit(
        self,
        node: Node,
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
        step = Step(fn, list(args), outputs, kind, meta or {})
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


def topological_order(nodes: list[Node]) -> list[Node]:
    by_name = {n.name: n for n in nodes}
    if len(by_name) != len(nodes):
        raise ValueError("graph has duplicate node names")
    deps = {n.name: {node_name(k) for k in n.inputs} for n in nodes}
    for n in nodes:
        missing = deps[n.name] - by_name.keys()
        if missing:
            raise ValueError(f"node {n.name!r} reads unknown node(s) {sorted(missing)}")
    order: list[Node] = []
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
