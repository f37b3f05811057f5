"""``face_detector``: MTCNN (P-Net, R-Net, O-Net; facenet-pytorch's weights as ONNX) in onnxruntime.

Contract: ``IMAGE`` uint8 [N, H, W, 3] RGB -> per image ``FACE_COUNT`` int32 [1] and, padded to the largest
count in the batch (at least one row), ``BOXES`` float32 [F, 4] (x1, y1, x2, y2 in the pixels of the image
sent), ``SCORES`` float32 [F] (highest first) and ``LANDMARKS`` float32 [F, 5, 2] ((x, y) pixel-centre units:
left eye, right eye, nose, mouth left, mouth right). Rows past ``FACE_COUNT`` are zeros.

The stage logic is :func:`fovea.ports.mtcnn.detect_faces`' (pyramid, NMS, box regression, zero-padded
area-averaged crops), in numpy; the networks run in onnxruntime, all crops of a stage in one call. Area
averages are read off one integral image of the working copy, so the pyramid levels and every crop cost a
gather each. The working copy is the image box-resized to ``DETECT_SIDE`` (its longer side) when larger:
the detector's cost is bounded whatever the size sent, and the faces it finds are at least
``MIN_FACE_SIZE`` pixels of the working copy. With ``DETECT_SIDE`` 0 and ``MAX_SCALES`` 0 the results are
the torch port's (tested).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fovea.contracts.face_detector import (
    CONTRACT,
    DETECTOR_INPUT,
    DETECTOR_OUTPUTS,
    MIN_IMAGE_SIDE,
    ONNX_TENSORS,
    DetectedFaces,
    DetectorSettings,
    detection_size,
    pack_detections,
    unpack_detections,
)
from fovea.contracts.tensors import Arrays
from fovea.serving.base import (
    RequestError,
    choose_providers,
    set_intra_op_threads,
    torch_instead,
    torch_threads,
    weights_path,
)


def check_images(batch: np.ndarray) -> None:
    """Raise ``RequestError`` unless ``batch`` is an [N, H, W, 3] uint8 batch P-Net can run on."""
    if batch.ndim != 4 or batch.shape[3] != 3 or batch.dtype != np.uint8:
        raise RequestError(f"IMAGE must be uint8 [N, H, W, 3], got {batch.dtype} {list(batch.shape)}")
    if batch.shape[1] < MIN_IMAGE_SIDE or batch.shape[2] < MIN_IMAGE_SIDE:
        raise RequestError(
            f"IMAGE must be at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}, got {list(batch.shape)}"
        )


def request_images(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """One request's ``DETECTOR_INPUT`` batch, checked (:func:`check_images`); ``RequestError`` if it is
    missing or unfit."""
    if DETECTOR_INPUT not in arrays:
        raise RequestError(f"missing input {DETECTOR_INPUT}")
    batch = arrays[DETECTOR_INPUT]
    check_images(batch)
    return batch


# ------------------------------------------------------------------------------------------ box helpers
def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    groups: np.ndarray | None = None,
    *,
    mode: str = "union",
    pixel_offset: float = 0.0,
) -> np.ndarray:
    """Greedy non-maximum suppression (numpy twin of :func:`fovea.ports.mtcnn.nms`).

    boxes (N,4) xyxy float32, scores (N,), groups optional (N,) int (different groups never suppress each
    other). ``mode`` "union": intersection over union; "min": over the smaller area. ``pixel_offset`` is
    added to widths and heights. Returns (K,) int64 indices, highest score first.
    """
    if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(f"expected boxes (N,4) and scores (N,), got {boxes.shape}, {scores.shape}")
    if mode not in ("union", "min"):
        raise ValueError(f"mode must be 'union' or 'min', got {mode!r}")
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-scores, kind="stable")
    b = boxes[order]
    g = groups[order] if groups is not None else np.zeros(len(b), np.int64)
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = (x2 - x1 + pixel_offset) * (y2 - y1 + pixel_offset)
    remaining = np.arange(len(b))
    keep: list[int] = []
    while remaining.size:
        i = remaining[0]
        keep.append(int(i))
        rest = remaining[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + pixel_offset, 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + pixel_offset, 0, None)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        remaining = rest[~((inter > threshold * denom) & (g[rest] == g[i]))]
    return order[np.array(keep, np.int64)]


def _square(boxes: np.ndarray) -> np.ndarray:
    """(N,4) xyxy -> the enclosing square with the same centre (MTCNN ``rerec``)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1 = boxes[:, 0] + w * 0.5 - side * 0.5
    y1 = boxes[:, 1] + h * 0.5 - side * 0.5
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Apply R-/O-Net offsets (N,4) in units of the inclusive box size (MTCNN ``bbreg``)."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    return boxes + offsets * np.stack([w, h, w, h], axis=1)


