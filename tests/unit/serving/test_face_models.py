"""The two served face models (fovea.serving.face_detector / face_embedder) in-process: their configs against
their contracts, the numpy MTCNN stages against the torch port, bad requests, packing, downsizing."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fovea.common.errors import InvalidArgument
from fovea.common.images import ImageLimits, decode_image
from fovea.common.paths import project_root
from fovea.contracts import face_detector as face_detector_contract
from fovea.contracts.face_detector import DetectedFaces, DetectorSettings, pack_detections, unpack_detections
from fovea.contracts.face_embedder import EmbedderInfo
from fovea.contracts.tensors import check_config
from fovea.convert import dlib_resnet as dlib_recipe
from fovea.convert import mtcnn as mtcnn_recipe
from fovea.convert.samples import phone_photo
from fovea.faces.recognition.core.faces import confident_by_area
from fovea.faces.recognition.pipeline import CHIP_FACE_PX, downsize, faces_min_size
from fovea.faces.tools.inprocess import InProcessFaces
from fovea.ports import dlib_resnet as dlib_port
from fovea.ports import mtcnn as mtcnn_port
from fovea.ports.dlib_resnet import DlibResNet, embed_chips
from fovea.ports.mtcnn import MTCNN, crop_resize, detect_faces
from fovea.ports.mtcnn import nms as torch_nms
from fovea.serving import face_detector, face_embedder
from fovea.serving.base import RequestError, read_config
from fovea.serving.face_detector import MtcnnNets, area_crops, detect, integral_image, nms
from fovea.serving.triton_adapter import load_from_repository, load_served


def some_faces(n: int) -> DetectedFaces:
    rng = np.random.default_rng(n)
    return DetectedFaces(
        rng.random((n, 4), dtype=np.float32),
        rng.random(n, dtype=np.float32),
        rng.random((n, 5, 2), dtype=np.float32),
    )


@pytest.fixture(scope="module")
def nets(repository: Path) -> MtcnnNets:
    return MtcnnNets(repository / "face_detector" / "1" / "mtcnn.onnx", ["CPUExecutionProvider"], 1)


def test_configs_match_their_contracts() -> None:
    for name, module in (("face_detector", face_detector), ("face_embedder", face_embedder)):
        config = read_config(project_root() / "model_repository" / name / "config.pbtxt")
        params = check_config(module.CONTRACT, config)  # raises listing every difference
        assert config["name"] == name and params["WEIGHTS"].endswith(".onnx")
    detector = read_config(project_root() / "model_repository" / "face_detector" / "config.pbtxt")
    DetectorSettings.from_parameters(check_config(face_detector_contract.CONTRACT, detector))


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


def test_numpy_nms_matches_the_torch_port() -> None:
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, (300, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (300, 2))], axis=1).astype(np.float32)
    scores = (rng.permutation(300) / 300.0).astype(np.float32)  # distinct: a unique greedy order
    groups = rng.integers(0, 3, 300)
    for mode, off in (("union", 0.0), ("min", 1.0)):
        got = nms(boxes, scores, 0.4, groups, mode=mode, pixel_offset=off)
        want = torch_nms(
            torch.tensor(boxes), torch.tensor(scores), 0.4, torch.tensor(groups), mode=mode, pixel_offset=off
        )
        assert got.tolist() == want.tolist()
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).shape == (0,)


def test_area_crops_match_the_torch_port() -> None:
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (40, 50, 3)).astype(np.uint8)
    # inclusive 1-based boxes (x, y, ex, ey): inside, crossing each border, one pixel
    boxes = np.array([[5, 6, 30, 35], [-10, -4, 12, 20], [40, 30, 60, 48], [7, 7, 7, 7]])
    want = crop_resize(
        torch.from_numpy(image).permute(2, 0, 1)[None].float(),
        torch.zeros(4, dtype=torch.long),
        torch.from_numpy(boxes),
        24,
    ).numpy()
    exclusive = np.stack([boxes[:, 0] - 1, boxes[:, 1] - 1, boxes[:, 2], boxes[:, 3]], axis=1)
    np.testing.assert_allclose(area_crops(integral_image(image), exclusive, 24), want, atol=1e-4, rtol=0)


def test_detect_equals_the_torch_port(nets: MtcnnNets, mtcnn: MTCNN, photos: dict[str, np.ndarray]) -> None:
    images = [downsize(photos[n], 400)[0] for n in ("obama.jpg", "biden.jpg", "obama_partial_face.jpg")]
    got = detect(nets, images, DetectorSettings())  # the image as sent, the full pyramid: the port's work
    for image, faces in zip(images, got, strict=True):
        want = detect_faces(mtcnn, image)
        assert len(faces) == len(want) >= 1
        np.testing.assert_allclose(faces.boxes, np.stack([f.box for f in want]), atol=1e-3)
        np.testing.assert_allclose(faces.landmarks, np.stack([f.landmarks for f in want]), atol=1e-3)


def test_working_copy_lands_on_the_full_size_face(
    nets: MtcnnNets, mtcnn: MTCNN, photos: dict[str, np.ndarray]
) -> None:
    image = photos["obama.jpg"]  # 910 x 1137
    [small] = detect(nets, [image], DetectorSettings(detect_side=288))
    full = detect_faces(mtcnn, image)[0]
    best = confident_by_area(small, 0.9)
    # Within a few percent of the face (eyes ~170 pixels apart): one pixel of the copy is ~4 of the photo.
    np.testing.assert_allclose(best.landmarks[0], full.landmarks, atol=12)
    np.testing.assert_allclose(best.boxes[0], full.box, atol=25)


def test_execute_batches_and_isolates_bad_requests(repository: Path, photos: dict[str, np.ndarray]) -> None:
    detector = load_from_repository("fovea.serving.face_detector", repository / "face_detector")
    obama = downsize(photos["obama.jpg"], 400)[0]
    biden = downsize(photos["biden.jpg"], 400)[0]
    results = detector.execute(
        [
            {"IMAGE": obama[None]},
            {"IMAGE": np.zeros((1, 5, 5, 3), np.uint8)},
            {"IMAGE": np.stack([biden, biden])},
            {"IMAGE": obama[None].astype(np.float32)},
            {},
        ]
    )
    assert isinstance(results[1], RequestError) and "at least 12x12" in str(results[1])
    assert isinstance(results[3], RequestError) and "uint8" in str(results[3])
    assert isinstance(results[4], RequestError) and "IMAGE" in str(results[4])
    first, third = results[0], results[2]
    assert isinstance(first, dict) and isinstance(third, dict)
    assert first["FACE_COUNT"][0, 0] >= 1
    assert third["FACE_COUNT"].shape == (2, 1) and third["FACE_COUNT"][0, 0] >= 1
    np.testing.assert_array_equal(third["LANDMARKS"][0], third["LANDMARKS"][1])
    assert "onnxruntime" in detector.describe()


def test_embedder_matches_the_port_and_isolates_bad_requests(repository: Path, resnet: DlibResNet) -> None:
    embedder = load_from_repository("fovea.serving.face_embedder", repository / "face_embedder")
    chips = np.random.default_rng(0).integers(0, 256, (3, 150, 150, 3)).astype(np.uint8)
    good, bad = embedder.execute([{"CHIP": chips}, {"CHIP": chips[:, :100]}])
    assert isinstance(good, dict) and isinstance(bad, RequestError)
    out = good["EMBEDDING"]
    assert out.shape == (3, 128) and out.dtype == np.float32
    np.testing.assert_allclose(out, embed_chips(resnet, chips), atol=1e-4, rtol=0)


def test_the_torch_paths_answer_as_the_onnx_models(
    repository: Path, photos: dict[str, np.ndarray], tmp_path: Path
) -> None:
    """DEVICE torch (what a GPU host whose onnxruntime has no CUDA provider runs): the ports that `fovea
    models build` copies next to the ONNX files find the same faces and embed chips alike."""
    served = {}
    for name, recipe, port in (
        ("face_detector", mtcnn_recipe, mtcnn_port),
        ("face_embedder", dlib_recipe, dlib_port),
    ):
        weights = tmp_path / name / "1"
        weights.mkdir(parents=True)
        shutil.copyfile(recipe.port_artefact(), weights / port.PORT_FILENAME)
        config = copy.deepcopy(read_config(project_root() / "model_repository" / name / "config.pbtxt"))
        config["parameters"]["DEVICE"] = {"string_value": "torch"}
        served[name] = load_served(f"fovea.serving.{name}", weights, config)[1]
        assert "torch cpu" in served[name].describe()
    detector = load_from_repository("fovea.serving.face_detector", repository / "face_detector")
    embedder = load_from_repository("fovea.serving.face_embedder", repository / "face_embedder")
    images = [downsize(photos[n], 288)[0] for n in ("obama.jpg", "biden.jpg")]
    for image in images:
        [want] = detector.execute([{"IMAGE": image[None]}])
        [got] = served["face_detector"].execute([{"IMAGE": image[None]}])
        assert isinstance(want, dict) and isinstance(got, dict) and want["FACE_COUNT"][0, 0] >= 1
        np.testing.assert_array_equal(got["FACE_COUNT"], want["FACE_COUNT"])
        for key in want:
            np.testing.assert_allclose(got[key], want[key], atol=1e-2, rtol=0, err_msg=key)
    chips = np.random.default_rng(0).integers(0, 256, (3, 150, 150, 3)).astype(np.uint8)
    [want], [got] = embedder.execute([{"CHIP": chips}]), served["face_embedder"].execute([{"CHIP": chips}])
    assert isinstance(want, dict) and isinstance(got, dict)
    np.testing.assert_allclose(got["EMBEDDING"], want["EMBEDDING"], atol=1e-4, rtol=0)


def test_parameters() -> None:
    assert DetectorSettings.from_parameters(
        {"MIN_FACE_SIZE": "40", "THRESHOLDS": "0.6,0.7,0.8", "DETECT_SIDE": "320", "MAX_SCALES": "4"}
    ) == DetectorSettings(40.0, (0.6, 0.7, 0.8), 320, 4)
    assert DetectorSettings.from_parameters({}) == DetectorSettings()
    for bad in (
        {"THRESHOLDS": "0.6,0.7"},
        {"MIN_FACE_SIZE": "big"},
        {"MIN_FACE_SIZE": "8"},
        {"DETECT_SIDE": "5"},
    ):
        with pytest.raises(ValueError):
            DetectorSettings.from_parameters(bad)
    info = EmbedderInfo.from_parameters({"EMBEDDING_VERSION": "dlib_v1", "DISTANCE_THRESHOLD": "0.6"})
    assert info == EmbedderInfo("dlib_v1", 0.6)
    for params in (
        {"DISTANCE_THRESHOLD": "0.6"},
        {"EMBEDDING_VERSION": "v", "DISTANCE_THRESHOLD": "x"},
        {"EMBEDDING_VERSION": "v", "DISTANCE_THRESHOLD": "0"},
    ):
        with pytest.raises(ValueError):
            EmbedderInfo.from_parameters(params)


def test_downsize_and_extreme_aspect_ratios() -> None:
    image = np.zeros((1137, 910, 3), np.uint8)
    small, sx, sy = downsize(image, 512)
    assert max(small.shape[:2]) == 512 and sx == pytest.approx(small.shape[1] / 910)
    assert downsize(image, 2000)[0] is image
    # 16 x 12000 (issue 9): scaled to 1024 on the long side it is 1 pixel high; MTCNN needs 12.
    with pytest.raises(InvalidArgument, match=r"16x12000 pixels.*at most 85 times its shorter side"):
        downsize(np.zeros((12000, 16, 3), np.uint8), 1024)
    assert downsize(np.zeros((12, 1024, 3), np.uint8), 1024)[0].shape == (12, 1024, 3)  # the limit itself


def test_faces_min_size_keeps_the_smallest_findable_face_at_chip_size() -> None:
    rule = faces_min_size(288, 20)
    # the smallest face found in a 288-pixel copy is 20 pixels: 20 * L / 288 in the photo
    assert rule((2333, 1434)) is None  # 162 pixels: halved it would be 81 < 100
    assert rule((2880, 2160)) == (1440, 1080)  # 200 pixels: 100 at half size
    assert rule((4032, 3024)) == (2016, 1512)  # a 12 MP phone photo: 280 -> 140 at half size
    assert rule((3024, 4032)) == (1512, 2016)
    assert rule((6000, 4000)) == (1500, 1000)  # 417 -> 104 at a quarter
    assert rule((12000, 8000)) == (1500, 1000)  # 833 -> 104 at an eighth, the most libjpeg can
    assert rule((640, 480)) is None
    assert faces_min_size(0, 20)((12000, 8000)) is None  # the detector takes the photo as sent
    assert faces_min_size(288, 40)((4032, 3024)) == (1008, 756)  # 560 -> 140 at a quarter
    for size in ((2880, 100), (4032, 3024), (9000, 6000)):
        k = size[0] // rule(size)[0]  # type: ignore[index]
        assert 20 * max(size) / 288 / k >= CHIP_FACE_PX


def test_a_phone_photo_is_decoded_at_half_size_with_the_same_faces(
    in_process: InProcessFaces, photos: dict[str, np.ndarray]
) -> None:
    """12 MP: detected on a half-size decode, faces in the full photo's pixels within a pixel of what the
    full decode finds, embeddings within 0.1 of the full decode's (0.03-0.06 measured; the match threshold
    is 0.6) and as close to the same person's original photo."""
    for name, scale in (("obama.jpg", 2.0), ("biden.jpg", 1.0)):
        data = phone_photo(name.removesuffix(".jpg"), scale, seed=len(name))
        reduced = in_process.find_faces(data)
        full = in_process.detect(decode_image(data, ImageLimits()))
        assert reduced.reduction == 2 and reduced.image.shape == (1512, 2016, 3)
        assert len(reduced.faces) == len(full.faces) >= 1
        np.testing.assert_allclose(reduced.faces.boxes[0], full.faces.boxes[0], atol=1.0)
        np.testing.assert_allclose(reduced.faces.landmarks[0], full.faces.landmarks[0], atol=1.0)
        embedding = in_process.embed(reduced)
        assert np.linalg.norm(embedding - in_process.embed(full)) < 0.1, name
        original = in_process.embed(in_process.detect(photos[name]))
        assert np.linalg.norm(embedding - original) < 0.3, name


def test_in_process_verify(in_process: InProcessFaces, photos: dict[str, np.ndarray]) -> None:
    obama = in_process.embed(in_process.detect(photos["obama.jpg"]))
    same = np.linalg.norm(in_process.embed(in_process.detect(photos["obama2.jpg"])) - obama)
    other = np.linalg.norm(in_process.embed(in_process.detect(photos["biden.jpg"])) - obama)
    assert same < 0.5 < 0.7 < other
