"""``fovea.serving.nanodet``: the code Triton runs for NanoDet, loaded in-process from the repository config."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fovea.common.paths import project_root
from fovea.contracts.nanodet import CONTRACT
from fovea.contracts.tensors import check_config
from fovea.convert.nanodet import (
    BOX_TOLERANCE_PX,
    PORT_TOLERANCE,
    check_images,
    convert_nanodet_onnx,
    default_artifact_path,
)
from fovea.ports.nanodet import PORT_FILENAME, SERVED_OUTPUTS, NanoDetCandidates, load_nanodet, preprocess
from fovea.serving.base import RequestError, read_config, torch_instead
from fovea.serving.triton_adapter import Served, load_served

MODEL_DIR = project_root() / "model_repository" / "nanodet"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    weights = tmp_path_factory.mktemp("nanodet") / "1"
    convert_nanodet_onnx(weights / "model.onnx")
    _, model = load_served("fovea.serving.nanodet", weights, read_config(MODEL_DIR / "config.pbtxt"))
    return model


def test_repository_config_matches_contract() -> None:
    params = check_config(CONTRACT, read_config(MODEL_DIR / "config.pbtxt"))
    assert params["WEIGHTS"] == "model.onnx" and params["THREADS"] == "0"
    assert CONTRACT.input_names == ("INPUT",) and CONTRACT.output_names == SERVED_OUTPUTS
    assert (MODEL_DIR / "1" / "model.py").read_text().count("python_model(") == 1


def test_batch_matches_port_and_bad_requests_get_their_own_error(served: Served) -> None:
    images = check_images()
    results = served.execute(
        [
            {"INPUT": images[:1]},
            {"INPUT": np.zeros((1, 320, 320, 3), np.uint8)},  # wrong size
            {"INPUT": images[1:].astype(np.float32)},  # wrong dtype
            {"INPUT": images[1:]},
        ]
    )
    assert isinstance(results[1], RequestError) and "shape" in str(results[1])
    assert isinstance(results[2], RequestError) and "uint8" in str(results[2])
    first, last = results[0], results[3]
    assert isinstance(first, dict) and isinstance(last, dict)
    head = NanoDetCandidates(load_nanodet(default_artifact_path()))
    with torch.inference_mode():
        want = [t.numpy() for t in head(preprocess(images))]
    got = [np.concatenate([first[name], last[name]]) for name in SERVED_OUTPUTS]
    for k, name in enumerate(SERVED_OUTPUTS):
        assert got[k].shape == (2, *CONTRACT.outputs[k].dims) and got[k].dtype == CONTRACT.outputs[k].dtype, (
            name
        )
    assert_same_candidates(got, want)


def assert_same_candidates(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    """``[BOXES, SCORES, CLASSES]`` of two images alike: top-k orders equal scores either way, so sorted
    scores are compared, then (class, box) where a score is unique."""
    assert float(np.abs(np.sort(got[1], 1) - np.sort(want[1], 1)).max()) <= PORT_TOLERANCE
    compared = 0
    for i in range(len(want[1])):
        gaps = np.diff(np.sort(want[1][i]))
        for j, score in enumerate(want[1][i]):
            nearest = np.sort(np.abs(want[1][i] - score))[1]
            if nearest < 1e-5 or gaps.size == 0:
                continue
            match = int(np.abs(got[1][i] - score).argmin())
            assert got[2][i][match] == want[2][i][j]
            assert float(np.abs(got[0][i][match] - want[0][i][j]).max()) <= BOX_TOLERANCE_PX
            compared += 1
    assert compared > 100  # most scores are unique


def test_the_torch_path_serves_the_onnx_graphs_candidates(served: Served, tmp_path: Path) -> None:
    """DEVICE torch (what a GPU host whose onnxruntime has no CUDA provider runs): the port that `fovea models
    build` copies next to the ONNX file, fed the same uint8 images, answers as the ONNX graph does."""
    weights = tmp_path / "1"
    weights.mkdir()
    shutil.copyfile(default_artifact_path(), weights / PORT_FILENAME)
    config = copy.deepcopy(read_config(MODEL_DIR / "config.pbtxt"))
    config["parameters"]["DEVICE"] = {"string_value": "torch"}
    _, model = load_served("fovea.serving.nanodet", weights, config)
    assert model.describe().startswith("torch cpu")
    images = check_images()
    [onnx_result, bad] = served.execute([{"INPUT": images}, {"INPUT": images.astype(np.float32)}])
    [torch_result, bad_too] = model.execute([{"INPUT": images}, {"INPUT": images.astype(np.float32)}])
    assert isinstance(bad, RequestError) and str(bad_too) == str(bad)
    assert isinstance(onnx_result, dict) and isinstance(torch_result, dict)
    for spec in CONTRACT.outputs:
        assert torch_result[spec.name].dtype == onnx_result[spec.name].dtype, spec.name
        assert torch_result[spec.name].shape == onnx_result[spec.name].shape, spec.name
    got = [torch_result[name] for name in SERVED_OUTPUTS]
    assert_same_candidates(got, [onnx_result[name] for name in SERVED_OUTPUTS])


def test_describe_names_the_provider(served: Served) -> None:
    assert "CPUExecutionProvider" in served.describe()


def test_missing_weights_say_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="fovea models build"):
        load_served("fovea.serving.nanodet", tmp_path, read_config(MODEL_DIR / "config.pbtxt"))


def test_torch_only_where_asked_or_where_only_torch_sees_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort

    assert torch_instead("torch", "CPU", 0) == ("cuda:0" if torch.cuda.is_available() else "cpu")
    assert torch_instead("torch", "GPU", 1) == "cuda:1"
    for gpu, providers, want in [
        (False, ["CPUExecutionProvider"], None),  # this machine: onnxruntime on the CPU
        (True, ["CPUExecutionProvider"], "cuda:0"),  # the bench/gpu host: torch sees the GPU, onnxruntime not
        (True, ["CUDAExecutionProvider", "CPUExecutionProvider"], None),  # onnxruntime-gpu: ONNX on the GPU
    ]:
        monkeypatch.setattr(torch.cuda, "is_available", lambda gpu=gpu: gpu)
        monkeypatch.setattr(ort, "get_available_providers", lambda providers=providers: providers)
        assert torch_instead("auto", "CPU", 0) == want
        assert torch_instead("cuda", "CPU", 0) == want
        assert torch_instead("cpu", "CPU", 0) is None and torch_instead("tensorrt", "GPU", 0) is None
