"""The Triton face models' helpers: tensor packing, a batch with a bad request, parameters, downsizing."""

from __future__ import annotations

import numpy as np
import pytest

from fovea.faces.core.faces import DetectedFaces, confident_by_area, rescale
from fovea.faces.pipeline import downsize
from fovea.faces.serving import (
    EmbedderInfo,
    detect_requests,
    embed_batch,
    embedder_expected,
    mtcnn_config,
    pack_detections,
    unpack_detections,
)
from fovea.models.dlib_resnet import DlibResNet
from fovea.models.mtcnn import MTCNN, MtcnnConfig, detect_faces
from fovea.serving.base import RequestError


def some_faces(n: int) -> DetectedFaces:
    rng = np.random.default_rng(n)
    return DetectedFaces(
        rng.random((n, 4), dtype=np.float32),
        rng.random(n, dtype=np.float32),
        rng.random((n, 5, 2), dtype=np.float32),
    )


def test_pack_unpack_round_trip() -> None:
    per_image = [some_faces(2), DetectedFaces.empty(), some_faces(3)]
    packed = pack_detections(per_image)
    assert packed["BOXES"].shape == (3, 3, 4) and packed["FACE_COUNT"].tolist() == [[2], [0], [3]]
    back = unpack_detections(packed)
    for a, b in zip(per_image, back, strict=True):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.landmarks, b.landmarks)
    assert pack_detections([DetectedFaces.empty()])["BOXES"].shape == (1, 1, 4)  # never a zero-size dim
    bad = dict(packed, FACE_COUNT=np.array([[4], [0], [0]], np.int32))
    with pytest.raises(ValueError):
        unpack_detections(bad)


def test_detect_requests_batches_and_isolates_bad_requests(
    mtcnn: MTCNN, photos: dict[str, np.ndarray]
) -> None:
    obama = downsize(photos["obama.jpg"], 400)[0]
    biden = downsize(photos["biden.jpg"], 400)[0]
    requests = [
        obama[None],
        np.zeros((1, 5, 5, 3), np.uint8),
        np.stack([biden, biden]),
        obama[None].astype(np.float32),
    ]
    results = detect_requests(mtcnn, requests, MtcnnConfig())
    assert isinstance(results[1], RequestError) and "at least 12x12" in str(results[1])
    assert isinstance(results[3], RequestError) and "uint8" in str(results[3])
    first, third = results[0], results[2]
    assert isinstance(first, dict) and isinstance(third, dict)
    assert third["FACE_COUNT"].shape == (2, 1) and third["FACE_COUNT"][0, 0] >= 1
    expected = detect_faces(mtcnn, obama)  # the same as one image on its own
    got = unpack_detections(first)[0]
    np.testing.assert_allclose(got.boxes, np.stack([f.box for f in expected]), atol=1e-3)


def test_downsized_detection_lands_on_the_full_size_face(mtcnn: MTCNN, photos: dict[str, np.ndarray]) -> None:
    image = photos["obama.jpg"]  # 910 x 1137
    small, sx, sy = downsize(image, 512)
    assert max(small.shape[:2]) == 512 and sx == pytest.approx(small.shape[1] / image.shape[1])
    found = unpack_detections(detect_requests(mtcnn, [small[None]], MtcnnConfig())[0])[0]  # type: ignore[arg-type]
    back = confident_by_area(rescale(found, sx, sy), 0.9)
    full = detect_faces(mtcnn, image)[0]
    # Within a few original pixels (one pixel of the small image is ~2.2 original pixels).
    np.testing.assert_allclose(back.landmarks[0], full.landmarks, atol=6)
    np.testing.assert_allclose(back.boxes[0], full.box, atol=12)
    assert downsize(image, 2000)[0] is image


def test_embed_batch(resnet: DlibResNet) -> None:
    assert embedder_expected(resnet) == {"CHIP": (150, 150, 3)}
    chips = np.random.default_rng(0).integers(0, 256, (3, 150, 150, 3)).astype(np.uint8)
    out = embed_batch(resnet, {"CHIP": chips})["EMBEDDING"]
    assert out.shape == (3, 128) and out.dtype == np.float32
    np.testing.assert_allclose(embed_batch(resnet, {"CHIP": chips[1:2]})["EMBEDDING"][0], out[1], atol=1e-5)


def test_model_parameters() -> None:
    assert mtcnn_config({"MIN_FACE_SIZE": "40", "THRESHOLDS": "0.6,0.7,0.8"}) == MtcnnConfig(
        40.0, thresholds=(0.6, 0.7, 0.8)
    )
    assert mtcnn_config({}) == MtcnnConfig()
    with pytest.raises(ValueError):
        mtcnn_config({"THRESHOLDS": "0.6,0.7"})
    with pytest.raises(ValueError):
        mtcnn_config({"MIN_FACE_SIZE": "big"})
    info = EmbedderInfo.from_parameters({"EMBEDDING_VERSION": "dlib_v1", "DISTANCE_THRESHOLD": "0.6"})
    assert info == EmbedderInfo("dlib_v1", 0.6)
    for bad in [
        {"DISTANCE_THRESHOLD": "0.6"},
        {"EMBEDDING_VERSION": "v", "DISTANCE_THRESHOLD": "x"},
        {"EMBEDDING_VERSION": "v", "DISTANCE_THRESHOLD": "0"},
    ]:
        with pytest.raises(ValueError):
            EmbedderInfo.from_parameters(bad)
