"""MTCNN face detector (P-Net, R-Net, O-Net) in torch, with facenet-pytorch's weights.

The weights are the three state dicts shipped in the ``facenet-pytorch==2.6.0`` wheel
(``facenet_pytorch/data/{pnet,rnet,onet}.pt``); the modules below keep their parameter names. Only the
weight files are used: the package itself imports torchvision and pins old torch/numpy.

The detection pipeline follows facenet-pytorch's ``detect_face`` (itself a port of the original MTCNN):
an image pyramid (scale factor 0.709, smallest face 20 px), P-Net proposals with NMS per scale (IoU 0.5)
and across scales (0.7), R-Net refinement (0.7), O-Net boxes, scores and 5 landmarks, and a final NMS that
divides by the smaller box area (0.7). Crops are resized with area averaging (``interpolate(mode="area")``). One deliberate difference:
crops reaching outside the image are zero-padded, as in the original MTCNN, where facenet-pytorch clips
them (which stretches the crop of a face cut by the image border and misplaces its landmarks). For boxes
inside the image the two agree.

Coordinates: boxes are ``(x1, y1, x2, y2)`` in image pixels as MTCNN reports them; landmarks are
``(x, y)`` in pixel-index coordinates (pixel (r, c) has its centre at (c, r)), ordered left eye, right eye,
nose, left mouth corner, right mouth corner ("left" = smaller x in the image).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fovea.contracts.face_detector import (
    DEFAULT_MIN_FACE_SIZE,
    DEFAULT_NMS_ONET,
    DEFAULT_NMS_PNET,
    DEFAULT_NMS_PNET_SCALE,
    DEFAULT_NMS_RNET,
    DEFAULT_SCALE_FACTOR,
    DEFAULT_THRESHOLDS,
)

NETS = ("pnet", "rnet", "onet")
ARTEFACT_FORMAT = "fovea.mtcnn/1"


@dataclass(frozen=True)
class MtcnnConfig:
    """Detection settings (facenet-pytorch defaults, from :mod:`fovea.contracts.face_detector`)."""

    min_face_size: float = DEFAULT_MIN_FACE_SIZE  # pixels; sets the first pyramid scale (12 / min_face_size)
    scale_factor: float = DEFAULT_SCALE_FACTOR
    thresholds: tuple[float, float, float] = DEFAULT_THRESHOLDS
    nms_pnet_scale: float = DEFAULT_NMS_PNET_SCALE
    nms_pnet: float = DEFAULT_NMS_PNET
    nms_rnet: float = DEFAULT_NMS_RNET
    nms_onet: float = DEFAULT_NMS_ONET

    def __post_init__(self) -> None:
        if self.min_face_size < 12:
            raise ValueError(f"min_face_size must be >= 12 pixels, got {self.min_face_size}")
        if not 0 < self.scale_factor < 1:
            raise ValueError(f"scale_factor must be in (0, 1), got {self.scale_factor}")
        if len(self.thresholds) != 3 or not all(0 <= t <= 1 for t in self.thresholds):
            raise ValueError(f"thresholds must be three probabilities, got {self.thresholds}")


DEFAULT_CONFIG = MtcnnConfig()


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face, in the coordinates of the image it was found in."""

    box: np.ndarray  # (4,) float32 x1, y1, x2, y2
    score: float  # O-Net face probability
    landmarks: np.ndarray = field(repr=False)  # (5, 2) float32 (x, y): left eye, right eye, nose, mouth l, r


# ----------------------------------------------------------------------------------------------------------
# Networks (parameter names as in facenet-pytorch)


