"""Synthetic landmark bursts for the presentation-attack checks: bona fide heads and flat attacks, as a
pinhole camera would see them, with detector noise. Test material (issue 10, item 3) and the set the
geometry thresholds are evaluated on; no real face video is needed to make it.

- Bona fide: a 3D layout of the five MTCNN points (:data:`FACE_3D`, average adult proportions in
  inter-ocular distances, varied per subject) turned in yaw and pitch over the burst (a head turn, as the
  active challenge will ask for), moved a little, projected.
- Attacks: the five points of a face *photo* (the same 3D face seen once at a random pose, so a photo of a
  face looking aside is included) lie on a plane; the plane is held still, slid, rotated in its plane,
  tilted in 3D (perspective), brought closer or farther (several sizes), then projected the same way.
- Bent prints (:data:`BENT_MOTIONS`): the same photo bent like paper into a cylinder (about its vertical or
  its horizontal axis, radius 0.5-2 paper widths, either way round) and turned about that axis over the
  burst. Not planar, so outside what the geometry check assumes; measured separately (``synthetic_set``'s
  ``bent``), not part of the planar set the threshold was set on.

Noise is Gaussian on each landmark coordinate, ``noise`` inter-ocular distances of the face in that frame
(MTCNN's jitter between frames is of the order of 1-3% of the IOD). Everything is seeded numpy: the same
generator gives the same set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# x right, y down, z away from the camera; unit = inter-ocular distance (IOD, about 63 mm). Eyes at depth
# 0; the nose tip 0.40 IOD (25 mm) towards the camera, the mouth corners 0.10 IOD (6 mm): the nose stands
# about 0.35 IOD over the plane of eyes and mouth corners. Order: MTCNN's (left eye, right eye, nose, mouth
# left, mouth right).
FACE_3D = np.array(
    [
        [-0.5, 0.0, 0.0],
        [0.5, 0.0, 0.0],
        [0.0, 0.55, -0.40],
        [-0.4, 1.05, -0.10],
        [0.4, 1.05, -0.10],
    ]
)
# The dense layout (fovea.faces.recognition.core.mesh.dense_points: eye centres, nose tip, mouth corners, face outline,
# nose line, eye corners; 53 points) in the same frame and unit: the face mesh network's own output on the
# frontal ``obama`` sample (its crop in tests/fixtures/facemesh-reference), eye line levelled, its z scaled
# by 0.573 so that the nose tip stands 0.40 IOD in front of the eyes as in FACE_3D (the network's z puts it
# at 0.70; the smaller depth is the harder case for a head).
DENSE_FACE_3D = np.array(
    [
        [-0.500, -0.000, -0.016],
        [0.500, 0.000, 0.016],
        [0.026, 0.470, -0.400],
        [-0.581, 0.931, -0.008],
        [0.539, 0.937, 0.021],
        [0.014, -0.857, -0.131],
        [0.312, -0.845, -0.105],
        [0.556, -0.790, -0.039],
        [0.776, -0.684, 0.065],
        [0.920, -0.536, 0.179],
        [1.008, -0.357, 0.288],
        [1.051, -0.164, 0.398],
        [1.061, 0.082, 0.484],
        [1.051, 0.315, 0.520],
        [1.041, 0.547, 0.519],
        [1.013, 0.794, 0.490],
        [0.947, 1.056, 0.436],
        [0.852, 1.266, 0.346],
        [0.743, 1.419, 0.256],
        [0.601, 1.566, 0.182],
        [0.482, 1.680, 0.117],
        [0.351, 1.781, 0.048],
        [0.191, 1.855, -0.003],
        [-0.021, 1.883, -0.025],
        [-0.233, 1.858, -0.017],
        [-0.400, 1.787, 0.025],
        [-0.539, 1.688, 0.088],
        [-0.670, 1.576, 0.146],
        [-0.822, 1.428, 0.210],
        [-0.942, 1.273, 0.292],
        [-1.044, 1.060, 0.376],
        [-1.111, 0.794, 0.427],
        [-1.138, 0.545, 0.453],
        [-1.147, 0.309, 0.452],
        [-1.153, 0.073, 0.414],
        [-1.128, -0.174, 0.328],
        [-1.073, -0.366, 0.220],
        [-0.966, -0.545, 0.119],
        [-0.798, -0.692, 0.015],
        [-0.552, -0.797, -0.074],
        [-0.291, -0.848, -0.123],
        [0.010, -0.061, -0.185],
        [0.013, 0.028, -0.228],
        [0.017, 0.133, -0.272],
        [0.020, 0.232, -0.323],
        [0.024, 0.338, -0.378],
        [0.023, 0.573, -0.383],
        [0.020, 0.628, -0.356],
        [0.016, 0.647, -0.284],
        [-0.720, -0.004, -0.001],
        [-0.280, 0.004, -0.031],
        [0.288, 0.007, -0.011],
        [0.712, -0.007, 0.043],
    ]
)
FOCAL_PX = 900.0  # a 1280x720 door camera with a ~70 degree horizontal field of view
IOD_MM = 63.0


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3,3) rotation from angles in degrees: yaw about y, pitch about x, roll about z (applied roll, pitch,
    yaw)."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return np.asarray(ry @ rx @ rz)


def project(
    points: np.ndarray, focal: float = FOCAL_PX, centre: tuple[float, float] = (640, 360)
) -> np.ndarray:
    """(N,3) camera-frame points (z > 0, in front of the camera) -> (N,2) pixels of a pinhole camera."""
    p = np.asarray(points, np.float64)
    if np.any(p[:, 2] <= 0):
        raise ValueError("points behind the camera")
    return np.c_[focal * p[:, 0] / p[:, 2] + centre[0], focal * p[:, 1] / p[:, 2] + centre[1]]


def _noisy(rng: np.random.Generator, frames: np.ndarray, noise: float) -> np.ndarray:
    iod = np.linalg.norm(frames[:, 1] - frames[:, 0], axis=1)[:, None, None]
    return frames + rng.normal(0.0, 1.0, frames.shape) * noise * iod


def _sweep(rng: np.random.Generator, n: int, amplitude: float) -> np.ndarray:
    """n angles (degrees) going from one side to the other over ``amplitude`` (a turn), with a random
    centre and a little jitter."""
    centre = rng.uniform(-10, 10)
    t = np.linspace(-0.5, 0.5, n) * amplitude * rng.choice([-1, 1])
    return np.asarray(centre + t + rng.normal(0, 0.5, n))


def bona_fide_burst(
    rng: np.random.Generator,
    frames: int,
    *,
    turn: float = 30.0,
    noise: float = 0.02,
    distance_mm: float = 600.0,
    layout: np.ndarray = FACE_3D,
) -> np.ndarray:
    """(frames,P,2) landmarks of a head turning by ``turn`` degrees in total over the burst (mostly yaw, or
    mostly pitch, one in three), ``distance_mm`` from the camera, moving a little. The face's depths are
    varied by +-25% per subject. ``layout``: the (P,3) face (:data:`FACE_3D`, or :data:`DENSE_FACE_3D`)."""
    face = np.asarray(layout) * np.array([1.0, rng.uniform(0.9, 1.1), rng.uniform(0.75, 1.25)])
    face = face - face.mean(0)
    pitch_turn = rng.uniform() < 1 / 3
    yaws = _sweep(rng, frames, turn * (0.3 if pitch_turn else 1.0))
    pitches = _sweep(rng, frames, turn * (1.0 if pitch_turn else 0.3))
    rolls = rng.normal(0, 3, frames)
    scale = IOD_MM  # IOD units -> mm
    out = []
    drift = rng.normal(0, 10, (frames, 3)).cumsum(0)
    for i in range(frames):
        pts = face @ rotation(yaws[i], pitches[i], rolls[i]).T * scale
        out.append(project(pts + np.array([0, 0, distance_mm]) + drift[i]))
    return _noisy(rng, np.asarray(out), noise)


# The head turns (yaw, pitch in degrees, from the start of the burst to its end, as :func:`rotation` takes
# them) that an active challenge asks for (fovea.faces.access.core.challenge). Positive yaw turns the head to the
# person's right (the nose moves to the image's left), positive pitch tilts it forward (looking down).
CHALLENGE_TURNS = {
    "turn_left": (-1.0, 0.0),
    "turn_right": (1.0, 0.0),
    "look_up": (0.0, -1.0),
    "look_down": (0.0, 1.0),
}


def head_turn_burst(
    rng: np.random.Generator,
    frames: int,
    yaw: tuple[float, float],
    pitch: tuple[float, float],
    *,
    noise: float = 0.02,
    distance_mm: float = 600.0,
) -> np.ndarray:
    """(frames,5,2) landmarks of a head turning from ``yaw[0]`` to ``yaw[1]`` and ``pitch[0]`` to
    ``pitch[1]`` degrees (evenly over the burst, half a degree of jitter), with a little roll and drift, the
    face's depths varied by +-25% per subject as in :func:`bona_fide_burst`."""
    face = FACE_3D * np.array([1.0, rng.uniform(0.9, 1.1), rng.uniform(0.75, 1.25)])
    face = face - face.mean(0)
    yaws = np.linspace(*yaw, frames) + rng.normal(0, 0.5, frames)
    pitches = np.linspace(*pitch, frames) + rng.normal(0, 0.5, frames)
    rolls = rng.normal(0, 3, frames)
    drift = rng.normal(0, 10, (frames, 3)).cumsum(0)
    out = [
        project(face @ rotation(yaws[i], pitches[i], rolls[i]).T * IOD_MM + [0, 0, distance_mm] + drift[i])
        for i in range(frames)
    ]
    return _noisy(rng, np.asarray(out), noise)