# ------------------------------------------------------------------------------------------ area averages
def integral_image(image: np.ndarray) -> np.ndarray:
    """(H,W,3) uint8 -> (H+1,W+1,3) int sums: ``S[r, c]`` = sum of ``image[:r, :c]`` (exact integers)."""
    height, width = image.shape[:2]
    dtype = np.int32 if height * width * 255 < 2**31 else np.int64
    sums = np.zeros((height + 1, width + 1, image.shape[2]), dtype)
    np.cumsum(image, axis=0, dtype=dtype, out=sums[1:, 1:])
    np.cumsum(sums[1:, 1:], axis=1, out=sums[1:, 1:])
    return sums


def _windows(start: np.ndarray, length: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive-pooling windows: for N spans (start, length) -> (N,size) lo and hi (exclusive) ends,
    ``lo = start + floor(i L / size)``, ``hi = start + ceil((i + 1) L / size)`` (torch's rule)."""
    i = np.arange(size, dtype=np.int64)[None]
    length = length.astype(np.int64)[:, None]
    return start.astype(np.int64)[:, None] + i * length // size, start.astype(np.int64)[:, None] - (
        -(i + 1) * length // size
    )


def area_crops(sums: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Zero-padded, area-averaged size x size crops, as ``F.adaptive_avg_pool2d`` of each padded crop.

    sums: an :func:`integral_image` of an (H,W,3) image; boxes: (N,4) int (x0, y0, x1, y1) 0-based,
    exclusive ends, x1 > x0, y1 > y0, may reach outside the image (outside pixels count as 0).
    Returns (N,3,size,size) float32 RGB 0..255.
    """
    height, width = sums.shape[0] - 1, sums.shape[1] - 1
    if len(boxes) == 0:
        return np.zeros((0, 3, size, size), np.float32)
    y_lo, y_hi = _windows(boxes[:, 1], boxes[:, 3] - boxes[:, 1], size)
    x_lo, x_hi = _windows(boxes[:, 0], boxes[:, 2] - boxes[:, 0], size)
    area = ((y_hi - y_lo)[:, :, None] * (x_hi - x_lo)[:, None, :]).astype(np.float32)
    ya, yb = np.clip(y_lo, 0, height)[:, :, None], np.clip(y_hi, 0, height)[:, :, None]
    xa, xb = np.clip(x_lo, 0, width)[:, None, :], np.clip(x_hi, 0, width)[:, None, :]
    total = sums[yb, xb] - sums[ya, xb] - sums[yb, xa] + sums[ya, xa]  # (N,size,size,3)
    return np.ascontiguousarray((total.astype(np.float32) / area[..., None]).transpose(0, 3, 1, 2))


def _pool_image(sums: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """The whole image area-resized to (1,3,out_h,out_w) float32 (``F.adaptive_avg_pool2d``)."""
    height, width = sums.shape[0] - 1, sums.shape[1] - 1
    zero = np.zeros(1, np.int64)
    y_lo, y_hi = _windows(zero, np.array([height]), out_h)
    x_lo, x_hi = _windows(zero, np.array([width]), out_w)
    ya, yb, xa, xb = y_lo[0][:, None], y_hi[0][:, None], x_lo[0][None], x_hi[0][None]
    total = sums[yb, xb] - sums[ya, xb] - sums[yb, xa] + sums[ya, xa]
    area = ((yb - ya) * (xb - xa)).astype(np.float32)
    return np.ascontiguousarray((total.astype(np.float32) / area[..., None]).transpose(2, 0, 1)[None])


def pyramid_scales(height: int, width: int, settings: DetectorSettings) -> list[float]:
    """P-Net scales: 12 / min face, times the scale factor while the short side stays >= 12 pixels; with
    ``max_scales`` only the coarsest that many (the smallest faces searched for grow instead)."""
    m = 12.0 / settings.min_face_size
    min_side = min(height, width) * m
    scales: list[float] = []
    scale = m
    while min_side >= 12:
        scales.append(scale)
        scale *= settings.scale_factor
        min_side *= settings.scale_factor
    return scales[-settings.max_scales :] if settings.max_scales else scales


# ------------------------------------------------------------------------------------------ detection
class _ThreeNets:
    """P-Net, R-Net and O-Net behind one interface; a subclass runs a net by name (``_run``)."""

    def _run(self, net: str, x: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def pnet(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(1,3,H,W) float32 pixels -> offsets (1,4,h,w), probabilities (1,2,h,w)."""
        reg, prob = self._run("pnet", x)
        return reg, prob

    def rnet(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N,3,24,24) -> offsets (N,4), probabilities (N,2)."""
        reg, prob = self._run("rnet", x)
        return reg, prob

    def onet(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N,3,48,48) -> offsets (N,4), landmarks (N,10: 5 x then 5 y), probabilities (N,2)."""
        reg, marks, prob = self._run("onet", x)
        return reg, marks, prob


class MtcnnNets(_ThreeNets):
    """The three networks as onnxruntime sessions (split out of the one ONNX file ``fovea models build``
    writes)."""

    def __init__(self, path: Path, providers: Sequence[Any], threads: int) -> None:
        import onnx
        import onnxruntime as ort
        from onnx.utils import Extractor

        extractor = Extractor(onnx.load(str(path)))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        set_intra_op_threads(options, threads)
        self.sessions = {}
        self.names = ONNX_TENSORS
        for net, (inp, outs) in ONNX_TENSORS.items():
            graph = extractor.extract_model([inp], list(outs))
            self.sessions[net] = ort.InferenceSession(
                graph.SerializeToString(), options, providers=list(providers)
            )
        self.providers = self.sessions["pnet"].get_providers()

    def _run(self, net: str, x: np.ndarray) -> list[np.ndarray]:
        inp, outs = self.names[net]
        return list(self.sessions[net].run(list(outs), {inp: x}))


class TorchMtcnnNets(_ThreeNets):
    """The three networks from the torch port (``mtcnn_port.pt``, which `fovea models build` copies next to
    the ONNX file) on a torch device: the GPU path of a host whose onnxruntime has no CUDA provider
    (:func:`fovea.serving.base.torch_instead`)."""

    def __init__(self, path: Path, device: str) -> None:
        from fovea.ports.mtcnn import load_mtcnn

        self.model = load_mtcnn(path, device)
        self.device = device

    def _run(self, net: str, x: np.ndarray) -> list[np.ndarray]:
        import torch

        from fovea.ports.mtcnn import normalise

        with torch.inference_mode():
            outputs = getattr(self.model, net)(normalise(torch.from_numpy(x).to(self.device)))
            return [t.cpu().numpy() for t in outputs]


def working_copy(image: np.ndarray, side: int) -> tuple[np.ndarray, float, float]:
    """(H,W,3) uint8 -> the image box-resized to longer side <= ``side`` (0: unchanged), x and y scales."""
    height, width = image.shape[:2]
    if not side:
        return image, 1.0, 1.0
    new_w, new_h = detection_size(width, height, side)
    if (new_w, new_h) == (width, height):
        return image, 1.0, 1.0
    from PIL import Image

    small = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BOX))
    return small, new_w / width, new_h / height


