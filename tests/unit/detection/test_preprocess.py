from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from fovea.contracts.detector import DetectorSpec
from fovea.detection.core.preprocess import Transform, letterbox, normalise, to_original


def _spec(**overrides: Any) -> DetectorSpec:
    fields: dict[str, Any] = {
        "name": "m",
        "family": "yolov8",
        "input_size": (64, 64),
        "labels": ["a"],
        "input_name": "images",
        "output_names": ["output0"],
    }
    fields.update(overrides)
    return DetectorSpec.model_validate(fields)


def _solid(height: int, width: int, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (height, width, 3)).copy()


def _float(image: np.ndarray, spec: DetectorSpec) -> np.ndarray:
    canvas, _ = letterbox(image, spec)
    return normalise(canvas, spec)


def test_letterbox_geometry_and_padding() -> None:
    # 100 wide x 50 high into 64 x 64: r = min(64/100, 64/50) = 0.64 -> 64 x 32, pad_y = (64 - 32) // 2 = 16
    canvas, transform = letterbox(_solid(50, 100, (200, 100, 50)), _spec())
    assert canvas.shape == (64, 64, 3) and canvas.dtype == np.uint8 and canvas.flags.c_contiguous
    assert transform == Transform(0.64, 0.64, 0, 16, (100, 50), (64, 64))
    assert (canvas[:16] == 114).all() and (canvas[48:] == 114).all()
    # bilinear resize of a constant image is the same constant
    assert (canvas[16:48] == np.array([200, 100, 50], np.uint8)).all()


def test_normalise_scales_the_canvas_to_float_chw() -> None:
    spec = _spec()
    tensor = _float(_solid(50, 100, (200, 100, 50)), spec)
    assert tensor.shape == (3, 64, 64) and tensor.dtype == np.float32 and tensor.flags.c_contiguous
    np.testing.assert_allclose(tensor[:, :16], np.full((3, 16, 64), 114 / 255), atol=1e-6)
    expected = np.array([200, 100, 50], np.float32)[:, None, None] / 255
    np.testing.assert_allclose(tensor[:, 16:48], np.broadcast_to(expected, (3, 32, 64)), atol=1e-6)


def test_pad_value_is_rounded_to_a_pixel() -> None:
    canvas, _ = letterbox(_solid(10, 20, (0, 0, 0)), _spec(pad_value=113.6))
    assert canvas[0, 0].tolist() == [114, 114, 114]


def test_odd_padding_goes_right_and_bottom() -> None:
    # 10 x 3 into 64 x 64: r = 6.4 -> 64 x round(19.2) = 19, pad_y = 45 // 2 = 22 (23 rows below)
    _, transform = letterbox(_solid(3, 10, (0, 0, 0)), _spec())
    assert (transform.pad_x, transform.pad_y) == (0, 22)
    assert transform.scale_y == pytest.approx(19 / 3)


def test_bgr_scale_mean_std() -> None:
    spec = _spec(channel_order="BGR", scale=1.0, mean=[1.0, 2.0, 3.0], std=[2.0, 4.0, 8.0], pad_value=0)
    tensor = _float(_solid(64, 64, (10, 20, 30)), spec)
    # channels in model order B, G, R: (30 - 1) / 2, (20 - 2) / 4, (10 - 3) / 8
    np.testing.assert_allclose(tensor[:, 0, 0], [14.5, 4.5, 0.875])


def test_plain_resize_scales_axes_separately() -> None:
    canvas, transform = letterbox(_solid(50, 100, (1, 2, 3)), _spec(letterbox=False, input_size=(64, 32)))
    assert canvas.shape == (32, 64, 3)
    assert transform == Transform(0.64, 0.64, 0, 0, (100, 50), (64, 32))
    _, transform = letterbox(_solid(40, 200, (1, 2, 3)), _spec(letterbox=False))
    assert (transform.scale_x, transform.scale_y) == (64 / 200, 64 / 40)


def test_same_size_image_is_not_resampled_nor_aliased() -> None:
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    canvas, transform = letterbox(image, _spec(scale=1.0))
    assert np.array_equal(canvas, image) and not np.shares_memory(canvas, image)
    assert transform.scale_x == transform.scale_y == 1.0
    np.testing.assert_array_equal(
        normalise(canvas, _spec(scale=1.0)), image.astype(np.float32).transpose(2, 0, 1)
    )


