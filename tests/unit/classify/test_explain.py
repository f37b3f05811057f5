"""Grad-CAM (``fovea.classify.core.explain``) and the explain path around it (``pipeline.finish_explain``).

The closed form (CAM weights = the linear layer's row / 49) is checked against Grad-CAM done the textbook way,
with torch autograd on our MobileNetV2 port; the maps are checked to land on the labelled object.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from fovea.classify.core.classify import centre_crop, crop_box
from fovea.classify.core.explain import (
    cell_centre,
    class_index,
    colour_map,
    grad_cam,
    normalise,
    peak_cell,
    png_bytes,
    render_overlay,
)
from fovea.classify.pipeline import Classifier, finish_explain
from fovea.common.paths import project_root
from fovea.convert import mobilenet_v2 as mnv2_build
from fovea.convert.samples import LABELLED_BOXES, sample
from fovea.ports import mobilenet_v2 as mnv2

LABELS = tuple(
    (project_root() / "model_repository" / "classifier_imagenet" / "labels.txt").read_text().splitlines()
)
MALAMUTE, TANDEM, ZEBRA = 249, 444, 340  # ImageNet-1k ids: malamute, bicycle-built-for-two, zebra


@pytest.fixture(scope="module")
def model() -> mnv2.MobileNetV2:
    return mnv2_build.mobilenet_v2_from_checkpoint()


def photo(name: str) -> np.ndarray:
    return np.asarray(Image.open(sample(name)).convert("RGB"))


def box_of(photo_name: str, label: str) -> tuple[int, int, int, int]:
    boxes = [box for name, box in LABELLED_BOXES[photo_name] if name == label]
    assert boxes, (photo_name, label)
    return boxes[0]


def inside(point: tuple[float, float], box: tuple[int, int, int, int]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


# ---------------------------------------------------------------------------------------------- pure parts
def test_grad_cam_by_hand() -> None:
    # 1x2 cells, 2 channels: cell 0 = (1, 2), cell 1 = (3, -4); weights (0.5, 1):
    # cell 0: 0.5 + 2 = 2.5, cell 1: 1.5 - 4 = -2.5 -> ReLU -> (2.5, 0), / (1 * 2 cells) = (1.25, 0)
    fmap = np.array([[[1.0, 2.0], [3.0, -4.0]]], np.float32)
    cam = grad_cam(fmap, np.array([0.5, 1.0], np.float32))
    np.testing.assert_allclose(cam, [[1.25, 0.0]])
    assert cam.dtype == np.float32 and fmap[0, 1, 1] == -4.0  # input untouched
    with pytest.raises(ValueError, match="expected"):
        grad_cam(fmap, np.ones(3, np.float32))
    np.testing.assert_allclose(normalise(cam), [[1.0, 0.0]])
    assert not normalise(np.zeros((2, 2), np.float32)).any()


def test_peak_cell_and_its_centre() -> None:
    cam = np.zeros((7, 7), np.float32)
    cam[4, 2] = 1.0
    assert peak_cell(cam) == (4, 2)
    # a 7x7 map over the box (0, 0)-(70, 140): cell (4, 2) spans x 20..30, y 80..100
    assert cell_centre((4, 2), (7, 7), (0.0, 0.0, 70.0, 140.0)) == pytest.approx((25.0, 90.0))


def test_class_index() -> None:
    labels = ["cat", "Dog", "dog", "tabby"]
    assert class_index(labels, "dog") == 2 and class_index(labels, "CAT") == 0
    with pytest.raises(ValueError, match="ignoring case"):
        class_index(labels, "DOG")
    with pytest.raises(ValueError, match="did you mean 'tabby'"):
        class_index(labels, "taby")


def test_colour_map_ends() -> None:
    colours = colour_map(np.array([0.0, 1.0, 2.0, -1.0]))
    assert colours.shape == (4, 3) and colours.dtype == np.uint8
    assert colours[0].tolist() == [0, 0, 128] and colours[1].tolist() == [255, 32, 0]
    assert colours[2].tolist() == colours[1].tolist() and colours[3].tolist() == colours[0].tolist()


@pytest.mark.parametrize("size", [(768, 576), (300, 900), (256, 256), (1000, 257)])
def test_crop_box_is_what_centre_crop_takes(size: tuple[int, int]) -> None:
    width, height = size
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    x1, y1, x2, y2 = crop_box(width, height)
    # square up to the rounding of the resized side
    assert x2 - x1 == pytest.approx(y2 - y1, rel=3e-3) and 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    # resampling exactly that box to 224x224 gives centre_crop's pixels
    again = np.asarray(
        Image.fromarray(image).resize((224, 224), Image.Resampling.BILINEAR, box=(x1, y1, x2, y2))
    )
    crop = centre_crop(image)
    if (width, height) == (256, 256):
        np.testing.assert_array_equal(crop, image[16:240, 16:240])
        assert (x1, y1, x2, y2) == (16, 16, 240, 240)
    else:
        np.testing.assert_array_equal(crop, again)


def test_render_overlay() -> None:
    photo_ = np.full((100, 200, 3), 200, np.uint8)
    cam = np.zeros((7, 7), np.float32)
    cam[3, 3] = 1.0
    out = render_overlay(photo_, cam, (50.0, 0.0, 150.0, 100.0), "zebra 73.3%")
    assert out.shape == (100, 200, 3) and out.dtype == np.uint8
    assert out[90, 10].tolist() == [90, 90, 90]  # outside the crop: dimmed to 45%
    assert out[50, 100, 0] > out[50, 100, 2]  # the peak (centre of the crop) is red
    assert out[90, 60, 2] > out[90, 60, 0]  # a cold corner of the crop is blue
    band = out[:14, :60]  # the caption, white on black
    assert band.max() >= 200 and band.min() == 0
    assert photo_.min() == 200  # not modified
    big = render_overlay(np.zeros((2000, 1000, 3), np.uint8), cam, (0.0, 500.0, 1000.0, 1500.0), "x")
    assert big.shape == (1024, 512, 3)
    assert Image.open(io.BytesIO(png_bytes(big))).size == (512, 1024)
    with pytest.raises(ValueError, match="empty box"):
        render_overlay(photo_, cam, (10.0, 10.0, 10.0, 20.0), "x")


# ---------------------------------------------------------------------------------------------- on the port
def autograd_grad_cam(model: mnv2.MobileNetV2, crop: np.ndarray, class_id: int) -> np.ndarray:
    """Grad-CAM as Selvaraju et al. compute it: hook features[18] (after its ReLU6), backward the class logit,
    alpha_k = the gradient averaged over the 7x7 cells, ReLU(sum_k alpha_k A_k)."""
    captured: dict[str, torch.Tensor] = {}

    def keep(module: torch.nn.Module, args: object, output: torch.Tensor) -> None:
        output.retain_grad()
        captured["A"] = output

    handle = model.features[18].register_forward_hook(keep)
    try:
        logits = model(mnv2.preprocess(crop[None]))
        logits[0, class_id].backward()
    finally:
        handle.remove()
    activations, gradients = captured["A"][0], captured["A"].grad
    assert gradients is not None
    alpha = gradients[0].mean((1, 2))  # (1280,)
    return torch.relu((alpha[:, None, None] * activations).sum(0)).detach().numpy()


@pytest.mark.parametrize("class_id", [MALAMUTE, TANDEM])
def test_closed_form_equals_autograd_grad_cam(model: mnv2.MobileNetV2, class_id: int) -> None:
    crop = centre_crop(photo("dog"))
    textbook = autograd_grad_cam(model, crop, class_id)
    feature_map = mnv2.port_outputs(model, crop[None])["FEATURE_MAP"][0]
    ours = grad_cam(feature_map, model.classifier[1].weight.detach().numpy()[class_id])
    assert textbook.shape == ours.shape == (7, 7) and textbook.max() > 0
    # the same map, not only up to scale: alpha_k = w_ck / 49 exactly
    np.testing.assert_allclose(ours, textbook, rtol=1e-4, atol=1e-6 * float(textbook.max()))


@pytest.mark.parametrize(
    ("photo_name", "label", "on", "not_on"),
    [
        ("dog", "", "dog", None),  # malamute (0.76): peak on the dog's chest
        ("dog", "bicycle-built-for-two", "bicycle", "dog"),  # the same photo, another class: on the bike
        ("giraffe", "", "zebra", None),  # zebra (0.73): on the zebra beside the giraffe
    ],
)
def test_map_lands_on_the_object(
    model: mnv2.MobileNetV2, photo_name: str, label: str, on: str, not_on: str | None
) -> None:
    image = photo(photo_name)
    classifier = Classifier("classifier_imagenet", LABELS)
    outputs = mnv2.port_outputs(model, centre_crop(image)[None])
    head = model.classifier[1].weight.detach().numpy()
    size = (image.shape[1], image.shape[0])
    explanation = finish_explain(outputs, classifier, head, image, size, label, render=True)
    assert explanation.heatmap.shape == (7, 7) and explanation.heatmap.max() == 1.0 and explanation.peak > 0
    assert explanation.crop == pytest.approx(crop_box(*size))
    if label:
        assert explanation.explained.label == label and explanation.top.class_id == MALAMUTE
    else:
        assert explanation.explained == explanation.top
    centre = cell_centre(peak_cell(explanation.heatmap), (7, 7), explanation.crop)
    assert inside(centre, box_of(photo_name, on)), (centre, box_of(photo_name, on))
    if not_on is not None:
        assert not inside(centre, box_of(photo_name, not_on)), centre
    assert explanation.png is not None
    assert Image.open(io.BytesIO(explanation.png)).size == size


def test_unknown_class_is_refused(model: mnv2.MobileNetV2) -> None:
    outputs = {
        "PROBABILITIES": np.full((1, 1000), 1e-3, np.float32),
        "FEATURE_MAP": np.ones((1, 7, 7, 1280), np.float32),
    }
    classifier = Classifier("classifier_imagenet", LABELS)
    with pytest.raises(ValueError, match="did you mean 'malamute'"):
        finish_explain(
            outputs,
            classifier,
            np.zeros((1000, 1280), np.float32),
            np.zeros((8, 8, 3), np.uint8),
            (8, 8),
            "malamut",
        )
