"""MTCNN: our modules with facenet-pytorch's weights, the detection pipeline and its box helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data

from fovea.convert.mtcnn import check_mtcnn_onnx, convert_mtcnn, convert_mtcnn_onnx, fetch_mtcnn_weights
from fovea.ports.mtcnn import (
    MTCNN,
    MtcnnConfig,
    crop_resize,
    detect_faces,
    detect_faces_batch,
    load_mtcnn,
    nms,
)

# facenet-pytorch 2.6.0's own detect_face (run once with a stand-in for torchvision's batched_nms) on
# skimage's astronaut: box x1 y1 x2 y2, then landmarks (x, y) left eye, right eye, nose, mouth l, mouth r.
ASTRONAUT_BOX = [181.051, 62.156, 267.747, 172.050]
ASTRONAUT_LANDMARKS = [
    [205.011, 101.727],
    [246.763, 103.714],
    [224.671, 128.965],
    [201.716, 139.246],
    [245.265, 141.857],
]


@pytest.fixture(scope="module")
def mtcnn(tmp_path_factory: pytest.TempPathFactory) -> MTCNN:
    return load_mtcnn(convert_mtcnn(tmp_path_factory.mktemp("mtcnn") / "mtcnn.pt"))


def slow_nms(
    boxes: np.ndarray, scores: np.ndarray, thr: float, groups: np.ndarray, mode: str, off: float
) -> list[int]:
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    keep: list[int] = []
    for i in order:
        ok = True
        for k in keep:
            if groups[k] != groups[i]:
                continue
            w = max(0.0, min(boxes[i, 2], boxes[k, 2]) - max(boxes[i, 0], boxes[k, 0]) + off)
            h = max(0.0, min(boxes[i, 3], boxes[k, 3]) - max(boxes[i, 1], boxes[k, 1]) + off)
            area_i = (boxes[i, 2] - boxes[i, 0] + off) * (boxes[i, 3] - boxes[i, 1] + off)
            area_k = (boxes[k, 2] - boxes[k, 0] + off) * (boxes[k, 3] - boxes[k, 1] + off)
            denom = min(area_i, area_k) if mode == "min" else area_i + area_k - w * h
            if w * h / denom > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


@pytest.mark.parametrize(("mode", "off"), [("union", 0.0), ("min", 1.0)])
def test_nms_matches_slow_reference(mode: str, off: float) -> None:
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, (300, 2))
    wh = rng.uniform(5, 40, (300, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.permutation(300) / 300.0  # distinct scores: a unique greedy order
    groups = rng.integers(0, 3, 300)
    got = nms(
        torch.tensor(boxes), torch.tensor(scores), 0.4, torch.tensor(groups), mode=mode, pixel_offset=off
    )
    assert got.tolist() == slow_nms(boxes, scores, 0.4, groups, mode, off)


def test_nms_empty_and_bad_shapes() -> None:
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).shape == (0,)
    with pytest.raises(ValueError):
        nms(torch.zeros(3, 5), torch.zeros(3), 0.5)
    with pytest.raises(ValueError):
        nms(torch.zeros(3, 4), torch.zeros(3), 0.5, mode="max")


def test_crop_resize_is_zero_padded_area_resize() -> None:
    rng = np.random.default_rng(2)
    images = torch.tensor(rng.integers(0, 256, (2, 3, 40, 50)), dtype=torch.float32)
    # inclusive 1-based boxes (x, y, ex, ey): inside, crossing each border, and one pixel
    boxes = torch.tensor([[5, 6, 30, 35], [-10, -4, 12, 20], [40, 30, 60, 48], [7, 7, 7, 7]])
    index = torch.tensor([0, 1, 0, 1])
    got = crop_resize(images, index, boxes, 24)
    for k, (x, y, ex, ey) in enumerate(boxes.tolist()):
        canvas = torch.zeros(1, 3, ey - y + 1, ex - x + 1)
        for r in range(y - 1, ey):
            for c in range(x - 1, ex):
                if 0 <= r < 40 and 0 <= c < 50:
                    canvas[0, :, r - y + 1, c - x + 1] = images[index[k], :, r, c]
        expected = F.interpolate(canvas, size=(24, 24), mode="area")
        torch.testing.assert_close(got[k : k + 1], expected, atol=1e-4, rtol=0)


def test_weights_keep_facenet_names() -> None:
    model = MTCNN()
    for name, path in fetch_mtcnn_weights().items():
        state = torch.load(path, weights_only=True)
        getattr(model, name).load_state_dict(state, strict=True)  # raises on any name or shape mismatch


def test_astronaut_matches_facenet_pytorch(mtcnn: MTCNN) -> None:
    faces = detect_faces(mtcnn, data.astronaut())
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.99
    np.testing.assert_allclose(face.box, ASTRONAUT_BOX, atol=1e-2)
    np.testing.assert_allclose(face.landmarks, ASTRONAUT_LANDMARKS, atol=1e-2)
    left_eye, right_eye, nose, mouth_l, mouth_r = face.landmarks
    assert left_eye[0] < right_eye[0] and mouth_l[0] < mouth_r[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_l[1], mouth_r[1])


def test_batch_equals_single(mtcnn: MTCNN) -> None:
    image = data.astronaut()
    flipped = np.ascontiguousarray(image[:, ::-1])
    small = np.ascontiguousarray(image[::2, ::2])
    batch = detect_faces_batch(mtcnn, [image, flipped, small, image])
    for img, faces in zip([image, flipped, small, image], batch, strict=True):
        single = detect_faces(mtcnn, img)
        assert len(faces) == len(single) == 1
        np.testing.assert_allclose(faces[0].box, single[0].box, atol=1e-3)
        np.testing.assert_allclose(faces[0].landmarks, single[0].landmarks, atol=1e-3)
    # the mirrored face: box mirrored about the image centre (x -> 511 - x) within a few pixels
    assert abs((511 - batch[1][0].box[2]) - batch[0][0].box[0]) < 6


def test_no_face_and_bad_input(mtcnn: MTCNN) -> None:
    assert detect_faces(mtcnn, np.full((200, 300, 3), 128, np.uint8)) == []
    assert detect_faces(mtcnn, np.full((200, 300, 3), 128, np.uint8), MtcnnConfig(min_face_size=40)) == []
    with pytest.raises(ValueError):
        detect_faces(mtcnn, np.zeros((100, 100, 3), np.float32))
    with pytest.raises(ValueError):
        detect_faces(mtcnn, np.zeros((100, 100), np.uint8))
    with pytest.raises(ValueError):
        MtcnnConfig(scale_factor=1.5)


def test_onnx_export_matches_the_port(mtcnn: MTCNN, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = convert_mtcnn_onnx(tmp_path_factory.mktemp("mtcnn-onnx") / "mtcnn.onnx")  # checked while built
    assert check_mtcnn_onnx(mtcnn, path, seed=3) <= 1e-4  # random pixels, two P-Net sizes, crop batches