def test_image_content_is_placed_in_order() -> None:
    # left half red, right half blue survives resizing on the right side of the canvas
    image = _solid(40, 80, (255, 0, 0))
    image[:, 40:] = (0, 0, 255)
    canvas, _ = letterbox(image, _spec())
    row = 32  # content rows 16..47
    assert canvas[row, 2].tolist() == [255, 0, 0]
    assert canvas[row, 61].tolist() == [0, 0, 255]


def test_reduced_decode_maps_to_full_size_pixels() -> None:
    # A 200x100 photo decoded at 1/2 (100x50): geometry as for the full 200x100 image -> 64x32, pad_y 16,
    # scale 64 / 200 = 0.32; the content is the half-size image resized to 64x32.
    half = _solid(50, 100, (9, 8, 7))
    canvas, transform = letterbox(half, _spec(), original_size=(200, 100))
    assert transform == Transform(0.32, 0.32, 0, 16, (200, 100), (64, 64))
    assert (canvas[16:48] == np.array([9, 8, 7], np.uint8)).all()
    boxes = to_original(torch.tensor([[0.0, 16.0, 32.0, 48.0]]), transform)
    assert torch.allclose(boxes, torch.tensor([[0.0, 0.0, 100.0, 100.0]]))


@pytest.mark.parametrize("letterboxed", [True, False])
def test_to_original_inverts_the_mapping(letterboxed: bool) -> None:
    _, transform = letterbox(_solid(50, 100, (0, 0, 0)), _spec(letterbox=letterboxed))
    original = torch.tensor([[10.0, 5.0, 60.0, 45.0], [0.0, 0.0, 100.0, 50.0]])
    scale = torch.tensor([transform.scale_x, transform.scale_y] * 2)
    offset = torch.tensor([transform.pad_x, transform.pad_y] * 2, dtype=torch.float32)
    mapped = original * scale + offset
    assert torch.allclose(to_original(mapped, transform), original, atol=1e-4)


def test_to_original_clips_and_keeps_inputs() -> None:
    transform = Transform(0.64, 0.64, 0, 16, (100, 50), (64, 64))
    boxes = torch.tensor([[-6.4, 0.0, 70.0, 64.0]])
    before = boxes.clone()
    # x: -6.4 / 0.64 = -10 -> 0, 70 / 0.64 = 109.4 -> 100; y: (0 - 16) / 0.64 = -25 -> 0, 48 / 0.64 = 75 -> 50
    assert torch.allclose(to_original(boxes, transform), torch.tensor([[0.0, 0.0, 100.0, 50.0]]))
    assert torch.equal(boxes, before)
    assert to_original(torch.zeros(0, 4), transform).shape == (0, 4)


def test_input_image_not_modified() -> None:
    image = _solid(30, 20, (5, 6, 7))
    before = image.copy()
    letterbox(image, _spec(channel_order="BGR"))
    assert np.array_equal(image, before)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((10, 10), dtype=np.uint8), r"\(H, W, 3\)"),
        (np.zeros((10, 10, 4), dtype=np.uint8), r"\(H, W, 3\)"),
        (np.zeros((10, 10, 3), dtype=np.float32), "uint8"),
        (np.zeros((0, 10, 3), dtype=np.uint8), "empty"),
    ],
)
def test_bad_images_raise_value_error(image: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        letterbox(image, _spec())


@pytest.mark.parametrize("size", [(50, 100), (64, 64), (130, 70)])
def test_a_pillow_image_letterboxes_as_its_pixels_do(size: tuple[int, int]) -> None:
    """The detection service letterboxes the decoded Pillow image (no array of every pixel first): the same
    canvas and geometry as from the array, resized or not."""
    pixels = np.random.default_rng(1).integers(0, 256, (*size, 3), dtype=np.uint8)
    for spec in (_spec(), _spec(letterbox=False, input_size=(48, 32))):
        from_array, transform = letterbox(pixels, spec, original_size=(size[1] * 2, size[0] * 2))
        from_picture, same = letterbox(
            Image.fromarray(pixels), spec, original_size=(size[1] * 2, size[0] * 2)
        )
        assert np.array_equal(from_array, from_picture) and transform == same
    with pytest.raises(ValueError, match="RGB"):
        letterbox(Image.fromarray(pixels).convert("L"), _spec())
