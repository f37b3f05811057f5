"""Fixtures of the face models (shared by tests/unit/faces and tests/unit/serving through tests/unit/conftest.py): the converted
models and the face_recognition test photos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from fovea.common.paths import project_root
from fovea.convert.dlib_resnet import convert_dlib_resnet, convert_dlib_resnet_onnx
from fovea.convert.face_mesh import convert_face_mesh_onnx
from fovea.convert.mtcnn import convert_mtcnn, convert_mtcnn_onnx
from fovea.convert.retinaface import convert_retinaface_onnx
from fovea.convert.sources import cache_dir, extract_member, pypi_archive, sha256_file
from fovea.faces.tools.inprocess import InProcessFaces
from fovea.ports.dlib_resnet import DlibResNet, load_dlib_resnet
from fovea.ports.mtcnn import MTCNN, load_mtcnn

PHOTOS = "face_recognition", "1.3.0"  # PyPI source archive holding tests/test_images/*.jpg


@pytest.fixture(scope="session")
def mtcnn(tmp_path_factory: pytest.TempPathFactory) -> MTCNN:
    return load_mtcnn(convert_mtcnn(tmp_path_factory.mktemp("faces-models") / "mtcnn.pt"))


@pytest.fixture(scope="session")
def resnet(tmp_path_factory: pytest.TempPathFactory) -> DlibResNet:
    return load_dlib_resnet(convert_dlib_resnet(tmp_path_factory.mktemp("faces-models") / "dlib_resnet.pt"))


@pytest.fixture(scope="session")
def dlib_reference(fixtures: Path) -> dict[str, Any]:
    return json.loads((fixtures / "dlib-reference" / "reference.json").read_text())


@pytest.fixture(scope="session")
def photos(dlib_reference: dict[str, Any]) -> dict[str, np.ndarray]:
    """The six photos dlib's reference was made from, keyed by file name, as (H,W,3) uint8 RGB."""
    name, version = PHOTOS
    archive = pypi_archive(name, version, sdist=True)
    out = {}
    for face in dlib_reference["faces"]:
        dest = cache_dir() / "sources" / f"{name}-{version}" / "test_images" / face["image"]
        path = extract_member(archive, f"tests/test_images/{face['image']}", dest)
        assert sha256_file(path) == face["image_sha256"], f"{path} differs from the photo dlib saw"
        out[face["image"]] = np.asarray(Image.open(path).convert("RGB"))
    return out


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository with the four face models as `fovea models build` makes them (ONNX, checked
    against the torch ports while built) and their real config.pbtxt files."""
    repo = tmp_path_factory.mktemp("model-repository")
    for name, convert, weights in (
        ("face_detector", convert_mtcnn_onnx, "mtcnn.onnx"),
        ("face_embedder", convert_dlib_resnet_onnx, "dlib_resnet.onnx"),
        ("face_mesh", convert_face_mesh_onnx, "face_mesh.onnx"),
        ("face_retinaface", convert_retinaface_onnx, "retinaface_mnet025.onnx"),
    ):
        (repo / name / "1").mkdir(parents=True)
        shutil.copyfile(
            project_root() / "model_repository" / name / "config.pbtxt", repo / name / "config.pbtxt"
        )
        convert(repo / name / "1" / weights)
    return repo


@pytest.fixture(scope="session")
def in_process(repository: Path) -> InProcessFaces:
    return InProcessFaces(repository)
