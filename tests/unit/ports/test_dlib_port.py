"""Our reader + torch port of dlib's face descriptor network against real dlib 20.0.1 outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from fovea.convert.dlib_resnet import (
    check_dlib_resnet_onnx,
    convert_dlib_resnet,
    convert_dlib_resnet_onnx,
    read_dlib_net,
)
from fovea.ports.dlib_resnet import (
    DLIB_RESNET_META,
    DlibResNet,
    _pad_add,
    chips_to_tensor,
    embed_chips,
    load_dlib_resnet,
)

TOLERANCE = 1e-4  # max abs per descriptor entry; the port reaches ~4e-7 (reference.json keeps 7 decimals)


@pytest.fixture(scope="module")
def resnet(tmp_path_factory: pytest.TempPathFactory) -> DlibResNet:
    path = convert_dlib_resnet(tmp_path_factory.mktemp("dlib") / "dlib_resnet.pt")
    return load_dlib_resnet(path)


@pytest.fixture(scope="module")
def reference(fixtures: Path) -> dict[str, Any]:
    return json.loads((fixtures / "dlib-reference" / "reference.json").read_text())


@pytest.fixture(scope="module")
def chips(fixtures: Path, reference: dict[str, Any]) -> np.ndarray:
    folder = fixtures / "dlib-reference"
    return np.stack(
        [np.asarray(Image.open(folder / f["chip150"]).convert("RGB")) for f in reference["faces"]]
    )


def embed(model: DlibResNet, chips: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(chips_to_tensor(chips)).numpy()


def test_descriptors_match_dlib(resnet: DlibResNet, chips: np.ndarray, reference: dict[str, Any]) -> None:
    expected = np.array([f["descriptor_from_chip"] for f in reference["faces"]], dtype=np.float64)
    ours = np.concatenate([embed(resnet, chip[None]) for chip in chips])
    errors = np.abs(ours - expected).max(axis=1)
    names = [f["chip150"] for f in reference["faces"]]
    print("max abs error per chip:", dict(zip(names, errors.tolist(), strict=True)))
    assert ours.shape == (len(chips), DLIB_RESNET_META.dim)
    assert errors.max() < TOLERANCE


def test_batch_equals_one_by_one(resnet: DlibResNet, chips: np.ndarray) -> None:
    batch = embed_chips(resnet, chips, batch_size=4)  # batches of 4 and 2
    assert batch.shape == (6, 128) and batch.dtype == np.float32
    single = np.concatenate([embed(resnet, chip[None]) for chip in chips])
    np.testing.assert_allclose(batch, single, atol=1e-5, rtol=0)


def test_artefact_is_plain_weights(resnet: DlibResNet, tmp_path: Path) -> None:
    path = convert_dlib_resnet(tmp_path / "again.pt")
    artefact = torch.load(path, weights_only=True)
    assert artefact["spec"]["format"] == "fovea.dlib_resnet/1"
    assert artefact["spec"]["input_mean"] == pytest.approx([122.782, 117.001, 104.298], abs=1e-4)
    # 29 conv layers: the stem + 2 per residual block (14 blocks), affines folded in; fc without bias.
    convs = [k for k in artefact["state_dict"] if k.endswith(".weight") and k != "fc.weight"]
    assert len(convs) == 29 and len(artefact["spec"]["blocks"]) == 14
    stored = sum(v.numel() for v in artefact["state_dict"].values())
    assert stored == sum(p.numel() for p in resnet.parameters())


def test_meta() -> None:
    meta = DLIB_RESNET_META
    assert (meta.chip_size, meta.padding, meta.threshold, meta.dim) == (150, 0.25, 0.6, 128)


def test_rejects_bad_input(resnet: DlibResNet) -> None:
    with pytest.raises(ValueError):
        resnet(torch.zeros(1, 3, 160, 160))
    assert embed_chips(resnet, np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 128)
    with pytest.raises(ValueError):
        read_dlib_net(b"\x01\x01\x01\x05hello")
    with pytest.raises(ValueError):
        read_dlib_net(b"")


def test_zero_padded_add_matches_dlib_rule() -> None:
    # dlib tt::add: out has the max of each dimension; entries missing from an input count as 0.
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 3, 3, 3)).astype(np.float32)
    b = rng.normal(size=(2, 2, 4, 4)).astype(np.float32)
    expected = np.zeros((2, 3, 4, 4), np.float32)
    for n in range(2):
        for c in range(3):
            for y in range(4):
                for x in range(4):
                    va = a[n, c, y, x] if y < 3 and x < 3 else 0.0
                    vb = b[n, c, y, x] if c < 2 else 0.0
                    expected[n, c, y, x] = va + vb
    np.testing.assert_array_equal(_pad_add(torch.from_numpy(a), torch.from_numpy(b)).numpy(), expected)


def test_onnx_export_matches_the_port(resnet: DlibResNet, chips: np.ndarray, tmp_path: Path) -> None:
    path = convert_dlib_resnet_onnx(tmp_path / "dlib_resnet.onnx")  # checked on random chips while built
    assert check_dlib_resnet_onnx(resnet, path, chips) <= 1e-4  # and on dlib's six reference chips
