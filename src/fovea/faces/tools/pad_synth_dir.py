"""``fovea faces pad-synth OUT``: a labelled set for ``fovea faces pad-eval`` made from the repository's own
portraits (see :mod:`fovea.faces.tools.pad_eval`'s docstring for what each species is). Test material for
the commands, not evidence about real heads or real attacks."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from fovea.faces.tools.core.pad_render import (
    ScreenModel,
    bent_photo_view,
    head_view,
    photo_view,
    screen_look,
    screen_replay,
)
from fovea.faces.tools.core.pad_synth import rotation
from fovea.faces.tools.inprocess import InProcessFaces
from fovea.faces.tools.pad_scenes import (
    SCREENS,
    attack_frames,
    head_frames,
    load_photo,
    photo_label,
    prepare,
    replay_frames,
    scene_image,
)

ATTACK = "attack"
BONA_FIDE = "bona_fide"

SYNTH_PHOTOS = ("obama", "obama2", "obama3", "biden")
SYNTH_ATTACKS = (
    "print_still",
    "print_slide",
    "print_tilt",
    "print_zoom",
    "screen_tilt",
    "print_bent",
    "print_bent_h",
)
# Replays (opt-in, not in the default set): a video of a head turn (the bona fide renders) shown on a phone
# held in front of the camera: the nose's parallax is real, only a passive check can catch it.
REPLAY_ATTACKS = ("screen_replay",)
# Bent prints are not planar, outside what the geometry check assumes: the species measured for it apart.
BENT_ATTACKS = {"print_bent": "vertical", "print_bent_h": "horizontal"}
PRINT_WIDTH_MM = 120.0


def _jpeg(frame: np.ndarray, rng: np.random.Generator, noise: float = 2.0) -> bytes:
    noisy = np.clip(frame.astype(np.float64) + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def portrait(faces: InProcessFaces, photo: Image.Image, side: int = 480) -> tuple[np.ndarray, np.ndarray]:
    """The portrait cropped round its largest face (6 IOD wide) at ``side`` px, and that face's landmarks."""
    found = faces.detect(np.asarray(photo))
    if len(found.faces) == 0:
        raise ValueError("no face in the portrait")
    lm = found.faces.landmarks[0]
    iod, centre = float(np.linalg.norm(lm[1] - lm[0])), lm.mean(0)
    half = 3 * iod
    box = (
        int(centre[0] - half),
        int(centre[1] - 1.1 * half),
        int(centre[0] + half),
        int(centre[1] + 0.9 * half),
    )
    crop = np.asarray(photo.crop(box).resize((side, side), Image.Resampling.BILINEAR))
    again = faces.detect(crop)
    if len(again.faces) == 0:
        raise ValueError("no face in the cropped portrait")
    return crop, again.faces.landmarks[0]


def _attack_poses(rng: np.random.Generator, species: str, n: int) -> list[tuple[np.ndarray, float]]:
    """(pose, distance mm) per frame of a print or screen moved as ``species`` says."""
    base = (rng.uniform(-10, 10), rng.uniform(-10, 10), rng.uniform(-5, 5))
    dist = rng.uniform(300, 420)
    t = np.linspace(0, 1, n)
    sign = rng.choice([-1.0, 1.0])
    if species == "print_still":
        return [(rotation(*base), dist)] * n
    if species == "print_slide":
        return [(rotation(base[0], base[1], base[2] + 10 * sign * k), dist * (1 + 0.05 * k)) for k in t]
    if species in BENT_ATTACKS:  # turned about the bend's axis (yaw for a vertical one, pitch otherwise)
        amount = rng.uniform(25, 40) * sign
        yaw_axis = BENT_ATTACKS[species] == "vertical"
        return [
            (
                rotation(base[0] + amount * k * yaw_axis, base[1] + amount * k * (not yaw_axis), base[2]),
                dist,
            )
            for k in t
        ]
    if species in ("print_tilt", "screen_tilt"):
        amount, axis = rng.uniform(25, 40) * sign, rng.uniform(0, 2 * np.pi)
        return [
            (
                rotation(base[0] + amount * k * np.cos(axis), base[1] + amount * k * np.sin(axis), base[2]),
                dist,
            )
            for k in t
        ]
    if species == "print_zoom":
        zoom = rng.uniform(0.65, 0.85) if sign > 0 else rng.uniform(1.2, 1.5)
        return [(rotation(*base), dist * (1 + (zoom - 1) * k)) for k in t]
    raise ValueError(f"unknown attack species {species!r}; known: {', '.join(SYNTH_ATTACKS)}")