def challenge_burst(
    rng: np.random.Generator, frames: int, kind: str, turn: float, **kwargs: float
) -> np.ndarray:
    """A bona fide answer to a challenge ``kind`` (a key of :data:`CHALLENGE_TURNS`): the head turns by
    ``turn`` degrees in the asked way, from a random start within +-10 degrees (the other axis wanders
    +-5 degrees)."""
    if kind not in CHALLENGE_TURNS:
        raise ValueError(f"unknown challenge kind {kind!r}; known: {', '.join(CHALLENGE_TURNS)}")
    dy, dp = CHALLENGE_TURNS[kind]
    y0, p0 = rng.uniform(-10, 10, 2)
    wy, wp = rng.uniform(-5, 5, 2)
    yaw = (y0, y0 + dy * turn + (0 if dy else wy))
    pitch = (p0, p0 + dp * turn + (0 if dp else wp))
    return head_turn_burst(rng, frames, yaw, pitch, **kwargs)


def _photo_points(rng: np.random.Generator, layout: np.ndarray = FACE_3D) -> np.ndarray:
    """The points of a printed face photo, on its plane z = 0, in mm: the 3D face ``layout`` photographed
    once at a random pose (up to 30 degrees aside), face 40-90 mm wide on the paper."""
    face = np.asarray(layout) @ rotation(rng.uniform(-30, 30), rng.uniform(-20, 20), rng.uniform(-10, 10)).T
    flat = face[:, :2] - face[:, :2].mean(0)
    return np.c_[flat * rng.uniform(40, 90), np.zeros(len(flat))]


