"""Draw detections on an image: a box and a "label score" tag per detection, one colour per class."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from fovea.detection.core.postprocess import Detection

__all__ = ["class_colour", "draw_detections"]

_GOLDEN_RATIO_CONJUGATE = 0.618033988749895


def class_colour(class_id: int) -> tuple[int, int, int]:
    """A stable, well-separated RGB colour for a class: hue stepped by the golden ratio."""
    hue = (class_id * _GOLDEN_RATIO_CONJUGATE) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return round(r * 255), round(g * 255), round(b * 255)


def _text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``background`` (Rec. 601 luma)."""
    r, g, b = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def draw_detections(
    image: Image.Image, detections: Sequence[Detection], *, line_width: int = 2
) -> Image.Image:
    """Return an RGB copy of ``image`` with each detection's box and ``"label 0.87"`` tag drawn.

    Boxes are xyxy in ``image``'s pixels. The tag sits above the box, or inside its top when there is no
    room above. Uses Pillow's default font. ``image`` is not modified.
    """
    if line_width < 1:
        raise ValueError(f"line_width must be >= 1, got {line_width}")
    canvas = image.convert("RGB")  # always a new image
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for det in detections:
        colour = class_colour(det.class_id)
        x1, y1, x2, y2 = det.box
        draw.rectangle((x1, y1, max(x1, x2), max(y1, y2)), outline=colour, width=line_width)
        text = f"{det.label} {det.score:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        text_w, text_h = right - left + 4, bottom - top + 4
        tag_y = y1 - text_h if y1 - text_h >= 0 else y1
        draw.rectangle((x1, tag_y, x1 + text_w, tag_y + text_h), fill=colour)
        draw.text((x1 + 2 - left, tag_y + 2 - top), text, fill=_text_colour(colour), font=font)
    return canvas
