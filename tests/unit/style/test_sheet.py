"""The contact sheet's layout: cells, labels, sizes."""

from __future__ import annotations

import numpy as np
import pytest

from fovea.style.core.sheet import contact_sheet


def test_grid_size_and_tiles_in_place() -> None:
    tiles = [(f"style{i}", np.full((50, 100, 3), (10 * i, 0, 0), np.uint8)) for i in range(7)]
    sheet = contact_sheet(tiles, columns=3, tile_side=64, label_height=20, gap=4)
    # 3 columns of 64 + 4 gaps = 4 + 3 * 68 = 208 wide; 3 rows of 84 (64 + 20 label) = 4 + 3 * 88 = 268 high
    assert sheet.size == (208, 268)
    pixels = np.asarray(sheet)
    # tile 4 (row 1, column 1): x from 4 + 68 = 72, y from 4 + 88 = 92; the 100x50 image fits as 64x32,
    # centred: rows 92 + 16 .. 92 + 48
    assert tuple(pixels[92 + 30, 72 + 30]) == (40, 0, 0)
    assert tuple(pixels[92 + 5, 72 + 30]) == (255, 255, 255)  # above the letterboxed tile: background
    label_band = pixels[92 + 64 : 92 + 84, 72 : 72 + 64]
    assert (label_band < 128).any()  # the label is drawn


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
