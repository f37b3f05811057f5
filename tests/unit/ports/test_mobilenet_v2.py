"""Our MobileNetV2 definition with torchvision's ImageNet checkpoint, and its ONNX export.

The port is checked by a strict state-dict load (every parameter name and shape of torchvision's network),
the parameter count torchvision documents (3,504,872), top-1 on photos by eye, and (test_mobilenet_v2_reference)
against torchvision's own definition's outputs stored as a fixture.
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from fovea.classify.core.classify import centre_crop, top_k
from fovea.common.paths import project_root
from fovea.convert import mobilenet_v2 as mnv2_build
from fovea.convert.samples import sample
from fovea.ports import mobilenet_v2 as mnv2

LABELS = (project_root() / "model_repository" / "classifier_imagenet" / "labels.txt").read_text().splitlines()
DOGS = range(151, 269)  # ImageNet-1k's dog breeds (Chihuahua .. Mexican hairless)
CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def model() -> mnv2.MobileNetV2:
    return mnv2_build.mobilenet_v2_from_checkpoint()


def test_definition_matches_torchvision_layout() -> None:
    net = mnv2.MobileNetV2()
    # torchvision's documented size of mobilenet_v2: 3,504,872 parameters; 19 feature stages
    assert sum(p.numel() for p in net.parameters()) == 3_504_872
    assert len(net.features) == 19
    block = net.features[2]
    assert isinstance(block, mnv2.InvertedResidual) and not block.use_res_connect  # stride 2, 16 -> 24
    assert isinstance(net.features[3], mnv2.InvertedResidual) and net.features[3].use_res_connect
    with pytest.raises(ValueError, match="stride"):
        mnv2.InvertedResidual(8, 8, 3, 6)


def test_checkpoint_loads_strictly_in_eval_mode(model: mnv2.MobileNetV2) -> None:
    assert not model.training
    with torch.inference_mode():
        logits = model(torch.zeros(2, 3, 224, 224))
    assert logits.shape == (2, 1000) and torch.isfinite(logits).all()


def test_labels_are_the_imagenet_classes_in_torchvision_order() -> None:
    assert len(LABELS) == 1000
    assert (LABELS[0], LABELS[281], LABELS[285], LABELS[967], LABELS[968]) == (
        "tench",
        "tabby",
        "Egyptian cat",
        "espresso",
        "cup",
    )
    assert mnv2_build.imagenet_labels() == LABELS  # the committed file is what the package gives


def _photo(name: str) -> np.ndarray:
    if name in ("coffee", "chelsea", "astronaut", "rocket"):
        return np.asarray(getattr(skimage.data, name)())
    return np.asarray(Image.open(sample(name)).convert("RGB"))


@pytest.mark.parametrize(
    ("photo", "expected"),
    [
        ("coffee", {967, 968}),  # espresso (0.99), cup
        ("chelsea", set(CATS)),  # Egyptian cat (0.71), then tiger cat, tabby
        ("dog", set(DOGS)),  # darknet's dog: malamute (0.76), Eskimo dog, dogsled, Siberian husky
        ("giraffe", {340}),  # zebra (0.73): the zebra beside the giraffe; ImageNet-1k has no giraffe class
        ("rocket", {812, 657}),  # skimage's rocket: space shuttle (0.29), drilling platform, missile
    ],
)
def test_top1_on_photos(model: mnv2.MobileNetV2, photo: str, expected: set[int]) -> None:
    probs = mnv2.probabilities(model, centre_crop(_photo(photo))[None])[0]
    assert probs.sum() == pytest.approx(1.0, abs=1e-4)
    best = top_k(probs, LABELS, 1)[0]
    assert best.class_id in expected, (photo, best)
    assert best.probability > (0.2 if photo == "rocket" else 0.5)


def test_horses_are_hoofed_animals(model: mnv2.MobileNetV2) -> None:
    # ImageNet-1k's one horse class is "sorrel" (339): darknet's brown horses come out as ox (0.28), bighorn,
    # water buffalo, ram, oxcart. A miss for top-1, but the five are hoofed animals (ids 339..355: sorrel,
    # zebra, hog, boar, warthog, hippo, ox, water buffalo, bison, ram, bighorn, ibex, ... llama) or an oxcart.
    probs = mnv2.probabilities(model, centre_crop(_photo("horses"))[None])[0]
    top5 = [p.class_id for p in top_k(probs, LABELS, 5)]
    assert top5[0] in range(339, 356), top5
    assert sum(k in range(339, 356) for k in top5) >= 4, top5


def test_preprocess_checks_and_normalises() -> None:
    x = mnv2.preprocess(np.full((1, 2, 2, 3), 255, np.uint8))
    # (1 - 0.485) / 0.229 = 2.2489 for red
    assert x.shape == (1, 3, 2, 2) and x[0, 0, 0, 0].item() == pytest.approx(2.2489, abs=1e-4)
    with pytest.raises(ValueError, match="uint8"):
        mnv2.preprocess(np.zeros((1, 2, 2, 3), np.float32))


def test_served_onnx_matches_the_port(model: mnv2.MobileNetV2) -> None:
    served = mnv2_build.served_onnx(model)
    assert [i.name for i in served.graph.input] == ["IMAGE"]
    assert [o.name for o in served.graph.output] == ["PROBABILITIES", "FEATURES", "FEATURE_MAP", "TEXTURE"]
    images = np.concatenate([mnv2_build.check_images(), centre_crop(_photo("coffee"))[None]])
    errors = mnv2_build.port_errors(served, model, images)
    # measured: probabilities 6e-7, features 4e-6, feature map 1.4e-5, texture 4e-7
    assert max(errors.values()) <= mnv2_build.PORT_TOLERANCE, errors


def test_texture_is_the_channel_statistics_of_two_early_blocks(model: mnv2.MobileNetV2) -> None:
    """TEXTURE, computed apart from forward_all: each of TEXTURE_BLOCKS' outputs run block by block, its
    channels' spatial means then their (population) standard deviations, in block order."""
    import torch

    crop = centre_crop(_photo("coffee"))[None]
    want = []
    with torch.inference_mode():
        x = mnv2.preprocess(crop)
        for index, block in enumerate(model.features):
            x = block(x)
            if index in mnv2.TEXTURE_BLOCKS:
                plane = x[0].numpy().reshape(x.shape[1], -1).astype(np.float64)
                want += [plane.mean(1), plane.std(1)]
    got = mnv2.port_outputs(model, crop)["TEXTURE"][0]
    assert got.shape == (mnv2.TEXTURE_WIDTH,) == (sum(len(w) for w in want),)
    np.testing.assert_allclose(got, np.concatenate(want), rtol=1e-4, atol=1e-5)