def photo_tags(photos: Sequence[str]) -> list[str]:
    """Each portrait's name in its sequences' names (``pad_scenes.photo_label``: a file's stem), made unique
    with ``-2``, ``-3`` ... where two files share a stem."""
    tags: list[str] = []
    for name in photos:
        tag, k = photo_label(name), 2
        while tag in tags:
            tag, k = f"{photo_label(name)}-{k}", k + 1
        tags.append(tag)
    return tags


def write_synthetic_dir(
    out: Path,
    faces: InProcessFaces,
    *,
    seed: int = 7,
    per_photo: int = 2,
    frames: int = 6,
    photos: Sequence[str] = SYNTH_PHOTOS,
    attacks: Sequence[str] = SYNTH_ATTACKS,
    talking: int = 0,
    scenes: Sequence[str] = (),
    screens: Sequence[str] = ("phone",),
) -> dict[str, int]:
    """Write a labelled DIR under ``out`` (see the module's docstring): per portrait ``per_photo``
    bona fide sequences and ``per_photo`` sequences of each attack species in ``attacks`` (of
    ``SYNTH_ATTACKS`` and ``REPLAY_ATTACKS``: ``screen_replay`` is each bona fide head turn replayed on a
    phone, bezel, moire, glare and rolling refresh bands), and ``talking`` near-still bona fide heads per
    portrait (a few degrees of wobble: what people talking to a door do), ``frames`` frames each. Returns
    the sequence count per label. With ``scenes`` every frame is a door camera's instead
    (:mod:`fovea.faces.tools.pad_scenes`: the same face sizes for every label, attacks in front of those
    rooms, screens drawn from ``screens``), for measuring a passive check."""
    unknown = [a for a in attacks if a not in SYNTH_ATTACKS and a not in REPLAY_ATTACKS]
    if unknown or not attacks:
        raise ValueError(
            f"attack species {', '.join(unknown) or '(none)'}: choose from "
            f"{', '.join(SYNTH_ATTACKS + REPLAY_ATTACKS)}"
        )

    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}

    def write(label: str, name: str, images: list[bytes]) -> None:
        folder = out / label / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(images):
            (folder / f"{i:03d}.jpg").write_bytes(data)
        counts[label] = counts.get(label, 0) + 1

    if scenes:
        _write_scenes(write, faces, rng, per_photo, frames, photos, attacks, talking, scenes, screens)
        return counts

    for photo_name, tag in zip(photos, photo_tags(photos), strict=True):
        photo = load_photo(photo_name)
        crop, landmarks = portrait(faces, photo)
        print_photo = Image.fromarray(crop)
        for k in range(per_photo):
            turn = rng.uniform(20, 35) * rng.choice([-1, 1])
            start = -turn / 2 + rng.uniform(-3, 3)
            yaw_turn = rng.uniform() < 2 / 3
            angles = start + turn * np.linspace(0, 1, frames)
            views = [
                head_view(crop, landmarks, a if yaw_turn else 0.0, 0.0 if yaw_turn else a) for a in angles
            ]
            write(BONA_FIDE, f"{tag}-{k}", [_jpeg(v, rng) for v in views])
            if "screen_replay" in attacks:  # that very head turn, replayed on a phone held still or tilted
                pose0 = rotation(rng.uniform(-10, 10), rng.uniform(-10, 10), rng.uniform(-5, 5))
                d = rng.uniform(250, 350)
                shown = [
                    photo_view(
                        Image.fromarray(screen_replay(v, rng, i / frames)),
                        rotation(rng.normal(0, 1), rng.normal(0, 1), 0) @ pose0,
                        d,
                        (640, 480),
                        PRINT_WIDTH_MM * 0.6,
                    )
                    for i, v in enumerate(views)
                ]
                write(f"{ATTACK}/screen_replay", f"{tag}-{k}", [_jpeg(v, rng) for v in shown])
            for _ in range(talking if k == 0 else 0):  # near-still heads: a few degrees, as people talk
                n = len([p for p in (out / BONA_FIDE).glob(f"{tag}-talk-*")])
                wobble = rng.normal(0, 1.5, (frames, 2)).cumsum(0) * 0.5
                still = [head_view(crop, landmarks, float(y), float(p)) for y, p in wobble]
                write(BONA_FIDE, f"{tag}-talk-{n}", [_jpeg(v, rng) for v in still])
            for species in attacks:
                if species in REPLAY_ATTACKS:
                    continue
                poses = _attack_poses(rng, species, frames)
                if species in BENT_ATTACKS:  # radius 0.5-2 print widths, either way round
                    radius = rng.uniform(0.5, 2) * PRINT_WIDTH_MM * rng.choice([-1.0, 1.0])
                    shots = [
                        bent_photo_view(
                            print_photo,
                            pose,
                            d,
                            (640, 480),
                            PRINT_WIDTH_MM,
                            radius_mm=radius,
                            axis=BENT_ATTACKS[species],
                        )
                        for pose, d in poses
                    ]
                else:
                    shots = [
                        photo_view(print_photo, pose, d, (640, 480), PRINT_WIDTH_MM) for pose, d in poses
                    ]
                if species.startswith("screen"):
                    shots = [screen_look(s, rng) for s in shots]
                write(f"{ATTACK}/{species}", f"{tag}-{k}", [_jpeg(s, rng) for s in shots])
    return counts


