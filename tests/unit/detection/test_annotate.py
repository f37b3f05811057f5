import pytest
from PIL import Image

from fovea.detection.core.annotate import class_colour, draw_detections
from fovea.detection.core.postprocess import Detection


def test_draws_box_in_class_colour_and_keeps_input() -> None:
    image = Image.new("RGB", (120, 100))
    before = image.tobytes()
    detection = Detection((20.0, 40.0, 80.0, 90.0), 0.87, 3, "motorcycle")
    result = draw_detections(image, [detection])
    assert result is not image and image.tobytes() == before
    assert result.size == image.size and result.mode == "RGB"
    assert result.getpixel((50, 90)) == class_colour(3)  # bottom edge
    assert result.getpixel((20, 65)) == class_colour(3)  # left edge
    assert result.getpixel((50, 65)) == (0, 0, 0)  # inside untouched
    # the tag is drawn above the box in the class colour (with text on it)
    tag = [result.getpixel((x, y)) for x in range(20, 40) for y in range(30, 40)]
    assert class_colour(3) in tag and len(set(tag)) > 1


def test_tag_inside_when_box_touches_top_and_other_modes() -> None:
    image = Image.new("L", (60, 60), 255)
    result = draw_detections(image, [Detection((0.0, 0.0, 50.0, 50.0), 0.5, 0, "person")])
    assert result.mode == "RGB" and result.getpixel((2, 2)) != (255, 255, 255)
    assert draw_detections(image, []).tobytes() == image.convert("RGB").tobytes()


def test_class_colours_are_distinct_and_stable() -> None:
    colours = [class_colour(i) for i in range(80)]
    assert len(set(colours)) == 80
    assert class_colour(5) == class_colour(5)


def test_bad_line_width() -> None:
    with pytest.raises(ValueError, match="line_width"):
        draw_detections(Image.new("RGB", (4, 4)), [], line_width=0)
