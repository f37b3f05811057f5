"""The model repository's two flavours: ``config.pbtxt`` (the local Triton: python backend, onnxruntime inside)
and ``configs/gpu.pbtxt`` (FOVEA_TRITON_MODEL_CONFIG_NAME=gpu on the NGC image: native onnxruntime + TensorRT
where a model is one ONNX graph). Both must declare the same tensors, so services cannot tell which one
runs; every python-backend config matches its module's contract."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fovea.common.paths import project_root
from fovea.contracts.tensors import check_config, model_parameters
from fovea.serving.base import SESSION_PARAMETERS, read_config

REPOSITORY = project_root() / "model_repository"
MODELS = sorted(p.name for p in REPOSITORY.iterdir() if (p / "config.pbtxt").exists())


def tensors(config: dict[str, Any], kind: str) -> list[tuple[str, str, list[int]]]:
    return [(t["name"], t["data_type"], [int(d) for d in t.get("dims", [])]) for t in config.get(kind, [])]


def params(config: dict[str, Any]) -> dict[str, str]:
    return model_parameters(config)


def test_every_model_has_both_flavours() -> None:
    assert MODELS == [
        "centernet",
        "classifier_imagenet",
        "face_detector",
        "face_embedder",
        "face_mesh",
        "face_retinaface",
        "nanodet",
        "nanodet_int8",
        "style_fast",
        "style_gatys",
    ]
    for model in MODELS:
        assert (REPOSITORY / model / "configs" / "gpu.pbtxt").exists(), model


@pytest.mark.parametrize("model", MODELS)
def test_gpu_flavour_declares_the_same_tensors(model: str) -> None:
    local = read_config(REPOSITORY / model / "config.pbtxt")
    gpu = read_config(REPOSITORY / model / "configs" / "gpu.pbtxt")
    assert gpu["name"] == local["name"] == model
    assert gpu.get("max_batch_size", 0) == local.get("max_batch_size", 0)
    assert tensors(gpu, "input") == tensors(local, "input")
    assert tensors(gpu, "output") == tensors(local, "output")
    assert gpu.get("model_transaction_policy") == local.get("model_transaction_policy")
    assert [g["kind"] for g in gpu["instance_group"]] == ["KIND_GPU"]
    if gpu.get("platform") == "onnxruntime_onnx":
        # the native backend serves the very file the python flavour runs, with the service-facing parameters
        assert gpu["default_model_filename"] == params(local)["WEIGHTS"]
        assert "backend" not in gpu or gpu["backend"] == "onnxruntime"
        service_facing = {k: v for k, v in params(local).items() if k not in SESSION_PARAMETERS}
        assert params(gpu) == service_facing
    else:
        assert gpu["backend"] == local["backend"] == "python"
        assert params(gpu) == {**params(local), "DEVICE": "cuda"}


@pytest.mark.parametrize("model", MODELS)
def test_python_flavour_matches_its_contract(model: str) -> None:
    adapter = (REPOSITORY / model / "1" / "model.py").read_text()
    found = re.search(r'python_(?:decoupled_)?model\("(fovea\.serving\.[a-z_]+)"', adapter)
    assert found is not None, f"{model}'s model.py is not the two-line adapter over a fovea.serving module"
    import importlib

    contract = importlib.import_module(found.group(1)).CONTRACT
    for name in ("config.pbtxt", "configs/gpu.pbtxt"):
        config = read_config(REPOSITORY / model / name)
        if config.get("backend") == "python":
            check_config(contract, config)


@pytest.mark.parametrize(
    "model", ["nanodet", "nanodet_int8", "centernet", "face_embedder", "face_mesh", "classifier_imagenet"]
)
def test_native_flavour_names_are_the_onnx_graph_names(model: str) -> None:
    onnx = pytest.importorskip("onnx")
    gpu = read_config(REPOSITORY / model / "configs" / "gpu.pbtxt")
    path: Path = REPOSITORY / model / "1" / gpu["default_model_filename"]
    if not path.exists():
        pytest.skip(f"{path} is not built (`fovea models build`)")
    graph = onnx.load(str(path), load_external_data=False).graph
    types = {
        v.name: onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type)
        for v in [*graph.input, *graph.output]
    }
    for name, dtype, _ in tensors(gpu, "input") + tensors(gpu, "output"):
        want = {"TYPE_UINT8": "UINT8", "TYPE_FP32": "FLOAT", "TYPE_INT32": "INT32"}[dtype]
        assert types.get(name) == want, (name, types)
