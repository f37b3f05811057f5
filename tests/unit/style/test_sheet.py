"""The contact sheet's layout: cells, labels, sizes."""

from __future__ import annotations

import numpy as np
import pytest

from fovea.style.core.sheet import contact_sheet


def test_grid_size_and_tiles_in_place() -> None:
    tiles = [(f"style{i}", np.full((50, 100, 3), (10 * i, 0, 0), np.uint8)) for i in range(6)]
    tiles.append(("square", np.full((40, 40, 3), (0, 200, 0), np.uint8)))
    sheet = contact_sheet(tiles, columns=3, tile_side=64, label_height=20, gap=4)
    # the 100x50 images fit as 64x32, the square stays 40x40: cells are 64 wide and 40 + 20 high.
    # 3 columns: 4 + 3 * (64 + 4) = 208 wide; 3 rows: 4 + 3 * (60 + 4) = 196 high
    assert sheet.size == (208, 196)
    pixels = np.asarray(sheet)
    # tile 4 (row 1, column 1): x from 4 + 68 = 72, y from 4 + 64 = 68; the 64x32 image is centred in the
    # 40 px image band: rows 68 + 4 .. 68 + 36
    assert tuple(pixels[68 + 20, 72 + 30]) == (40, 0, 0)
    assert tuple(pixels[68 + 2, 72 + 30]) == (255, 255, 255)  # above it: background
    assert tuple(pixels[4 + 2 * 64 + 20, 4 + 32]) == (0, 200, 0)  # the square, row 2, column 0
    label_band = pixels[68 + 40 : 68 + 60, 72 : 72 + 64]
    assert (label_band < 128).any()  # the label is drawn right under the image band


def test_long_labels_are_shortened_and_few_tiles_use_few_columns() -> None:
    sheet = contact_sheet(
        [("a-very-long-style-name-" * 5, np.zeros((32, 32, 3), np.uint8))], columns=6, tile_side=32
    )
    assert sheet.size == (6 + 32 + 6, 6 + 32 + 22 + 6)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        contact_sheet([])
    with pytest.raises(ValueError, match="uint8"):
        contact_sheet([("x", np.zeros((8, 8), np.uint8))])