def _int_crops(boxes: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Float MTCNN boxes -> (0-based exclusive int crop boxes, mask of the usable ones), as the port does:
    truncated to the inclusive 1-based box (x, y, ex, ey), kept when non-empty and touching the image."""
    ib = np.trunc(boxes).astype(np.int64)
    ok = (ib[:, 2] >= ib[:, 0]) & (ib[:, 3] >= ib[:, 1])
    ok &= (ib[:, 2] >= 1) & (ib[:, 3] >= 1) & (ib[:, 0] <= width) & (ib[:, 1] <= height)
    ib = ib[ok]
    return np.stack([ib[:, 0] - 1, ib[:, 1] - 1, ib[:, 2], ib[:, 3]], axis=1), ok


def detect(nets: Any, images: Sequence[np.ndarray], settings: DetectorSettings) -> list[DetectedFaces]:
    """Faces in each (H,W,3) uint8 RGB image (highest score first), in that image's pixels.

    P-Net runs per image and pyramid level; R-Net and O-Net once each over the crops of every image.
    """
    t1, t2, t3 = settings.thresholds
    copies = [working_copy(image, settings.detect_side) for image in images]
    sums = [integral_image(c) for c, _, _ in copies]

    # Stage 1: P-Net over each pyramid
    found: list[np.ndarray] = []  # (n, 9): x1 y1 x2 y2 score reg(4)
    owner: list[np.ndarray] = []
    for k, ((copy, _, _), s) in enumerate(zip(copies, sums, strict=True)):
        height, width = copy.shape[:2]
        per_image = []
        for scale in pyramid_scales(height, width, settings):
            reg, prob = nets.pnet(_pool_image(s, int(height * scale + 1), int(width * scale + 1)))
            y, x = np.nonzero(prob[0, 1] >= t1)
            if y.size == 0:
                continue
            score = prob[0, 1, y, x]
            cell = np.stack([x, y], axis=1).astype(np.float32)
            q1 = np.floor((2 * cell + 1) / np.float32(scale))
            q2 = np.floor((2 * cell + 12) / np.float32(scale))
            boxes = np.concatenate([q1, q2, score[:, None], reg[0, :, y, x]], axis=1).astype(np.float32)
            per_image.append(boxes[nms(boxes[:, :4], score, settings.nms_pnet_scale)])
        if per_image:
            boxes = np.concatenate(per_image)
            boxes = boxes[nms(boxes[:, :4], boxes[:, 4], settings.nms_pnet)]
            found.append(boxes)
            owner.append(np.full(len(boxes), k, np.int64))
    out = [DetectedFaces.empty() for _ in images]
    if not found:
        return out
    boxes = np.concatenate(found)
    index = np.concatenate(owner)
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    boxes = _square(boxes[:, :4] + boxes[:, 5:9] * np.stack([w, h, w, h], axis=1))

    def crops(b: np.ndarray, idx: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        data = np.zeros((len(b), 3, size, size), np.float32)
        ok_all = np.zeros(len(b), bool)
        for k, s in enumerate(sums):
            mine = np.flatnonzero(idx == k)
            ib, ok = _int_crops(b[mine], s.shape[0] - 1, s.shape[1] - 1)
            data[mine[ok]] = area_crops(s, ib, size)
            ok_all[mine[ok]] = True
        return data[ok_all], ok_all

    # Stage 2: R-Net
    data, ok = crops(boxes, index, 24)
    boxes, index = boxes[ok], index[ok]
    if len(boxes) == 0:
        return out
    reg, prob = nets.rnet(data)
    keep = prob[:, 1] > t2
    boxes, index, reg, score = boxes[keep], index[keep], reg[keep], prob[keep, 1]
    pick = nms(boxes, score, settings.nms_rnet, index)
    boxes, index = _square(_regress(boxes[pick], reg[pick])), index[pick]

    # Stage 3: O-Net
    data, ok = crops(boxes, index, 48)
    boxes, index = boxes[ok], index[ok]
    if len(boxes) == 0:
        return out
    reg, marks, prob = nets.onet(data)
    keep = prob[:, 1] > t3
    boxes, index, reg, marks, score = boxes[keep], index[keep], reg[keep], marks[keep], prob[keep, 1]
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    points = np.stack(
        [w[:, None] * marks[:, :5] + boxes[:, :1] - 1, h[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1], axis=2
    )
    boxes = _regress(boxes, reg)
    pick = nms(boxes, score, settings.nms_onet, index, mode="min", pixel_offset=1.0)
    boxes, points, score, index = boxes[pick], points[pick], score[pick], index[pick]
    for k, (_, sx, sy) in enumerate(copies):
        mine = index == k
        if not mine.any():
            continue
        to_copy = np.array([sx, sy], np.float64)  # working-copy pixels -> the image's (see faces.rescale)
        out[k] = DetectedFaces(
            boxes=(boxes[mine] / np.tile(to_copy, 2)).astype(np.float32),
            scores=score[mine].astype(np.float32),
            landmarks=((points[mine] + 0.5) / to_copy - 0.5).astype(np.float32),
        )
    return out


# ------------------------------------------------------------------------------------------ served model
class FaceDetector:
    def __init__(self, nets: Any, settings: DetectorSettings, device: str = "") -> None:
        self.nets = nets
        self.settings = settings
        self.device = device

    def execute(self, requests: Sequence[Mapping[str, np.ndarray]]) -> list[Arrays | RequestError]:
        """One entry per request: its packed faces, or its ``RequestError``; the valid requests' images
        run together (R-Net and O-Net once over all their crops)."""
        results: list[Arrays | RequestError] = []
        images: list[np.ndarray] = []
        owners: list[int] = []
        for i, arrays in enumerate(requests):
            try:
                batch = request_images(arrays)
            except RequestError as exc:
                results.append(exc)
                continue
            results.append({})
            images.extend(batch)
            owners.extend([i] * len(batch))
        per_request: dict[int, list[DetectedFaces]] = {}
        for i, faces in zip(owners, detect(self.nets, images, self.settings), strict=True):
            per_request.setdefault(i, []).append(faces)
        for i, faces_list in per_request.items():
            results[i] = pack_detections(faces_list)
        return results

    def describe(self) -> str:
        return f"MTCNN in {self.device}, {self.settings}"


def load(
    model_dir: Path, params: Mapping[str, str], instance_kind: str, device_id: int | str
) -> FaceDetector:
    import onnxruntime as ort

    from fovea.ports.mtcnn import PORT_FILENAME

    settings = DetectorSettings.from_parameters(params)  # fails loudly on a bad parameter
    device = torch_instead(params.get("DEVICE") or "auto", instance_kind, device_id)
    if device is not None:
        port = TorchMtcnnNets(weights_path(model_dir, PORT_FILENAME), device)
        return FaceDetector(port, settings, f"torch {device} (the port)")
    providers = choose_providers(
        instance_kind, device_id, params.get("DEVICE") or "auto", ort.get_available_providers()
    )
    threads = int(params.get("THREADS") or 0) or torch_threads()
    nets = MtcnnNets(weights_path(model_dir, params["WEIGHTS"]), providers, threads)
    return FaceDetector(nets, settings, f"onnxruntime {nets.providers}, {threads} thread(s)")


__all__ = [
    "CONTRACT",
    "DETECTOR_INPUT",
    "DETECTOR_OUTPUTS",
    "MIN_IMAGE_SIDE",
    "ONNX_TENSORS",
    "DetectorSettings",
    "FaceDetector",
    "MtcnnNets",
    "TorchMtcnnNets",
    "area_crops",
    "check_images",
    "detect",
    "integral_image",
    "load",
    "nms",
    "pack_detections",
    "pyramid_scales",
    "unpack_detections",
    "working_copy",
]