class PNet(nn.Module):
    """Proposal net, fully convolutional: (N,3,H,W) -> box offsets (N,4,h,w), face probability (N,2,h,w)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refine net: (N,3,24,24) -> box offsets (N,4), face probability (N,2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # The weights come from Caffe models trained on transposed images: flatten in (W, H, C) order.
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output net: (N,3,48,48) -> box offsets (N,4), landmarks (N,10: 5 x then 5 y), probability (N,2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


class MTCNN(nn.Module):
    """The three MTCNN networks; run them with :func:`detect_faces` / :func:`detect_faces_batch`."""

    def __init__(self) -> None:
        super().__init__()
        self.pnet = PNet()
        self.rnet = RNet()
        self.onet = ONet()
        self.eval()


# ----------------------------------------------------------------------------------------------------------
# Box helpers (pure tensor functions)


def nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    threshold: float,
    groups: torch.Tensor | None = None,
    *,
    mode: str = "union",
    pixel_offset: float = 0.0,
) -> torch.Tensor:
    """Greedy non-maximum suppression.

    boxes: (N,4) xyxy; scores: (N,); groups: optional (N,) int, boxes of different groups never suppress
    each other. ``mode`` "union" divides the intersection by the union (IoU), "min" by the smaller area.
    ``pixel_offset`` is added to widths and heights (1 for MTCNN's inclusive-pixel convention).
    A box is dropped when its overlap with a kept, higher-scoring box is > threshold.
    Returns (K,) int64 indices into ``boxes``, highest score first.
    """
    if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(
            f"expected boxes (N,4) and scores (N,), got {tuple(boxes.shape)}, {tuple(scores.shape)}"
        )
    if mode not in ("union", "min"):
        raise ValueError(f"mode must be 'union' or 'min', got {mode!r}")
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    if groups is not None:  # shift each group far away from the others
        shift = (boxes.max() - boxes.min() + 1 + 2 * pixel_offset) * groups.to(boxes.dtype)
        boxes = boxes + shift[:, None]
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order]
    x1, y1, x2, y2 = b.unbind(1)
    area = (x2 - x1 + pixel_offset) * (y2 - y1 + pixel_offset)
    remaining = torch.arange(b.shape[0], device=b.device)
    keep: list[torch.Tensor] = []
    while remaining.numel() > 0:
        i = remaining[0]
        keep.append(i)
        rest = remaining[1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest]) + pixel_offset).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest]) + pixel_offset).clamp(min=0)
        inter = w * h
        denom = torch.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        remaining = rest[~(inter > threshold * denom)]  # no division: empty boxes overlap nothing
    return order[torch.stack(keep)]


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """(N,4) xyxy -> the enclosing-size square with the same centre (MTCNN ``rerec``)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x1 = boxes[:, 0] + w * 0.5 - side * 0.5
    y1 = boxes[:, 1] + h * 0.5 - side * 0.5
    return torch.stack([x1, y1, x1 + side, y1 + side], dim=1)


def _regress(boxes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Apply R-/O-Net box offsets (N,4), in units of the inclusive box size (MTCNN ``bbreg``)."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    return boxes + offsets * torch.stack([w, h, w, h], dim=1)


def crop_resize(
    images: torch.Tensor, image_index: torch.Tensor, boxes: torch.Tensor, size: int
) -> torch.Tensor:
    """Crop boxes and resize them to size x size with area averaging, pixels outside the image = 0.

    images: (B,C,H,W) float32; image_index: (N,) int64; boxes: (N,4) int64 MTCNN inclusive 1-based pixel
    boxes (x, y, ex, ey): the crop is rows y-1..ey-1 and columns x-1..ex-1 (0-based), ey >= y, ex >= x.
    Returns (N,C,size,size) float32, ``F.interpolate(zero_padded_crop, (size, size), mode="area")`` each.
    One small op per box (crops differ in size); an integral-image version that does all crops at once
    was slower on CPU for real photos (its O(H*W) cumulative sums cost more than a few hundred crops).
    """
    _, c, height, width = images.shape
    if boxes.shape[0] == 0:
        return torch.empty(0, c, size, size, dtype=images.dtype, device=images.device)
    if ((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any():
        raise ValueError("crop boxes must be at least one pixel wide and high")
    out = []
    for b, (x, y, ex, ey) in zip(image_index.tolist(), boxes.tolist(), strict=True):
        x0, y0 = x - 1, y - 1
        crop = images[b : b + 1, :, max(y0, 0) : min(ey, height), max(x0, 0) : min(ex, width)]
        pad = (max(-x0, 0), max(ex - width, 0), max(-y0, 0), max(ey - height, 0))
        if any(pad):
            crop = F.pad(crop, pad)
        out.append(F.adaptive_avg_pool2d(crop, (size, size)))
    return torch.cat(out)


def normalise(x: torch.Tensor) -> torch.Tensor:
    """Raw pixels (0..255) -> what the three networks take."""
    return (x - 127.5) * 0.0078125


def _pyramid_scales(height: int, width: int, config: MtcnnConfig) -> list[float]:
    m = 12.0 / config.min_face_size
    min_side = min(height, width) * m
    scales = []
    scale = m
    while min_side >= 12:
        scales.append(scale)
        scale *= config.scale_factor
        min_side *= config.scale_factor
    return scales


# ----------------------------------------------------------------------------------------------------------
# Detection


@torch.inference_mode()
def _detect_stacked(model: MTCNN, images: torch.Tensor, config: MtcnnConfig) -> list[list[Face]]:
    """images: (B,3,H,W) float32 RGB 0..255 on the model's device -> faces per image."""
    batch, _, height, width = images.shape
    t1, t2, t3 = config.thresholds

    # Stage 1: P-Net over the pyramid
    stage1: list[torch.Tensor] = []  # (n, 9): x1 y1 x2 y2 score reg(4)
    stage1_img: list[torch.Tensor] = []
    for scale in _pyramid_scales(height, width, config):
        size = (int(height * scale + 1), int(width * scale + 1))
        reg, prob = model.pnet(normalise(F.adaptive_avg_pool2d(images, size)))
        b, y, x = torch.nonzero(prob[:, 1] >= t1, as_tuple=True)
        if b.numel() == 0:
            continue
        score = prob[b, 1, y, x]
        cell = torch.stack([x, y], dim=1).to(images.dtype)
        q1 = torch.floor((2 * cell + 1) / scale)
        q2 = torch.floor((2 * cell + 12) / scale)
        boxes = torch.cat([q1, q2, score[:, None], reg[b, :, y, x]], dim=1)
        pick = nms(boxes[:, :4], score, config.nms_pnet_scale, b)
        stage1.append(boxes[pick])
        stage1_img.append(b[pick])
    empty: list[list[Face]] = [[] for _ in range(batch)]
    if not stage1:
        return empty
    boxes = torch.cat(stage1)
    image_index = torch.cat(stage1_img)
    pick = nms(boxes[:, :4], boxes[:, 4], config.nms_pnet, image_index)
    boxes, image_index = boxes[pick], image_index[pick]
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    boxes = _square(boxes[:, :4] + boxes[:, 5:9] * torch.stack([w, h, w, h], dim=1))

    def crops(b: torch.Tensor, idx: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        ib = b.trunc().long()
        ok = (ib[:, 2] >= ib[:, 0]) & (ib[:, 3] >= ib[:, 1])
        ok &= (ib[:, 2] >= 1) & (ib[:, 3] >= 1) & (ib[:, 0] <= width) & (ib[:, 1] <= height)
        return normalise(crop_resize(images, idx[ok], ib[ok], size)), ok

    # Stage 2: R-Net
    data, ok = crops(boxes, image_index, 24)
    boxes, image_index = boxes[ok], image_index[ok]
    if boxes.shape[0] == 0:
        return empty
    reg, prob = model.rnet(data)
    keep = prob[:, 1] > t2
    boxes, image_index, reg, score = boxes[keep], image_index[keep], reg[keep], prob[keep, 1]
    pick = nms(boxes, score, config.nms_rnet, image_index)
    boxes = _square(_regress(boxes[pick], reg[pick]))
    image_index = image_index[pick]

    # Stage 3: O-Net
    data, ok = crops(boxes, image_index, 48)
    boxes, image_index = boxes[ok], image_index[ok]
    if boxes.shape[0] == 0:
        return empty
    reg, marks, prob = model.onet(data)
    keep = prob[:, 1] > t3
    boxes, image_index, reg, marks = boxes[keep], image_index[keep], reg[keep], marks[keep]
    score = prob[keep, 1]
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    points = torch.stack(
        [w[:, None] * marks[:, :5] + boxes[:, :1] - 1, h[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1], dim=2
    )
    boxes = _regress(boxes, reg)
    pick = nms(boxes, score, config.nms_onet, image_index, mode="min", pixel_offset=1.0)

    out: list[list[Face]] = [[] for _ in range(batch)]
    boxes_np = boxes[pick].cpu().numpy().astype(np.float32)
    points_np = points[pick].cpu().numpy().astype(np.float32)
    scores_np = score[pick].cpu().numpy()
    for k, b in enumerate(image_index[pick].tolist()):  # already sorted by score
        out[b].append(Face(box=boxes_np[k], score=float(scores_np[k]), landmarks=points_np[k]))
    return out


def _model_device(model: MTCNN) -> torch.device:
    return next(model.parameters()).device


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        raise ValueError(f"expected an (H,W,3) uint8 RGB image, got {type(image).__name__} {shape}")
    if image.shape[0] < 12 or image.shape[1] < 12:
        raise ValueError(f"image too small for MTCNN: {image.shape[:2]}")


def detect_faces(model: MTCNN, image: np.ndarray, config: MtcnnConfig = DEFAULT_CONFIG) -> list[Face]:
    """Detect faces in one (H,W,3) uint8 RGB image; faces sorted by score, highest first."""
    return detect_faces_batch(model, [image], config)[0]


def detect_faces_batch(
    model: MTCNN, images: Sequence[np.ndarray], config: MtcnnConfig = DEFAULT_CONFIG
) -> list[list[Face]]:
    """Detect faces in several (H,W,3) uint8 RGB images; images of equal size run as one batch."""
    for image in images:
        _check_image(image)
    device = _model_device(model)
    results: list[list[Face]] = [[] for _ in images]
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        by_shape.setdefault(image.shape, []).append(i)
    for indices in by_shape.values():
        stacked = np.stack([images[i] for i in indices])
        tensor = torch.from_numpy(stacked).to(device).permute(0, 3, 1, 2).float()
        for i, faces in zip(indices, _detect_stacked(model, tensor, config), strict=True):
            results[i] = faces
    return results


# ----------------------------------------------------------------------------------------------------------
# Loading the port's artefact


PORT_FILENAME = "mtcnn_port.pt"
"""The torch artefact as `fovea models build` copies it next to ``mtcnn.onnx`` (for the torch path)."""


def load_mtcnn(path: Path, device: str | torch.device = "cpu") -> MTCNN:
    """Load an artefact written by :func:`convert_mtcnn` as an eval-mode module on ``device``."""
    artefact = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(artefact, dict) or artefact.get("format") != ARTEFACT_FORMAT:
        raise ValueError(f"{path} is not a {ARTEFACT_FORMAT} artefact")
    model = MTCNN()
    model.load_state_dict(artefact["state_dict"], strict=True)
    return model.to(device).eval()