def _turn_angles(rng: np.random.Generator, frames: int) -> list[tuple[float, float]]:
    """(yaw, pitch) per frame of a head turn: 20-35 degrees, yaw two times in three, else pitch."""
    turn = rng.uniform(20, 35) * rng.choice([-1, 1])
    angles = -turn / 2 + rng.uniform(-3, 3) + turn * np.linspace(0, 1, frames)
    yaw = rng.uniform() < 2 / 3
    return [(float(a), 0.0) if yaw else (0.0, float(a)) for a in angles]


def _write_scenes(
    write: Callable[[str, str, list[bytes]], None],
    faces: InProcessFaces,
    rng: np.random.Generator,
    per_photo: int,
    frames: int,
    photos: Sequence[str],
    attacks: Sequence[str],
    talking: int,
    scenes: Sequence[str],
    screens: Sequence[str],
) -> None:
    """:func:`write_synthetic_dir` with ``scenes``: door-camera frames (:mod:`fovea.faces.tools.pad_scenes`)."""
    unknown = [s for s in screens if s not in SCREENS]
    if unknown or not screens:
        raise ValueError(f"screens {', '.join(unknown) or '(none)'}: choose from {', '.join(SCREENS)}")
    rooms = [scene_image(name) for name in scenes]

    def screen() -> ScreenModel:
        return SCREENS[screens[int(rng.integers(len(screens)))]]

    for photo_name, tag in zip(photos, photo_tags(photos), strict=True):
        model = prepare(faces, load_photo(photo_name))
        for k in range(per_photo):
            views, iod = head_frames(model, rng, _turn_angles(rng, frames))
            write(BONA_FIDE, f"{tag}-{k}", [_jpeg(v, rng) for v in views])
            if "screen_replay" in attacks:
                shown = replay_frames(views, iod, rng, screen(), rooms)
                write(f"{ATTACK}/screen_replay", f"{tag}-{k}", [_jpeg(v, rng) for v in shown])
            for species in attacks:
                if species in REPLAY_ATTACKS:
                    continue
                poses = _attack_poses(rng, species, frames)
                bend = None
                if species in BENT_ATTACKS:  # radius 0.5-2 print widths, either way round
                    bend = (rng.uniform(0.5, 2) * rng.choice([-1.0, 1.0]), BENT_ATTACKS[species])
                shots = attack_frames(model, rng, species, poses, screen(), rooms, bend)
                write(f"{ATTACK}/{species}", f"{tag}-{k}", [_jpeg(v, rng) for v in shots])
        for n in range(talking):  # near-still heads: a few degrees, as people talk
            wobble = rng.normal(0, 1.5, (frames, 2)).cumsum(0) * 0.5
            views, _ = head_frames(model, rng, [(float(y), float(p)) for y, p in wobble])
            write(BONA_FIDE, f"{tag}-talk-{n}", [_jpeg(v, rng) for v in views])


__all__ = [
    "REPLAY_ATTACKS",
    "BENT_ATTACKS",
    "SYNTH_ATTACKS",
    "SYNTH_PHOTOS",
    "photo_tags",
    "portrait",
    "write_synthetic_dir",
]
