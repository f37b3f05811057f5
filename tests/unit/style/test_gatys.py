"""Gatys style transfer: the cost functions on numbers worked by hand, and short runs on the real VGG16 port."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from fovea.contracts.styles import GatysParams
from fovea.convert.vgg16_hed import convert_vgg16_hed
from fovea.ports.gatys import (
    array_to_tensor,
    content_cost,
    gram_matrix,
    run_gatys,
    style_cost,
    style_layer_cost,
    total_cost,
)
from fovea.ports.vgg16_hed import VGG16HED, load_vgg16


@pytest.fixture(scope="module")
def vgg(tmp_path_factory: pytest.TempPathFactory) -> VGG16HED:
    return load_vgg16(convert_vgg16_hed(tmp_path_factory.mktemp("vgg16") / "vgg16_hed.pt"), "cpu")


def _photo(image: np.ndarray, width: int, height: int) -> torch.Tensor:
    return array_to_tensor(
        np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))
    )


@pytest.fixture(scope="module")
def content() -> torch.Tensor:
    return _photo(data.astronaut(), 64, 64)


@pytest.fixture(scope="module")
def style() -> torch.Tensor:
    return _photo(data.coffee(), 80, 60)  # another size and aspect than the content


def test_gram_matrix_of_a_known_tensor() -> None:
    # F: channel 0 = [1, 2, 3, 4], channel 1 = [0, 1, 0, 1] over the M = 2*2 positions.
    # F F^T = [[1+4+9+16, 0+2+0+4], [6, 0+1+0+1]] = [[30, 6], [6, 2]]; divided by M = 4:
    features = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])
    expected = torch.tensor([[[7.5, 1.5], [1.5, 0.5]]])
    torch.testing.assert_close(gram_matrix(features), expected)
    torch.testing.assert_close(
        gram_matrix(torch.cat([features, 2 * features])), torch.cat([expected, 4 * expected])
    )


def test_style_layer_cost_is_the_papers_e_l() -> None:
    # E_l = 1 / (4 N^2 M^2) * sum (G - A)^2 with the paper's unnormalised grams G = F F^T (N = 3, M = 20)
    torch.manual_seed(0)
    a_s, a_g = torch.rand(1, 3, 4, 5, dtype=torch.float64), torch.rand(1, 3, 4, 5, dtype=torch.float64)
    f_s, f_g = a_s.reshape(3, 20), a_g.reshape(3, 20)
    paper = ((f_s @ f_s.T - f_g @ f_g.T) ** 2).sum() / (4 * 3**2 * 20**2)
    torch.testing.assert_close(style_layer_cost(gram_matrix(a_s), gram_matrix(a_g)), paper)
    # the known tensor against zeros: grams [[7.5, 1.5], [1.5, 0.5]] vs 0, N = 2:
    # (56.25 + 2.25 + 2.25 + 0.25) / (4 * 4) = 61 / 16
    g = gram_matrix(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]]))
    assert style_layer_cost(g, torch.zeros_like(g)).item() == pytest.approx(61 / 16)


def test_content_style_and_total_cost() -> None:
    # 1/2 * ((1-0)^2 + (2-0)^2 + (3-1)^2) = 1/2 * 9
    a_c, a_g = torch.tensor([[[[1.0, 2.0, 3.0]]]]), torch.tensor([[[[0.0, 0.0, 1.0]]]])
    assert content_cost(a_c, a_g).item() == pytest.approx(4.5)
    grams_s = {"relu1_1": torch.ones(1, 2, 2), "relu2_1": torch.zeros(1, 1, 1)}
    grams_g = {"relu1_1": torch.zeros(1, 2, 2), "relu2_1": torch.full((1, 1, 1), 2.0)}
    # lambda 0.5 * (4 * 1^2) / (4 * 2^2) + lambda 2 * 2^2 / (4 * 1^2) = 0.125 + 2
    j_style = style_cost(grams_s, grams_g, {"relu1_1": 0.5, "relu2_1": 2.0})
    assert j_style.item() == pytest.approx(2.125)
    assert total_cost(torch.tensor(4.5), j_style, alpha=2.0, beta=10.0).item() == pytest.approx(30.25)
    with pytest.raises(ValueError, match="no gram matrix"):
        style_cost(grams_s, grams_g, {"relu3_1": 1.0})


def test_costs_are_zero_for_identical_inputs(vgg: VGG16HED, content: torch.Tensor) -> None:
    from fovea.ports.vgg16_hed import rgb_to_vgg_input

    with torch.inference_mode():
        a = vgg(rgb_to_vgg_input(content), layers=["relu1_1", "relu4_2"])
        b = vgg(rgb_to_vgg_input(content.clone()), layers=["relu1_1", "relu4_2"])
    assert content_cost(a["relu4_2"], b["relu4_2"]).item() == 0.0
    grams_a = {k: gram_matrix(v) for k, v in a.items()}
    grams_b = {k: gram_matrix(v) for k, v in b.items()}
    assert style_cost(grams_a, grams_b, {"relu1_1": 1.0, "relu4_2": 1.0}).item() == 0.0


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_a_few_iterations_reduce_j_total(
    vgg: VGG16HED, content: torch.Tensor, style: torch.Tensor, optimizer: Any
) -> None:
    costs: list[tuple[float, float, float]] = []

    def on_progress(iteration: int, j_content: float, j_style: float, j_total: float, preview: Any) -> bool:
        assert iteration == len(costs) + 1 and preview is None
        costs.append((j_content, j_style, j_total))
        return True

    before = content.clone()
    out = run_gatys(vgg, content, style, GatysParams(iterations=8, optimizer=optimizer), on_progress)
    torch.testing.assert_close(content, before)  # input untouched
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert len(costs) == 8
    first, last = costs[0], costs[-1]
    print(f"{optimizer}: J_total {first[2]:.4g} -> {last[2]:.4g}")
    assert first[0] == 0.0  # G starts as C
    assert last[2] < 0.5 * first[2]
    assert last[1] < first[1]


def test_cancel_previews_noise_and_max_side(vgg: VGG16HED, style: torch.Tensor) -> None:
    content = _photo(data.astronaut(), 100, 80)
    previews: list[tuple[int, tuple[int, ...]]] = []

    def on_progress(iteration: int, j_content: float, j_style: float, j_total: float, preview: Any) -> bool:
        if preview is not None:
            previews.append((iteration, preview.shape))
        return iteration < 5  # cancel after the 5th of 50

    params = GatysParams(iterations=50, max_side=64, init="noise", preview_every=2, optimizer="adam")
    out = run_gatys(vgg, content, style, params, on_progress)
    # 100x80 fitted to a longest side of 64: 64x51 (80 * 0.64 = 51.2)
    assert out.shape == (51, 64, 3)
    assert previews == [(2, (51, 64, 3)), (4, (51, 64, 3))]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"iterations": 0}, "iterations"),
        ({"max_side": 16}, "max_side"),
        ({"max_side": 10_000}, "max_side"),
        ({"content_layer": "conv4_2"}, "unknown content_layer"),
        ({"style_layers": {"relu6_1": 1.0}}, "unknown style_layers"),
        ({"style_layers": {}}, "style_layers is empty"),
        ({"style_layers": {"relu1_1": -1.0}}, "lambda"),
        ({"alpha": 0.0, "beta": 0.0}, "both 0"),
        ({"beta": -1.0}, "beta"),
        ({"optimizer": "sgd"}, "optimizer"),
        ({"init": "zeros"}, "init"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"preview_every": -1}, "preview_every"),
    ],
)
def test_bad_params_raise_value_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GatysParams(**change)


def test_bad_images_raise_value_error(vgg: VGG16HED, content: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="content must be"):
        run_gatys(vgg, content[0], content, GatysParams(iterations=1))
    with pytest.raises(ValueError, match="style must be"):
        run_gatys(vgg, content, content[:, :1], GatysParams(iterations=1))
