from typing import Any

import numpy as np
import pytest
import torch

from fovea.detection.core.preprocess import Transform, letterbox, to_original
from fovea.detection.core.spec import DetectorSpec


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


def test_letterbox_geometry_and_padding() -> None:
    # 100 wide x 50 high into 64 x 64: r = min(64/100, 64/50) = 0.64 -> 64 x 32, pad_y = (64 - 32) // 2 = 16
    tensor, transform = letterbox(_solid(50, 100, (200, 100, 50)), _spec())
    assert tensor.shape == (3, 64, 64) and tensor.dtype == torch.float32
    assert transform == Transform(0.64, 0.64, 0, 16, (100, 50), (64, 64))
    pad = 114 / 255
    assert torch.allclose(tensor[:, :16], torch.full((3, 16, 64), pad))
    assert torch.allclose(tensor[:, 48:], torch.full((3, 16, 64), pad))
    # bilinear resize of a constant image is the same constant
    expected = torch.tensor([200, 100, 50], dtype=torch.float32)[:, None, None] / 255
    assert torch.allclose(tensor[:, 16:48], expected.expand(3, 32, 64), atol=1e-6)


def test_odd_padding_goes_right_and_bottom() -> None:
    # 10 x 3 into 64 x 64: r = 6.4 -> 64 x round(19.2) = 19, pad_y = 45 // 2 = 22 (23 rows below)
    _, transform = letterbox(_solid(3, 10, (0, 0, 0)), _spec())
    assert (transform.pad_x, transform.pad_y) == (0, 22)
    assert transform.scale_y == pytest.approx(19 / 3)


def test_bgr_scale_mean_std() -> None:
    spec = _spec(channel_order="BGR", scale=1.0, mean=[1.0, 2.0, 3.0], std=[2.0, 4.0, 8.0], pad_value=0)
    tensor, _ = letterbox(_solid(64, 64, (10, 20, 30)), spec)
    # channels in model order B, G, R: (30 - 1) / 2, (20 - 2) / 4, (10 - 3) / 8
    assert torch.allclose(tensor[:, 0, 0], torch.tensor([14.5, 4.5, 0.875]))


def test_plain_resize_scales_axes_separately() -> None:
    tensor, transform = letterbox(_solid(50, 100, (1, 2, 3)), _spec(letterbox=False, input_size=(64, 32)))
    assert tensor.shape == (3, 32, 64)
    assert transform == Transform(0.64, 0.64, 0, 0, (100, 50), (64, 32))
    _, transform = letterbox(_solid(40, 200, (1, 2, 3)), _spec(letterbox=False))
    assert (transform.scale_x, transform.scale_y) == (64 / 200, 64 / 40)


def test_same_size_image_is_not_resampled() -> None:
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    tensor, transform = letterbox(image, _spec(scale=1.0))
    assert torch.equal(tensor, torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1))
    assert transform.scale_x == transform.scale_y == 1.0


def test_image_content_is_placed_in_order() -> None:
    # left half red, right half blue survives resizing on the right side of the canvas
    image = _solid(40, 80, (255, 0, 0))
    image[:, 40:] = (0, 0, 255)
    tensor, _ = letterbox(image, _spec(scale=1.0))
    row = 32  # content rows 16..47
    assert tensor[0, row, 2] == pytest.approx(255) and tensor[2, row, 2] == pytest.approx(0)
    assert tensor[0, row, 61] == pytest.approx(0) and tensor[2, row, 61] == pytest.approx(255)


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