ATTACK_MOTIONS = ("still", "slide", "spin", "tilt", "zoom", "tilt_zoom")
# Bent prints: ``bent`` about the paper's vertical axis (it curves left-right), ``bent_h`` about its
# horizontal axis (it curves top-bottom).
BENT_MOTIONS = ("bent", "bent_h")
BEND_AXES = {"bent": "vertical", "bent_h": "horizontal"}


def bend(points: np.ndarray, curvature: float, axis: str = "vertical", centre: float = 0.0) -> np.ndarray:
    """(N,3) points on the plane z = 0 (mm; x right, y down) -> the same points on that paper bent into a
    cylinder of ``curvature`` (1 / radius, per mm; 0 = flat), arc length kept: about an axis parallel to the
    paper's y axis (``vertical``: the paper curves left-right) or x axis (``horizontal``), the cylinder
    touching the plane along the line x = ``centre`` (or y = ``centre``). Positive curvature brings the
    edges towards the camera (-z, hollow as seen from it), negative takes them away (a bulge, as a photo
    wrapped round something). A point at arc length s from that line goes to sin(k s) / k across and
    -(1 - cos(k s)) / k in depth."""
    p = np.array(points, np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"expected (N, 3) points, got {p.shape}")
    if axis not in ("vertical", "horizontal"):
        raise ValueError(f"unknown bend axis {axis!r}; known: vertical, horizontal")
    if curvature == 0:
        return p
    i = 0 if axis == "vertical" else 1
    angle = (p[:, i] - centre) * curvature
    p[:, i] = centre + np.sin(angle) / curvature
    p[:, 2] = p[:, 2] - (1 - np.cos(angle)) / curvature
    return p


