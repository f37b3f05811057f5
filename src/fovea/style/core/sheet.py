"""A contact sheet: one image in every style, each tile labelled (PIL ImageDraw). No I/O."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)


def contact_sheet(
    tiles: Sequence[tuple[str, np.ndarray]],
    columns: int = 6,
    tile_side: int = 256,
    label_height: int = 22,
    gap: int = 6,
) -> Image.Image:
    """Lay out ``(label, image)`` pairs in a grid, each image fitted into a ``tile_side`` square with its
    label underneath.

    Args:
        tiles: labels and (H, W, 3) uint8 RGB images, in reading order; not empty.
        columns: tiles per row (fewer when there are fewer tiles).
    Returns:
        An RGB image of ``columns`` x ceil(len / columns) cells with ``gap`` pixels between and around them.
        A cell is ``tile_side`` wide and as high as the tallest fitted image plus ``label_height`` (so the
        label sits right under a landscape photo); images are centred in their cells.
    """
    if not tiles:
        raise ValueError("a contact sheet needs at least one image")
    if columns < 1 or tile_side < 16 or label_height < 8 or gap < 0:
        raise ValueError(
            f"need columns >= 1, tile_side >= 16, label_height >= 8, gap >= 0; got {columns}, {tile_side}, "
            f"{label_height}, {gap}"
        )
    fitted = []
    for i, (label, image) in enumerate(tiles):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"tile {i} ({label!r}): expected (H, W, 3) uint8, got {image.dtype} {image.shape}"
            )
        tile = Image.fromarray(image)
        tile.thumbnail((tile_side, tile_side), Image.Resampling.LANCZOS)
        fitted.append((label, tile))
    columns = min(columns, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    image_h = max(tile.height for _, tile in fitted)
    cell_w, cell_h = tile_side, image_h + label_height
    sheet = Image.new("RGB", (gap + columns * (cell_w + gap), gap + rows * (cell_h + gap)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = _font(label_height - 6)
    for i, (label, tile) in enumerate(fitted):
        x0 = gap + (i % columns) * (cell_w + gap)
        y0 = gap + (i // columns) * (cell_h + gap)
        sheet.paste(tile, (x0 + (tile_side - tile.width) // 2, y0 + (image_h - tile.height) // 2))
        text = _fit_text(draw, label, font, tile_side)
        draw.text(
            (x0 + tile_side / 2, y0 + image_h + label_height / 2), text, fill=INK, font=font, anchor="mm"
        )
    return sheet


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _fit_text(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int
) -> str:
    """``text``, shortened with an ellipsis until it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."
