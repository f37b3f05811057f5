"""``fovea faces pad-synth OUT --scenes NAMES``: camera frames for measuring a *passive* check on renders.

The default pad-synth set is made for the geometry check: a bona fide frame is the 480 px portrait turned,
an attack the print on a grey wall. A texture classifier tells those apart by the grey and the frame size
alone, which says nothing. Here every frame of every label is what one door camera (640x480, focal 900 px)
sees, and what differs between labels is only what differs in front of a real door:

- the face is 60-100 px between the eyes in every frame (:data:`IOD_PX`), bona fide or not: a print or a
  screen is sized for it from its distance;
- bona fide: the person in their own surroundings (the portrait widened to 12 inter-ocular distances by
  mirroring its edges, turned or held nearly still by ``head_view``, the camera's window on it);
- attacks: a print (:func:`~fovea.faces.tools.core.pad_render.print_look`: ink and paper bound the range,
  duller colours, paper grain) or a screen (a :class:`ScreenModel`: bezel, gamma, moire, glare, refresh
  bands) held in front of a room (a scene photo that holds no face, :data:`SCENES`, cut at random);
- every frame the same camera: lens blur (``camera_look``), sensor noise, JPEG 90.

Held-out material is made by choosing other ``--photos``, ``--scenes``, ``--screens`` and ``--seed``. What a
classifier learns here is what these renderers put in (paper and screen looks, edges, bezels) and the
remaining difference between a portrait's own room and the scene photos: a check of the training loop,
not of what works on real attacks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fovea.faces.tools.core.pad_render import (
    ScreenModel,
    bent_photo_view,
    camera_look,
    head_view,
    photo_view,
    print_look,
    scene_background,
    screen_replay,
    window,
)
from fovea.faces.tools.core.pad_synth import FOCAL_PX, rotation
from fovea.faces.tools.inprocess import InProcessFaces

SIZE = (640, 480)  # the door camera's frame (width, height)
IOD_PX = (60.0, 100.0)  # the face's inter-ocular distance in every frame, drawn per burst
BASE_IOD = 80.0  # of the widened portrait a bona fide frame is cut from
PORTRAIT_IODS = 6.0  # a print (and a still on a screen) is the portrait 6 IOD wide
WIDE = (960, 720)  # the widened portrait: 12 x 9 IOD
SCREENS = {
    # A phone held close: a wide bezel, coarse moire, strong glare, visible refresh bands.
    "phone": ScreenModel(bezel=0.06, period=(3.0, 5.0), gamma=(0.70, 0.85), glare=0.25, bands=0.08),
    # A monitor or tablet: a thin bezel, finer moire, milder gamma, glare and bands.
    "monitor": ScreenModel(bezel=0.025, period=(5.0, 8.0), gamma=(0.80, 0.95), glare=0.15, bands=0.04),
}
# Rooms behind a print or a screen: sample photos that hold no face (scikit-learn's two, scikit-image's,
# Debian darknet's).
SCENES = ("china", "flower", "coffee", "chelsea", "rocket", "dog", "horses", "giraffe")
PORTRAITS_EXTRA = ("astronaut",)  # scikit-image's (Eileen Collins, NASA, public domain)


PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def split_scale(name: str) -> tuple[str, str]:
    """``NAME@SCALE`` -> (NAME, SCALE); a name without one (or whose last ``@`` is inside a path) -> (name,
    "")."""
    base, at, scale = name.rpartition("@")
    return (base, scale) if at and "/" not in scale else (name, "")


def is_photo_file(name: str) -> bool:
    """Whether a portrait (without its ``@SCALE``) is a file (a path with a folder, or a photo's suffix)
    rather than a sample's name."""
    return "/" in name or Path(name).suffix.lower() in PHOTO_SUFFIXES


def photo_label(name: str) -> str:
    """What a portrait's sequences are named after: a sample's name as given, a file's stem (letters,
    digits, ``_.-`` kept) with its ``@SCALE``."""
    base, scale = split_scale(name)
    if is_photo_file(base):
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(base).stem) or "photo"
    return f"{base}@{scale}" if scale else base


