"""The image-level renderers of presentation-attack material (``pad_render``) and the door-camera sets made
with them (``pad_scenes``, ``pad-synth --scenes``): sizes, ranges, and that every label's faces are the same
size (a passive check must not tell the labels apart by the frame)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fovea.faces.tools.core.pad_render import (
    ScreenModel,
    print_look,
    scene_background,
    screen_look,
    screen_replay,
    window,
)
from fovea.faces.tools.inprocess import InProcessFaces
from fovea.faces.tools.pad_eval import find_sequences, write_synthetic_dir
from fovea.faces.tools.pad_scenes import IOD_PX, SCENES, SIZE, load_photo, scene_image


def _ramp() -> np.ndarray:
    x = np.linspace(0, 255, 64)
    return np.stack(np.meshgrid(x, x[::-1]) + [np.full((64, 64), 128.0)], -1).astype(np.uint8)


def test_a_print_bounds_the_range_and_dulls_the_colours() -> None:
    image = _ramp()
    out = print_look(image, np.random.default_rng(0))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert out.min() >= 18 - 6 and out.max() <= 240 + 6  # ink and paper (grain of 1.5 levels: 4 sigma)
    spread = lambda a: float((a.astype(float) - a.mean(axis=2, keepdims=True)).std())  # noqa: E731
    assert spread(out) < spread(image)
    with pytest.raises(ValueError, match="H, W, 3"):
        print_look(image[..., 0], np.random.default_rng(0))


def test_the_default_screen_is_the_first_one() -> None:
    """``ScreenModel()`` draws the same numbers in the same order as the screens pad-synth made before it
    existed: the default sets (and their geometry figures) are unchanged."""
    image = _ramp()
    a = screen_look(image, np.random.default_rng(5))
    b = screen_look(image, np.random.default_rng(5), ScreenModel())
    np.testing.assert_array_equal(a, b)
    shown = screen_replay(image, np.random.default_rng(5), 0.3)
    assert shown.shape == (64 + 2 * 3, 64 + 2 * 3, 3)  # a bezel of 6% (at least 2 px) each side
    assert (shown[:3] == 12).all()
    thin = screen_replay(image, np.random.default_rng(5), 0.3, ScreenModel(bezel=0.0))
    assert thin.shape == (68, 68, 3)


def test_a_window_magnifies_round_its_centre() -> None:
    image = _ramp()
    same = window(image, (32, 32), 1.0, (64, 64))
    np.testing.assert_allclose(same.astype(float), image.astype(float), atol=1)
    closer = window(image, (32, 32), 2.0, (64, 64))
    np.testing.assert_allclose(closer[32, :, 0].astype(float), image[32, 16:48, 0].repeat(2), atol=3)
    with pytest.raises(ValueError, match="scale"):
        window(image, (32, 32), 0.0, (64, 64))


def test_a_scene_background_is_a_view_of_the_room() -> None:
    room = scene_image("china")
    view = scene_background(room, np.random.default_rng(1), SIZE)
    assert view.shape == (SIZE[1], SIZE[0], 3) and view.dtype == np.uint8 and view.std() > 20
    with pytest.raises(ValueError, match="unknown scene"):
        scene_image("kitchen")
    assert "china" in SCENES


def _iods(faces: InProcessFaces, root: Path) -> dict[str, list[float]]:
    bona, attacks = find_sequences(root)
    out: dict[str, list[float]] = {}
    for seq in [*bona, *(s for v in attacks.values() for s in v)]:
        image = Image.open(seq.frames[0])
        assert image.size == SIZE, seq.name
        found = faces.detect(np.asarray(image.convert("RGB")))
        assert len(found.faces), seq.name
        lm = found.faces.landmarks[0]
        out.setdefault(seq.species, []).append(float(np.linalg.norm(lm[1] - lm[0])))
    return out


def test_scene_sets_show_every_label_at_a_door_cameras_size(
    in_process: InProcessFaces, tmp_path: Path
) -> None:
    """Every frame 640x480 and every face 60-100 px between the eyes (a margin for MTCNN's landmarks and a
    print's tilt), bona fide or attack: the frame's size and the face's are no clue to the label."""
    counts = write_synthetic_dir(
        tmp_path,
        in_process,
        seed=2,
        per_photo=1,
        frames=3,
        photos=("biden",),
        attacks=("print_still", "print_bent", "screen_tilt", "screen_replay"),
        talking=1,
        scenes=("china", "flower"),
        screens=("phone", "monitor"),
    )
    assert counts == {
        "bona_fide": 2,
        "attack/screen_replay": 1,
        "attack/print_still": 1,
        "attack/print_bent": 1,
        "attack/screen_tilt": 1,
    }
    iods = _iods(in_process, tmp_path)
    assert set(iods) == {"bona_fide", "screen_replay", "print_still", "print_bent", "screen_tilt"}
    values = [v for vs in iods.values() for v in vs]
    assert values and min(values) > 0.8 * IOD_PX[0] and max(values) < 1.2 * IOD_PX[1], iods
    with pytest.raises(ValueError, match="screens"):
        write_synthetic_dir(tmp_path / "x", in_process, photos=("biden",), scenes=("china",), screens=("tv",))


def test_a_portrait_at_a_lower_resolution() -> None:
    full, low = load_photo("obama2"), load_photo("obama2@0.338")
    assert low.size == (round(full.width * 0.338), round(full.height * 0.338))
    for bad in ("obama2@0", "obama2@1.5", "obama2@x"):
        with pytest.raises(ValueError, match=r"scale after @"):
            load_photo(bad)
