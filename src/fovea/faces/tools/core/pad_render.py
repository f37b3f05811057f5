"""Image-level renderings for presentation-attack material (``fovea faces pad-synth``): a print or a screen
held in front of the door camera (:func:`photo_view`, :func:`bent_photo_view`), a head turned by a 2.5D model
(:func:`head_view`), what a screen and a print do to a picture (:func:`screen_look`, :func:`screen_replay`,
:func:`print_look`), and the camera frame round them (:func:`camera_look`, :func:`window`,
:func:`scene_background`). The geometry of the landmark bursts (the pinhole camera, poses) is
:mod:`fovea.faces.tools.core.pad_synth`'s. Test material, not evidence about real heads or real attacks:
what a passive check learns from these renders is what these functions put in them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from fovea.faces.access.core.pad import homography
from fovea.faces.tools.core.pad_synth import FOCAL_PX, project


def _background(background: np.ndarray | None, size: tuple[int, int]) -> Image.Image:
    """The frame a print or screen is pasted on: grey, or ``background`` ((size[1], size[0], 3) uint8)."""
    if background is None:
        return Image.new("RGB", size, (128, 128, 128))
    b = np.asarray(background, np.uint8)
    if b.shape != (size[1], size[0], 3):
        raise ValueError(f"background must be ({size[1]}, {size[0]}, 3), got {b.shape}")
    return Image.fromarray(b)


def photo_view(
    photo: Image.Image,
    pose: np.ndarray,
    distance_mm: float,
    size: tuple[int, int],
    width_mm: float = 150.0,
    background: np.ndarray | None = None,
) -> np.ndarray:
    """A frame (size[1], size[0], 3) uint8 RGB of ``photo`` printed ``width_mm`` wide, held at ``pose`` (3x3
    rotation, see :func:`~fovea.faces.tools.core.pad_synth.rotation`) ``distance_mm`` in front of the pinhole camera (centred in the frame), on
    a grey background (or ``background``, a (size[1], size[0], 3) uint8 frame: the room behind it): the
    image-level attack (a perspective warp of the real photo)."""
    w, h = photo.size
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    plane = np.c_[(corners - [w / 2, h / 2]) * (width_mm / w), np.zeros(4)]
    seen = project(plane @ np.asarray(pose).T + [0, 0, distance_mm], centre=(size[0] / 2, size[1] / 2))
    to_photo = homography(seen, corners)  # PIL asks, per output pixel, where in the photo to read
    coeffs = tuple(float(c) for c in to_photo.reshape(-1)[:8])
    frame = _background(background, size)
    warped = photo.transform(size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
    mask = Image.new("L", photo.size, 255).transform(size, Image.Transform.PERSPECTIVE, coeffs)
    frame.paste(warped, (0, 0), mask)
    return np.asarray(frame)


def bent_photo_view(
    photo: Image.Image,
    pose: np.ndarray,
    distance_mm: float,
    size: tuple[int, int],
    width_mm: float = 150.0,
    *,
    radius_mm: float = float("inf"),
    axis: str = "vertical",
    background: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`photo_view` with the print bent like paper: a cylinder of radius ``radius_mm`` (signed as
    :func:`bend`'s curvature; ``inf`` = flat) about the print's ``vertical`` or ``horizontal`` centre line,
    then held at ``pose`` ``distance_mm`` from the camera. Per output pixel its ray is intersected with the
    cylinder (a quadratic; the root on the paper's side of the axis, nearest the camera) and the print is
    read there (bilinear), so the warp is exact, not a mesh of homographies. ``background``: as
    :func:`photo_view`'s."""
    from scipy.ndimage import map_coordinates

    if axis not in ("vertical", "horizontal"):
        raise ValueError(f"unknown bend axis {axis!r}; known: vertical, horizontal")
    img = np.asarray(photo, np.float32)
    h, w = img.shape[:2]
    k = 0.0 if np.isinf(radius_mm) else 1.0 / radius_mm
    qy, qx = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float64) + 0.5  # pixel centres, as PIL's
    rays = np.stack([(qx - size[0] / 2) / FOCAL_PX, (qy - size[1] / 2) / FOCAL_PX, np.ones_like(qx)], -1)
    r = np.asarray(pose, np.float64)
    a = rays @ r  # ray directions in the paper's frame (R^T d, row-wise)
    b = -r.T @ np.array([0.0, 0.0, distance_mm])  # the camera centre in the paper's frame
    i = 0 if axis == "vertical" else 1
    # The paper's point at ray parameter t: p = t a + b; on the cylinder k (p_i^2 + p_z^2) + 2 p_z = 0.
    qa = k * (a[..., i] ** 2 + a[..., 2] ** 2)
    qb = 2 * k * (a[..., i] * b[i] + a[..., 2] * b[2]) + 2 * a[..., 2]
    qc = k * (b[i] ** 2 + b[2] ** 2) + 2 * b[2]
    disc = qb * qb - 4 * qa * qc
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(np.where(disc >= 0, disc, np.nan))
        q = -(qb + np.where(qb >= 0, 1.0, -1.0) * root) / 2
        roots = np.stack([q / qa, qc / q])  # both roots, stable also when qa -> 0 (flat)
        pz = roots * a[..., 2] + b[2]
        valid = np.isfinite(roots) & (roots > 0) & (1 + k * pz > 0)  # the paper's half of the cylinder
        t = np.where(valid, roots, np.inf).min(0)
        p = t[..., None] * a + b
        across = p[..., i] if k == 0 else np.arctan2(k * p[..., i], 1 + k * p[..., 2]) / k
    u, v = (across, p[..., 1]) if i == 0 else (p[..., 0], across)
    sx, sy = u * (w / width_mm) + w / 2 - 0.5, v * (w / width_mm) + h / 2 - 0.5  # -> pixel indices
    inside = np.isfinite(t) & (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)
    sx, sy = np.where(inside, sx, 0), np.where(inside, sy, 0)
    out = np.stack([map_coordinates(img[..., c], [sy, sx], order=1) for c in range(3)], -1)
    frame = np.where(inside[..., None], out, np.asarray(_background(background, size), np.float64))
    return np.asarray(np.clip(frame, 0, 255).astype(np.uint8))