def load_photo(name: str) -> Image.Image:
    """A portrait: a sample of ``fovea.convert.samples``, ``astronaut`` (needs scikit-image), or a photo
    file (a path with a folder or a .jpg / .jpeg / .png / .webp suffix: your own people, e.g. frames of
    your stage video, upright after its EXIF orientation); ``NAME@SCALE`` is that portrait resized by SCALE
    in (0, 1] (Lanczos): the same person in a photo of lower resolution (``obama2@0.338``: obama2's eyes
    41.5 px apart, as astronaut's are)."""
    base, scale_text = split_scale(name)
    if scale_text:
        try:
            scale = float(scale_text)
        except ValueError:
            scale = -1.0
        if not 0.0 < scale <= 1.0:
            raise ValueError(f"portrait {name!r}: the scale after @ must be a number in (0, 1]")
        photo = load_photo(base)
        size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
        return photo.resize(size, Image.Resampling.LANCZOS)
    if is_photo_file(name):
        try:
            with Image.open(name) as opened:
                return (ImageOps.exif_transpose(opened) or opened).convert("RGB")
        except (OSError, SyntaxError, ValueError) as exc:
            raise ValueError(f"portrait {name!r}: not a readable photo ({exc})") from exc
    if name == "astronaut":
        try:
            from skimage import data
        except ImportError as exc:
            raise ValueError("the astronaut portrait needs scikit-image (pip install 'fovea[dev]')") from exc
        return Image.fromarray(data.astronaut())
    from fovea.convert.samples import sample

    return Image.open(sample(name)).convert("RGB")


def scene_image(name: str) -> np.ndarray:
    """A room: (H, W, 3) uint8 of one of :data:`SCENES`; ``ValueError`` naming them."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return np.asarray(load_sample_image(f"{name}.jpg"), np.uint8)
    if name in ("coffee", "chelsea", "rocket"):
        try:
            from skimage import data
        except ImportError as exc:
            raise ValueError(f"scene {name!r} needs scikit-image (pip install 'fovea[dev]')") from exc
        return np.asarray(getattr(data, name)(), np.uint8)
    if name in ("dog", "horses", "giraffe"):
        from fovea.convert.samples import sample

        return np.asarray(Image.open(sample(name)).convert("RGB"))
    raise ValueError(f"unknown scene {name!r}; known: {', '.join(SCENES)}")


@dataclass(frozen=True)
class Portrait:
    """A portrait ready to render: ``tight`` (480x480, 6 IOD wide: what is printed) and ``wide`` (960x720,
    12 IOD wide, mirrored past the photo's edges: the person's surroundings), both at :data:`BASE_IOD`, and
    the face's landmarks in each."""

    tight: np.ndarray
    tight_landmarks: np.ndarray
    wide: np.ndarray
    wide_landmarks: np.ndarray