def bent_burst(
    rng: np.random.Generator,
    frames: int,
    motion: str = "bent",
    *,
    radius_widths: float | None = None,
    turn: float | None = None,
    noise: float = 0.02,
    distance_mm: float = 500.0,
    photo: np.ndarray | None = None,
    width_iod: float | None = None,
    layout: np.ndarray = FACE_3D,
) -> np.ndarray:
    """(frames,5,2) landmarks of a face photo bent like paper (``motion`` one of :data:`BENT_MOTIONS`) and
    turned about its bend axis by ``turn`` degrees in all over the burst (default 20-50, either way; the
    axis of the turn within +-20 degrees of the bend's, the turn that shows a cylinder's depth best), from a
    start held not quite square. The paper is ``width_iod`` inter-ocular distances of the printed face wide
    (default 3-6), bent with radius ``radius_widths`` paper widths (default 0.5-2; either way round, see
    :func:`bend`; ``inf`` = flat), the bend's line within +-15% of the paper's width of the face's centre.
    ``photo``: (P,3) points on the plane z = 0 in mm (default: a random face photo of ``layout``)."""
    if motion not in BENT_MOTIONS:
        raise ValueError(f"unknown bent motion {motion!r}; known: {', '.join(BENT_MOTIONS)}")
    points = _photo_points(rng, layout) if photo is None else np.asarray(photo, np.float64)
    iod = float(np.linalg.norm(points[1, :2] - points[0, :2]))
    width = iod * (rng.uniform(3, 6) if width_iod is None else width_iod)
    radius = rng.uniform(0.5, 2) if radius_widths is None else radius_widths
    curvature = rng.choice([-1.0, 1.0]) / (radius * width)
    axis = BEND_AXES[motion]
    i = 0 if axis == "vertical" else 1
    paper = bend(
        points, curvature, axis, centre=float(points[:, i].mean() + rng.uniform(-0.15, 0.15) * width)
    )
    amount = (rng.uniform(20, 50) if turn is None else turn) * rng.choice([-1, 1])
    direction = (0.0 if axis == "vertical" else np.pi / 2) + np.radians(rng.uniform(-20, 20))
    start = rotation(rng.uniform(-10, 10), rng.uniform(-10, 10), rng.uniform(-10, 10))
    out = []
    for t in np.linspace(-0.5, 0.5, frames):
        a = amount * t
        pts = paper @ (rotation(a * np.cos(direction), a * np.sin(direction), 0) @ start).T
        out.append(project(pts + [0, 0, distance_mm]))
    return _noisy(rng, np.asarray(out), noise)


