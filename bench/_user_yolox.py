"""What a user runs instead of Fovea: their own YOLOX script, in its own process, nothing from Fovea.

The reference of ``bench/yolox_user.py`` (issue 23: the held-out script is a YOLOX-nano in onnxruntime). The
script YOLOX's own ``demo/ONNXRuntime/onnx_inference.py`` is, with Pillow for OpenCV: decode the JPEG, resize
to fit 416x416 keeping the aspect ratio, pad with grey 114 on the right and bottom, BGR float32 pixels 0-255,
``onnxruntime.InferenceSession(path)`` with onnxruntime's defaults, boxes decoded on the grid
(``demo_postprocess``), score = objectness x class score, class-aware NMS (``multiclass_nms``), boxes back to
the photo. One photo at a time. It imports numpy, Pillow and onnxruntime only (and the bench's timing loop).

    python bench/_user_yolox.py MODEL.onnx PHOTO... [--requests 64] [--min-score 0.3] [--iou 0.6] [--serve]

Prints one JSON object: ``p50_ms``, ``p95_ms``, ``per_s`` (sequential) and ``classes`` (the class ids found
in each photo, best first); with ``--serve`` the classes alone, then it times blocks of requests as stdin
asks (``_timing.serve_blocks``).
"""

from __future__ import annotations

import io

import numpy as np
import onnxruntime as ort
from _user import nms, script_main  # bench/ is sys.path[0]: the NanoDet script's NMS and command line
from PIL import Image

SIZE = 416
STRIDES = (8, 16, 32)


def grids() -> tuple[np.ndarray, np.ndarray]:
    cells, strides = [], []
    for s in STRIDES:
        n = SIZE // s
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        cells.append(np.stack((xs, ys), 2).reshape(-1, 2))
        strides.append(np.full((n * n, 1), s))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides).astype(np.float32)


GRID, STRIDE = grids()


def detect(session: ort.InferenceSession, data: bytes, min_score: float, iou: float) -> list[int]:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    ratio = min(SIZE / image.height, SIZE / image.width)
    w, h = int(image.width * ratio), int(image.height * ratio)
    padded = np.full((SIZE, SIZE, 3), 114, dtype=np.uint8)
    padded[:h, :w] = np.asarray(image.resize((w, h), Image.BILINEAR))[..., ::-1]  # BGR, as cv2 reads it
    x = np.ascontiguousarray(padded.transpose(2, 0, 1), dtype=np.float32)[None]
    out = session.run(None, {session.get_inputs()[0].name: x})[0][0]  # (3549, 85)
    xy = (out[:, :2] + GRID) * STRIDE
    wh = np.exp(out[:, 2:4]) * STRIDE
    scores = out[:, 4:5] * out[:, 5:]
    anchor, class_id = np.nonzero(scores > min_score)
    boxes = np.concatenate((xy - wh / 2, xy + wh / 2), axis=1)[anchor] / ratio
    offset = boxes + class_id[:, None] * 4096.0  # class-aware NMS in one pass
    keep = nms(offset, scores[anchor, class_id], iou)[:100]
    return [int(c) for c in class_id[keep]]


if __name__ == "__main__":
    script_main(__doc__ or "", detect)