def head_view(
    image: np.ndarray,
    landmarks: np.ndarray,
    yaw: float,
    pitch: float,
    *,
    nose_height: float = 0.35,
    depth: float = 0.9,
) -> np.ndarray:
    """A frame (H,W,3 uint8) of the face in ``image`` turned by ``yaw`` and ``pitch`` degrees (as
    :func:`~fovea.faces.tools.core.pad_synth.rotation`: positive yaw to the person's right, positive pitch forward), rendered from a 2.5D
    model of the head: the photo's pixels lifted onto a half-ellipsoid (1.0 x 1.4 inter-ocular distances
    across, ``depth`` IOD deep) round the face found at ``landmarks`` (5,2), with the nose ``nose_height``
    IOD further out (a Gaussian bump at the nose landmark), turned, and projected orthographically
    (inverse warp by fixed-point iteration; no occlusion, so keep turns within about 20 degrees each way).
    Synthetic bona fide material: the nose moves across the eye-mouth plane as a real head's does; the
    texture is the photo's, so a passive texture model sees a photo."""
    from scipy.ndimage import map_coordinates

    img = np.asarray(image, np.float32)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got {img.shape}")
    lm = np.asarray(landmarks, np.float64).reshape(5, 2)
    iod = float(np.linalg.norm(lm[1] - lm[0]))
    centre = lm[[0, 1, 3, 4]].mean(0)
    a, b, top = 1.0 * iod, 1.4 * iod, depth * iod
    ty, tp = np.radians(yaw), np.radians(pitch)

    def forward(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u, v = (x - centre[0]) / a, (y - centre[1]) / b
        nose = np.exp(-((x - lm[2, 0]) ** 2 + (y - lm[2, 1]) ** 2) / (2 * (0.2 * iod) ** 2))
        z = top * np.sqrt(np.clip(1 - u * u - v * v, 0, None)) + nose_height * iod * nose - top
        x2 = centre[0] + (x - centre[0]) * np.cos(ty) - z * np.sin(ty)
        z2 = (x - centre[0]) * np.sin(ty) + z * np.cos(ty)
        return x2, centre[1] + (y - centre[1]) * np.cos(tp) + z2 * np.sin(tp)

    qy, qx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]].astype(np.float64)
    sx, sy = qx.copy(), qy.copy()
    for _ in range(4):  # the source pixel s that lands on q: s = q - (forward(s) - s)
        fx, fy = forward(sx, sy)
        sx, sy = sx - (fx - qx), sy - (fy - qy)
    out = np.stack([map_coordinates(img[..., c], [sy, sx], order=1, mode="nearest") for c in range(3)], -1)
    return np.asarray(np.clip(out, 0, 255).astype(np.uint8))


@dataclass(frozen=True)
class ScreenModel:
    """What a phone or monitor does to the picture it shows, as filmed (the defaults: the first screens of
    ``pad-synth``). ``bezel``: the black border's width as a share of the picture's on each side; ``period``:
    the moire's period range in the picture's pixels; ``gamma``: the display gamma's range; ``glare``: the
    peak of a glare gradient; ``bands``: the rolling-shutter refresh bands' amplitude; ``moire``: its."""

    bezel: float = 0.06
    period: tuple[float, float] = (3.0, 7.0)
    gamma: tuple[float, float] = (0.7, 0.9)
    glare: float = 0.25
    bands: float = 0.08
    moire: float = 0.06


