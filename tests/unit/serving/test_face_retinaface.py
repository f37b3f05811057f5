"""face_retinaface (RetinaFace-mobilenet0.25 behind face_detector's outputs): the config against its contract,
the prior boxes against a loop, the served model on the face_recognition photos against MTCNN's landmarks,
and FOVEA_FACES_DETECTOR choosing it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from fovea.common.paths import project_root
from fovea.contracts.face_detector import DETECTOR_INPUT, unpack_detections
from fovea.contracts.face_retinaface import PRIOR_LEVELS, RetinaSettings, prior_boxes
from fovea.contracts.tensors import check_config
from fovea.faces.config import FacesSettings
from fovea.faces.recognition.core.align import RETINAFACE_TEMPLATE
from fovea.faces.tools.inprocess import InProcessFaces
from fovea.ports.dlib_resnet import DLIB_RESNET_META
from fovea.serving import face_retinaface
from fovea.serving.base import RequestError, onnx_session, read_config
from fovea.serving.triton_adapter import load_from_repository

# Landmarks of two detectors trained on different annotations agree to a fraction of the eyes' distance:
# 0.15 of it is about 2 pixels on a 150-pixel chip, a shift alignment barely sees (measured 0.00-0.13 on the
# frontal photos at DETECT_SIDE 320; bench/face_detectors.py).
LANDMARK_TOLERANCE = 0.15
FRONTAL = ("obama.jpg", "obama2.jpg")
MATRIX_TOLERANCE = 0.05  # as MTCNN's (tests/unit/faces/recognition/test_pipeline.py); measured 0.049
TEMPLATE_TOLERANCE = 2.0  # pixels, as MTCNN's: the template is these means made symmetric


@pytest.fixture(scope="module")
def retina(repository: Path) -> InProcessFaces:
    return InProcessFaces(repository, FacesSettings(detector="retinaface"))


def test_config_matches_the_contract() -> None:
    config = read_config(project_root() / "model_repository" / "face_retinaface" / "config.pbtxt")
    params = check_config(face_retinaface.CONTRACT, config)  # raises listing every difference
    assert config["name"] == "face_retinaface" and params["WEIGHTS"].endswith(".onnx")
    RetinaSettings.from_parameters(params)
    with pytest.raises(ValueError, match="SCORE_THRESHOLD"):
        RetinaSettings.from_parameters({"SCORE_THRESHOLD": "2"})


def test_prior_boxes_match_a_loop() -> None:
    height, width = 50, 70
    expected = []
    for stride, sizes in PRIOR_LEVELS:
        for row in range(int(np.ceil(height / stride))):
            for col in range(int(np.ceil(width / stride))):
                for size in sizes:
                    expected.append(((col + 0.5) * stride, (row + 0.5) * stride, size, size))
    np.testing.assert_allclose(prior_boxes(height, width), np.array(expected, np.float32))


def test_finds_the_face_and_landmarks_near_mtcnns(
    retina: InProcessFaces, in_process: InProcessFaces, photos: dict[str, np.ndarray]
) -> None:
    for name, image in photos.items():
        ours, theirs = retina.detect(image).faces, in_process.detect(image).faces
        assert len(ours) == len(theirs) == 1, (name, len(ours), len(theirs))
        assert ours.landmarks.shape == (1, 5, 2) and ours.scores[0] > 0.9
        box = ours.boxes[0]
        assert (box[:2] < ours.landmarks[0].min(axis=0)).all(), name
        assert (ours.landmarks[0].max(axis=0) < box[2:]).all(), name
        eyes = np.linalg.norm(theirs.landmarks[0, 0] - theirs.landmarks[0, 1])
        gaps = np.linalg.norm(ours.landmarks[0] - theirs.landmarks[0], axis=1) / eyes
        if name in FRONTAL:  # every point, left eye first (the image's left, as MTCNN's)
            assert gaps.max() < LANDMARK_TOLERANCE, (name, gaps.round(3))
        else:  # turned, cut or other faces: the points on average
            assert gaps.mean() < LANDMARK_TOLERANCE, (name, gaps.round(3))


def test_the_template_is_where_retinaface_finds_the_points_of_dlibs_chips(
    repository: Path, fixtures: Path, dlib_reference: dict[str, Any]
) -> None:
    session = onnx_session(
        repository / "face_retinaface" / "1" / "retinaface_mnet025.onnx", ["CPUExecutionProvider"], 1
    )
    points = []
    for face in dlib_reference["faces"]:
        chip = np.asarray(Image.open(fixtures / "dlib-reference" / face["chip150"]).convert("RGB"))
        [found] = face_retinaface.detect(session, [chip], RetinaSettings(detect_side=0))
        assert len(found) == 1, face["chip150"]
        points.append(found.landmarks[0])
    assert np.abs(np.mean(points, axis=0) - RETINAFACE_TEMPLATE).max() < TEMPLATE_TOLERANCE


def test_distance_matrix_matches_dlib(
    retina: InProcessFaces, photos: dict[str, np.ndarray], dlib_reference: dict[str, Any]
) -> None:
    names = [f["image"] for f in dlib_reference["faces"]]
    descriptors = np.array([retina.embed(retina.detect(photos[n])) for n in names], np.float64)
    ours = np.linalg.norm(descriptors[:, None] - descriptors[None], axis=2)
    theirs = np.array(dlib_reference["pairwise_l2_from_chip"]["matrix"])
    is_biden = np.array([n.startswith("biden") for n in names])
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            same = is_biden[i] == is_biden[j]
            assert (ours[i, j] < DLIB_RESNET_META.threshold) == same, (names[i], names[j], ours[i, j])
    assert np.abs(ours - theirs).max() < MATRIX_TOLERANCE


def test_execute_batches_and_isolates_bad_requests(repository: Path, photos: dict[str, np.ndarray]) -> None:
    model = load_from_repository("fovea.serving.face_retinaface", repository / "face_retinaface")
    image = photos["obama.jpg"][:600, :600]
    results = model.execute(
        [
            {DETECTOR_INPUT: np.stack([image, image[:, ::-1]])},
            {DETECTOR_INPUT: np.zeros((1, 8, 8, 3), np.uint8)},
            {DETECTOR_INPUT: np.zeros((1, 64, 64, 3), np.uint8)},
        ]
    )
    assert isinstance(results[1], RequestError)
    first, mirrored = unpack_detections(results[0])  # type: ignore[arg-type]
    assert len(first) == len(mirrored) == 1
    # mirrored: the same face, the eyes swap sides, and "left eye" is still the one on the image's left
    assert first.landmarks[0, 0, 0] < first.landmarks[0, 1, 0]
    assert mirrored.landmarks[0, 0, 0] < mirrored.landmarks[0, 1, 0]
    eyes = first.landmarks[0, 1, 0] - first.landmarks[0, 0, 0]  # the net is not exactly mirror-symmetric
    np.testing.assert_allclose(599 - mirrored.landmarks[0, 1, 0], first.landmarks[0, 0, 0], atol=0.05 * eyes)
    assert len(unpack_detections(results[2])[0]) == 0  # type: ignore[arg-type]


def test_the_faces_setting_chooses_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    default = FacesSettings()
    assert default.detector_model == "face_retinaface" and default.min_face_score == 0.6
    doors = default.for_doors()  # door bursts: MTCNN, whose landmarks the PAD checks are calibrated on
    assert doors.detector_model == "face_detector" and doors.min_face_score == 0.9
    assert doors.embedder_model == default.embedder_model
    monkeypatch.setenv("FOVEA_FACES_DETECTOR", "mtcnn")
    mtcnn = FacesSettings()
    assert mtcnn.detector_model == "face_detector" and mtcnn.min_face_score == 0.9  # each its own scale
    assert mtcnn.for_doors() is mtcnn
    monkeypatch.setenv("FOVEA_FACES_MIN_FACE_SCORE", "0.5")
    assert FacesSettings().min_face_score == 0.5
    monkeypatch.setenv("FOVEA_FACES_DETECTOR", "retinaface")
    assert FacesSettings().for_doors().min_face_score == 0.5  # a floor set by hand holds at the door too
    monkeypatch.setenv("FOVEA_FACES_DETECTOR", "retina")
    with pytest.raises(ValidationError, match="'mtcnn' or 'retinaface'"):
        FacesSettings()