def attack_burst(
    rng: np.random.Generator,
    frames: int,
    motion: str,
    *,
    noise: float = 0.02,
    distance_mm: float = 500.0,
    photo: np.ndarray | None = None,
    layout: np.ndarray = FACE_3D,
) -> np.ndarray:
    """(frames,P,2) landmarks of a flat photo or screen moved by ``motion`` (one of :data:`ATTACK_MOTIONS`):
    ``still`` (the same photo repeated), ``slide`` (moved across), ``spin`` (rotated in its plane up to 40
    degrees), ``tilt`` (turned in 3D, up to 50 degrees about a random axis in its plane, i.e. perspective
    warps), ``zoom`` (brought closer or moved away, x0.6-1.6 in size), ``tilt_zoom`` (both). ``photo``:
    (P,3) points on the plane z = 0 in mm (default: a random face photo of ``layout``)."""
    if motion not in ATTACK_MOTIONS:
        raise ValueError(f"unknown attack motion {motion!r}; known: {', '.join(ATTACK_MOTIONS)}")
    points = _photo_points(rng, layout) if photo is None else np.asarray(photo, np.float64)
    t = np.linspace(0, 1, frames)
    axis = rng.uniform(0, 2 * np.pi)
    tilt = rng.uniform(20, 50) * rng.choice([-1, 1]) if "tilt" in motion else 0.0
    spin = rng.uniform(15, 40) * rng.choice([-1, 1]) if motion == "spin" else 0.0
    zoom = rng.uniform(0.6, 1.6) if "zoom" in motion else 1.0
    slide = rng.normal(0, 60, 2) if motion == "slide" else np.zeros(2)
    start = rotation(0, rng.uniform(-10, 10), rng.uniform(-10, 10))  # the photo is not held quite square
    out = []
    for k in range(frames):
        a = tilt * t[k]
        tilt_r = rotation(a * np.cos(axis), a * np.sin(axis), spin * t[k])
        z = distance_mm / (1 + (zoom - 1) * t[k])
        pts = points @ (tilt_r @ start).T + np.array([*(slide * t[k]), z])
        out.append(project(pts))
    return _noisy(rng, np.asarray(out), noise)


@dataclass(frozen=True)
class SyntheticSet:
    """Landmark bursts with their labels: ``bona_fide`` a list of (F,5,2); ``attacks`` by attack kind."""

    bona_fide: list[np.ndarray]
    attacks: dict[str, list[np.ndarray]]


def synthetic_set(
    seed: int,
    per_kind: int,
    *,
    noise: float = 0.02,
    turn: tuple[float, float] = (25.0, 45.0),
    frames: tuple[int, int] = (3, 15),
    bent: bool = False,
    layout: np.ndarray = FACE_3D,
) -> SyntheticSet:
    """``per_kind`` bursts of each attack motion and ``per_kind * len(ATTACK_MOTIONS)`` bona fide bursts,
    with burst lengths drawn from ``frames`` (inclusive), head turns from ``turn`` degrees, distances
    400-900 mm (face 60-140 px wide at this focal length). With ``bent``, also ``per_kind`` bursts of each
    of :data:`BENT_MOTIONS` (:func:`bent_burst`, its default curvatures and turns), drawn after the rest so
    the planar set is the same with or without them. ``layout``: the face's points (:data:`FACE_3D`: MTCNN's
    five; :data:`DENSE_FACE_3D`: the dense check's 53)."""
    rng = np.random.default_rng(seed)

    def length() -> int:
        return int(rng.integers(frames[0], frames[1] + 1))

    def dist() -> float:
        return float(rng.uniform(400, 900))

    bona = [
        bona_fide_burst(
            rng, length(), turn=float(rng.uniform(*turn)), noise=noise, distance_mm=dist(), layout=layout
        )
        for _ in range(per_kind * len(ATTACK_MOTIONS))
    ]
    attacks = {
        motion: [
            attack_burst(rng, length(), motion, noise=noise, distance_mm=dist(), layout=layout)
            for _ in range(per_kind)
        ]
        for motion in ATTACK_MOTIONS
    }
    if bent:
        for motion in BENT_MOTIONS:
            attacks[motion] = [
                bent_burst(rng, length(), motion, noise=noise, distance_mm=dist(), layout=layout)
                for _ in range(per_kind)
            ]
    return SyntheticSet(bona, attacks)


__all__ = [
    "ATTACK_MOTIONS",
    "BENT_MOTIONS",
    "CHALLENGE_TURNS",
    "DENSE_FACE_3D",
    "FACE_3D",
    "FOCAL_PX",
    "SyntheticSet",
    "attack_burst",
    "bend",
    "bent_burst",
    "bona_fide_burst",
    "challenge_burst",
    "head_turn_burst",
    "project",
    "rotation",
    "synthetic_set",
]