def screen_look(frame: np.ndarray, rng: np.random.Generator, screen: ScreenModel | None = None) -> np.ndarray:
    """``frame`` as if shown on a phone or monitor and filmed: display gamma, a moire pattern (the pixel
    grid beating with the camera's), a glare gradient (``screen``'s ranges)."""
    m = screen or ScreenModel()
    f = np.asarray(frame, np.float64) / 255.0
    h, w = f.shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    angle, period = rng.uniform(0, np.pi), rng.uniform(*m.period)
    moire = m.moire * np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period)
    glare = m.glare * np.clip(
        1 - np.hypot(x - rng.uniform(0, w), y - rng.uniform(0, h)) / (0.6 * max(h, w)), 0, 1
    )
    out = f ** rng.uniform(*m.gamma) + moire[..., None] + glare[..., None]
    return np.asarray(np.clip(out * 255, 0, 255).astype(np.uint8))


def screen_replay(
    frame: np.ndarray, rng: np.random.Generator, phase: float, screen: ScreenModel | None = None
) -> np.ndarray:
    """``frame`` (a rendered bona fide frame, H,W,3 uint8) as a phone or monitor replaying it: the picture
    inside a black bezel (``screen.bezel`` of the width on each side), the screen's look (:func:`screen_look`:
    gamma, moire, glare) and its refresh beating with the camera's rolling shutter: horizontal bands of
    +-``screen.bands`` brightness whose position moves with ``phase`` (0-1) from frame to frame. Returns the
    screen's face (to be held in front of the camera with :func:`photo_view`)."""
    m = screen or ScreenModel()
    f = np.asarray(frame, np.float64)
    h, w = f.shape[:2]
    rows = np.arange(h)[:, None, None]
    period = h / 3.0
    bands = 1 + m.bands * np.sin(2 * np.pi * (rows / period + phase))
    look = screen_look(np.clip(f * bands, 0, 255).astype(np.uint8), rng, m)
    pad = max(2, int(m.bezel * w))
    out = np.full((h + 2 * pad, w + 2 * pad, 3), 12, np.uint8)
    out[pad : pad + h, pad : pad + w] = look
    return out


def print_look(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` (H,W,3 uint8) as printed on paper and lit by the room: the ink's black and the paper's white
    bound the range (blacks 18-40, whites 205-240), colours a little duller (saturation x 0.75-0.92) and a
    faint paper grain (1.5 levels at about 2 px). A door camera does not resolve a print's halftone (a 150 lpi
    screen is under half a pixel at 350 mm), so none is drawn."""
    f = np.asarray(image, np.float64) / 255.0
    if f.ndim != 3 or f.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got {f.shape}")
    grey = f.mean(axis=2, keepdims=True)
    f = grey + (f - grey) * rng.uniform(0.75, 0.92)
    black, white = rng.uniform(18, 40), rng.uniform(205, 240)
    grain = rng.normal(0, 1.5, (f.shape[0] // 2 + 1, f.shape[1] // 2 + 1)).repeat(2, 0).repeat(2, 1)
    out = black + f * (white - black) + grain[: f.shape[0], : f.shape[1], None]
    return np.asarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))


def camera_look(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The door camera's optics on a rendered frame (H,W,3 uint8): a Gaussian blur of radius 0.3-0.8 px (the
    lens and the sensor's anti-aliasing). Sensor noise and JPEG are added when the frame is written."""
    picture = Image.fromarray(np.asarray(frame, np.uint8))
    return np.asarray(picture.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 0.8)))))


def window(image: np.ndarray, centre: tuple[float, float], scale: float, size: tuple[int, int]) -> np.ndarray:
    """The (size[1], size[0], 3) uint8 frame that shows ``image`` (H,W,3 uint8) magnified ``scale`` times
    round ``centre`` (x, y in its pixels), bilinear; outside ``image`` is black. A camera brought closer
    (``scale`` > 1) or moved back."""
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    w, h = size[0] / scale, size[1] / scale
    area = (centre[0] - w / 2, centre[1] - h / 2, centre[0] + w / 2, centre[1] + h / 2)
    picture = Image.fromarray(np.asarray(image, np.uint8))
    return np.asarray(picture.transform(size, Image.Transform.EXTENT, area, Image.Resampling.BILINEAR))


def scene_background(scene: np.ndarray, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A (size[1], size[0], 3) uint8 view of ``scene`` (H,W,3 uint8): a random window of 60-100% of its
    largest ``size``-shaped area, mirrored half the time, brightness x 0.8-1.2: the room behind a print or a
    screen."""
    s = np.asarray(scene, np.uint8)
    h, w = s.shape[:2]
    fit = min(w / size[0], h / size[1]) * rng.uniform(0.6, 1.0)
    cw, ch = size[0] * fit, size[1] * fit
    x0, y0 = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
    view = window(s, (x0 + cw / 2, y0 + ch / 2), 1 / fit, size).astype(np.float64)
    if rng.random() < 0.5:
        view = view[:, ::-1]
    return np.asarray(np.clip(view * rng.uniform(0.8, 1.2), 0, 255).astype(np.uint8))


__all__ = [
    "ScreenModel",
    "bent_photo_view",
    "camera_look",
    "head_view",
    "photo_view",
    "print_look",
    "scene_background",
    "screen_look",
    "screen_replay",
    "window",
]