def _cut(photo: np.ndarray, centre: np.ndarray, scale: float, size: tuple[int, int]) -> np.ndarray:
    """``size`` px of ``photo`` magnified ``scale`` round ``centre``, the photo mirrored past its edges."""
    h, w = photo.shape[:2]
    pad_x, pad_y = int(size[0] / scale) + 2, int(size[1] / scale) + 2
    padded = np.pad(photo, ((pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode="symmetric")
    return window(padded, (float(centre[0]) + pad_x, float(centre[1]) + pad_y), scale, size)


def prepare(faces: InProcessFaces, photo: Image.Image) -> Portrait:
    """The :class:`Portrait` of ``photo``'s largest face (``ValueError`` when the detector finds none)."""
    pixels = np.asarray(photo.convert("RGB"))
    found = faces.detect(pixels)
    if len(found.faces) == 0:
        raise ValueError("no face in the portrait")
    lm = found.faces.landmarks[0]
    scale = BASE_IOD / float(np.linalg.norm(lm[1] - lm[0]))
    centre = lm.mean(0)
    out = []
    for size, up in (((480, 480), 0.3 * BASE_IOD / scale), (WIDE, 0.0)):  # the print: face a little low
        crop = _cut(pixels, centre - [0, up], scale, size)
        again = faces.detect(crop)
        if len(again.faces) == 0:
            raise ValueError("no face in the cut portrait")
        out += [crop, again.faces.landmarks[0]]
    return Portrait(*out)


def head_frames(
    portrait: Portrait, rng: np.random.Generator, angles: Sequence[tuple[float, float]]
) -> tuple[list[np.ndarray], float]:
    """A bona fide burst: per (yaw, pitch) the person turned, seen through the camera's window (face
    :data:`IOD_PX` between the eyes, placed near the frame's centre), before noise and JPEG; and that
    inter-ocular distance."""
    scale = rng.uniform(*IOD_PX) / BASE_IOD
    lm = portrait.wide_landmarks
    centre = lm.mean(0) + rng.uniform(-30, 30, 2) / scale + [0, 0.4 * BASE_IOD]
    frames = [
        camera_look(window(head_view(portrait.wide, lm, yaw, pitch), tuple(centre), scale, SIZE), rng)
        for yaw, pitch in angles
    ]
    return frames, scale * BASE_IOD


def _room(rooms: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    if not rooms:
        raise ValueError("no scene to hold the attack in front of")
    return scene_background(rooms[int(rng.integers(len(rooms)))], rng, SIZE)


def replay_frames(
    shown: Sequence[np.ndarray],
    shown_iod: float,
    rng: np.random.Generator,
    screen: ScreenModel,
    rooms: Sequence[np.ndarray],
) -> list[np.ndarray]:
    """A replay attack: the frames ``shown`` (a bona fide burst whose face is ``shown_iod`` px between the
    eyes) on ``screen`` held in front of one of ``rooms`` at 250-350 mm, sized so that the face is
    :data:`IOD_PX` apart, held a little unsteadily."""
    background = _room(rooms, rng)
    seed = int(rng.integers(2**32))
    pose0 = rotation(rng.uniform(-10, 10), rng.uniform(-10, 10), rng.uniform(-5, 5))
    d = rng.uniform(250, 350)
    iod = rng.uniform(*IOD_PX)
    out = []
    for i, frame in enumerate(shown):
        face = screen_replay(frame, np.random.default_rng(seed), i / len(shown), screen)
        width_mm = iod * d * face.shape[1] / (shown_iod * FOCAL_PX)
        pose = rotation(rng.normal(0, 1), rng.normal(0, 1), 0) @ pose0
        out.append(camera_look(photo_view(Image.fromarray(face), pose, d, SIZE, width_mm, background), rng))
    return out


def attack_frames(
    portrait: Portrait,
    rng: np.random.Generator,
    species: str,
    poses: Sequence[tuple[np.ndarray, float]],
    screen: ScreenModel,
    rooms: Sequence[np.ndarray],
    bend: tuple[float, str] | None = None,
) -> list[np.ndarray]:
    """A print (``print_*``) or a still on a screen (``screen_*``) of the portrait held at ``poses`` ((pose,
    distance mm) per frame) in front of one of ``rooms``, sized so that the face is :data:`IOD_PX` apart at the first
    distance; ``bend``: (radius mm, axis) of a bent print."""
    background = _room(rooms, rng)
    iod = rng.uniform(*IOD_PX)
    seed = int(rng.integers(2**32))
    if species.startswith("screen"):
        faces = [
            screen_replay(portrait.tight, np.random.default_rng(seed), i / len(poses), screen)
            for i in range(len(poses))
        ]
    else:
        faces = [print_look(portrait.tight, rng)] * len(poses)
    width_px = faces[0].shape[1]
    width_mm = iod * poses[0][1] * width_px / (BASE_IOD * FOCAL_PX)
    out = []
    for face, (pose, d) in zip(faces, poses, strict=True):
        picture = Image.fromarray(face)
        if bend is None:
            shot = photo_view(picture, pose, d, SIZE, width_mm, background)
        else:
            shot = bent_photo_view(
                picture,
                pose,
                d,
                SIZE,
                width_mm,
                radius_mm=bend[0] * width_mm,
                axis=bend[1],
                background=background,
            )
        out.append(camera_look(shot, rng))
    return out


__all__ = [
    "IOD_PX",
    "PORTRAITS_EXTRA",
    "SCENES",
    "SCREENS",
    "SIZE",
    "Portrait",
    "attack_frames",
    "head_frames",
    "is_photo_file",
    "load_photo",
    "photo_label",
    "prepare",
    "replay_frames",
    "scene_image",
]
