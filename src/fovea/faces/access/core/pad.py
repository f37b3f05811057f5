"""Presentation-attack detection (PAD), multi-frame geometry: does a burst of frames show a head in 3D, or
a flat thing (a printed photo, a phone screen) moved in front of the camera?

A flat object moves as one plane: whatever way it is moved, tilted or shown at whatever size, the image of
each frame is a homography of the image of any other, so landmarks that lie on it keep their projective
invariants. A head does not: its nose tip stands in front of the plane of its eyes and mouth corners, and as
the head turns, the nose moves across that plane (parallax).

With MTCNN's 5 landmarks (left eye, right eye, nose, mouth left, mouth right) the four eye and mouth points
define each frame's homography exactly, and the nose is the one point it can be checked with (5 points give
one residual point, two numbers, per frame). Each frame's four points are mapped onto a fixed canonical face
quad whose eyes are 1 apart, and the nose is carried along: its canonical position is a projective invariant
of the five points. For a plane it is the same in every frame, up to landmark noise; for a head it moves by
about ``d * sin(turn)``, ``d`` being the nose's height over the eye-mouth plane (about 0.35 inter-ocular
distances, 22 mm). The spread of these positions over the burst, in inter-ocular distances (IOD), is the
score: the nose's residual against one homography model of the whole burst, relative to the eye distance.

Three answers (:class:`PadVerdict`), with the burst's own landmark noise deciding what motion is
significant (:mod:`fovea.faces.access.core.pad_stats`: an F-test of "no motion" against "smooth motion",
the noise measured as the jitter about the smooth path):

- BONA_FIDE, *live*: the nose's parallax is significant (p < ``alpha``) and at least ``min_parallax``;
- ATTACK, *flat*: the eye-mouth quad shows a significant rotation out of the image plane of at least
  ``min_tilt_deg``, the mouth-to-eye width ratio shows no expression, and the nose moved less than the
  flattest head's would over that rotation: a plane (a print, a screen) explains the burst. Frames that show
  the identity changing (two faces of the burst as far apart as the match threshold) are an ATTACK too;
- UNDECIDED, *undetermined*: too little motion to tell (a person talking or holding still, a print held
  still or slid), or too few frames whose landmarks make a usable quad. Undetermined is not an attack by
  itself: the door policy's ``pad_undetermined`` says what to do (ask for a challenge, rely on the passive
  check, or deny).

All functions are pure; coordinates are image pixels (x right, y down), float64 inside.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fovea.faces.access.core.pad_stats import BurstMotion, StatsSettings, burst_motion

CHECK = "geometry"  # the check's name in reasons, audit records and responses

LEFT_EYE, RIGHT_EYE, NOSE, MOUTH_LEFT, MOUTH_RIGHT = range(5)
# The four points taken as the face's plane, in the order that walks round the quad.
PLANE = (LEFT_EYE, RIGHT_EYE, MOUTH_RIGHT, MOUTH_LEFT)
# The canonical quad those four are mapped to: eyes 1 apart (the unit is the inter-ocular distance), mouth
# corners 0.8 apart, 1.05 below the eyes (average adult proportions; any fixed convex quad would do, this
# one keeps the unit close to the IOD in the image for a frontal face).
CANONICAL_QUAD = np.array([[-0.5, 0.0], [0.5, 0.0], [0.4, 1.05], [-0.4, 1.05]])


class PadVerdict(enum.Enum):
    BONA_FIDE = "BONA_FIDE"
    ATTACK = "ATTACK"
    UNDECIDED = "UNDECIDED"  # too little motion, or too few usable frames, to tell


@dataclass(frozen=True)
class GeometrySettings:
    """Thresholds of the geometry check (units: inter-ocular distances, IOD).

    ``min_parallax``: how far the nose must travel across the plane of the eyes and mouth corners over the
    burst (:func:`parallax_score`) for the burst to be a head. 0.12 IOD is about 7.5 mm: with the nose
    about 0.35 IOD over that plane, a head turn of 2 * asin(0.12 / 0.70) = 20 degrees in all (the
    challenge asks for more). A flat object moves the nose only by landmark noise: with a detector good to
    2% of the IOD per coordinate the canonical nose (a combination of five noisy points) jitters by about
    0.04 IOD per frame, so 0.12 is three such standard deviations for the shortest burst (3 frames) and
    more for longer ones (the line fit averages frames).
    """

    min_parallax: float = 0.12
    min_frames: int = 3
    max_frames: int = 15
    stats: StatsSettings = StatsSettings()

    def __post_init__(self) -> None:
        if not 0 < self.min_parallax < 1:
            raise ValueError(f"min_parallax must be within (0, 1) IOD, got {self.min_parallax}")
        if not 2 <= self.min_frames <= self.max_frames:
            raise ValueError(f"need 2 <= min_frames <= max_frames, got {self.min_frames}, {self.max_frames}")


@dataclass(frozen=True)
class PadResult:
    """The geometry check's answer for one burst. ``score``: the nose's parallax in IOD (higher = more 3D;
    nan when UNDECIDED); ``reasons``: sentences a person can read, the first one names the verdict's cause."""

    verdict: PadVerdict
    score: float
    threshold: float
    reasons: tuple[str, ...]
    usable_frames: int
    frame_count: int
    identity_spread: float | None = None  # largest embedding distance between two frames, when given
    check: str = CHECK
    answer: str = ""  # live | flat | undetermined | mixed ('' for a result made elsewhere)


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The (3,3) homography H (H[2,2] = 1) with ``dst ~ H @ [src, 1]`` for four (4,2) point pairs (direct
    linear transform on points normalised to zero mean and unit spread). ``ValueError`` when the points are
    degenerate (three on a line)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != (4, 2) or dst.shape != (4, 2):
        raise ValueError(f"expected two (4, 2) point sets, got {src.shape} and {dst.shape}")
    ts, td = normaliser(src), normaliser(dst)
    s, d = apply_homography(ts, src), apply_homography(td, dst)
    for points in (s, d):  # normalised: mean distance from the centre sqrt(2)
        for i, j, k in ((0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)):
            u, v = points[j] - points[i], points[k] - points[i]
            if abs(u[0] * v[1] - u[1] * v[0]) < 1e-6:
                raise ValueError("degenerate points: three on a line")
    a = np.zeros((8, 8))
    b = np.zeros(8)
    for i, ((x, y), (u, v)) in enumerate(zip(s, d, strict=True)):
        a[2 * i] = [x, y, 1, 0, 0, 0, -u * x, -u * y]
        a[2 * i + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y]
        b[2 * i], b[2 * i + 1] = u, v
    if np.linalg.cond(a) > 1e8:
        raise ValueError("degenerate points: no unique homography")
    h = np.append(np.linalg.solve(a, b), 1.0).reshape(3, 3)
    h = np.linalg.inv(td) @ h @ ts
    return h / h[2, 2]


def normaliser(points: np.ndarray) -> np.ndarray:
    """(3,3) similarity moving (P,2) ``points`` to zero mean and mean distance sqrt(2) from it (Hartley)."""
    centre = points.mean(0)
    spread = np.sqrt(((points - centre) ** 2).sum(1)).mean()
    if spread <= 0:
        raise ValueError("degenerate points: all in one place")
    k = np.sqrt(2) / spread
    return np.array([[k, 0, -k * centre[0]], [0, k, -k * centre[1]], [0, 0, 1]])


def apply_homography(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(P,2) ``points`` mapped by the (3,3) homography ``h``."""
    p = np.c_[points, np.ones(len(points))] @ h.T
    return p[:, :2] / p[:, 2:]


def _is_convex_like(quad: np.ndarray, reference: np.ndarray) -> bool:
    """The quad is convex and walks round in the reference's direction (not mirrored, not folded)."""

    def turns(q: np.ndarray) -> np.ndarray:
        e = np.roll(q, -1, axis=0) - q
        f = np.roll(e, -1, axis=0)
        return np.asarray(e[:, 0] * f[:, 1] - e[:, 1] * f[:, 0])

    return bool(np.all(np.sign(turns(quad)) == np.sign(turns(reference))))


def canonical_nose(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F,5,2) landmarks of a burst -> ((F,2) nose positions in the canonical quad's frame, (F,) bool
    usable). A frame is unusable when its four plane points do not make a convex quad in the canonical
    orientation (a missed or mirrored landmark); its row is nan. Coordinates are in IOD units."""
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (5, 2):
        raise ValueError(f"expected (F, 5, 2) landmarks, got {lm.shape}")
    out = np.full((len(lm), 2), np.nan)
    usable = np.zeros(len(lm), bool)
    for i, points in enumerate(lm):
        quad = points[list(PLANE)]
        if not np.all(np.isfinite(points)) or not _is_convex_like(quad, CANONICAL_QUAD):
            continue
        try:
            h = homography(quad, CANONICAL_QUAD)
        except ValueError:
            continue
        out[i] = apply_homography(h, points[NOSE][None])[0]
        usable[i] = True
    return out, usable


def parallax_score(positions: np.ndarray) -> float:
    """(F,2) canonical nose positions of a burst's frames, in frame order (finite, F >= 2) -> how far the
    nose travelled across the plane of the eyes and mouth from the first frame to the last, in IOD: the
    length of a robust straight-line fit (Theil-Sen: the median of the slopes between every two frames, per
    coordinate) times the F - 1 steps. Landmark noise averages out over the pairs, and a frame with a
    misplaced landmark moves the median little (from 4 frames on)."""
    p = np.asarray(positions, np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) < 2:
        raise ValueError(f"need (F >= 2, 2) positions, got {p.shape}")
    i, j = np.triu_indices(len(p), k=1)
    slopes = (p[j] - p[i]) / (j - i)[:, None]
    return float(np.linalg.norm(np.median(slopes, axis=0)) * (len(p) - 1))


def _motion(landmarks: np.ndarray) -> tuple[float, float]:
    """How far the face moved over the burst: (largest shift of the landmarks' centre, in IOD of the first
    frame; largest ratio between two frames' eye distances)."""
    centre = landmarks.mean(1)
    iod = np.linalg.norm(landmarks[:, RIGHT_EYE] - landmarks[:, LEFT_EYE], axis=1)
    shift = float(np.linalg.norm(centre - centre[0], axis=1).max() / max(iod[0], 1e-9))
    return shift, float(iod.max() / max(iod.min(), 1e-9))


def check_geometry(
    landmarks: np.ndarray,
    settings: GeometrySettings,
    *,
    embeddings: np.ndarray | None = None,
    match_threshold: float | None = None,
) -> PadResult:
    """The verdict on one burst from its (F,5,2) MTCNN landmarks in pixels (one face per frame, in frame
    order; a frame without a face is a row of nan). With ``embeddings`` (N,D) of the burst's faces and the
    gallery's ``match_threshold``, a burst whose faces are not all one person (two as far apart as the
    threshold) is an ATTACK. ``ValueError`` for a burst outside ``settings``' frame count or bad shapes."""
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (5, 2):
        raise ValueError(f"expected (F, 5, 2) landmarks, got {lm.shape}")
    f = len(lm)
    if not settings.min_frames <= f <= settings.max_frames:
        raise ValueError(
            f"a burst has {settings.min_frames}-{settings.max_frames} frames for the {CHECK} check, got {f}"
        )
    spread = None
    if embeddings is not None:
        e = np.asarray(embeddings, np.float64)
        if match_threshold is None or e.ndim != 2:
            raise ValueError(f"need (N, D) embeddings and a match threshold, got {e.shape}")
        spread = burst_spread(e)

    threshold = settings.min_parallax

    def result(verdict: PadVerdict, score: float, *reasons: str, answer: str = "") -> PadResult:
        return PadResult(verdict, score, threshold, reasons, int(usable.sum()), f, spread, answer=answer)

    positions, usable = canonical_nose(lm)
    if spread is not None and match_threshold is not None and spread >= match_threshold:
        return result(
            PadVerdict.ATTACK,
            float("nan"),
            f"{CHECK}: the identity changes within the burst (two faces {spread:.3f} apart, "
            f"threshold {match_threshold:.3f})",
            answer="mixed",
        )
    if usable.sum() < settings.min_frames:
        return result(
            PadVerdict.UNDECIDED,
            float("nan"),
            f"{CHECK}: {int(usable.sum())} of {f} frames have usable landmarks, {settings.min_frames} needed",
            answer="undetermined",
        )
    score = parallax_score(positions[usable])
    shift, scale = _motion(lm[usable])
    moved = f"the face moved {shift:.2f} IOD and changed size x{scale:.2f}"
    motion = burst_motion(positions[usable], lm[usable], settings.stats)
    stats = _describe(motion, settings.stats)
    if motion.nose.significant(settings.stats.alpha) and score >= threshold:
        return result(
            PadVerdict.BONA_FIDE,
            score,
            f"{CHECK}: live: 3D parallax {score:.3f} IOD >= {threshold:.3f} and significant: the nose moves "
            f"off the plane of the eyes and mouth as a head turning does",
            stats,
            moved,
            answer="live",
        )
    if motion.flat(settings.stats):
        return result(
            PadVerdict.ATTACK,
            score,
            f"{CHECK}: flat: the face turned {motion.tilt_deg():.0f} degrees out of the image plane and the "
            f"nose moved {score:.3f} IOD, less than the {motion.head_would_move(settings.stats):.3f} of the "
            f"flattest head: a plane (a photo or a screen) explains the burst",
            stats,
            moved,
            answer="flat",
        )
    return result(
        PadVerdict.UNDECIDED,
        score,
        f"{CHECK}: undetermined: too little motion to tell a head from a photo (parallax {score:.3f} IOD, "
        f"{threshold:.3f} and significance needed for live; a turn of {settings.stats.min_tilt_deg:.0f} "
        f"degrees or more for flat)",
        stats,
        moved,
        answer="undetermined",
    )


def _describe(motion: BurstMotion, settings: StatsSettings) -> str:
    n, s, e = motion.nose, motion.strain, motion.expression
    return (
        f"nose travel {n.travel:.3f} +- {n.se:.3f} IOD (p {n.p:.2g}, noise {n.sigma:.3f}); quad turned "
        f"{motion.tilt_deg():.0f} degrees (p {s.p:.2g}); mouth/eye width moved {e.travel:.3f} (p {e.p:.2g}); "
        f"alpha {settings.alpha:g}"
    )


def burst_spread(embeddings: np.ndarray, *, consecutive: bool = True) -> float:
    """(F, D) embeddings of the faces of a burst, in the order they were taken -> the largest L2 distance
    between two consecutive ones; 0.0 for fewer than two faces. The faces are one person when the spread is
    below the match threshold.

    Consecutive, not any two: a burst is 0.1 s a frame, in which a face can turn a few degrees but not become
    another person's. A head turned 30 degrees one way and then the other moves the first and last faces'
    embeddings up to 0.73 apart (rendered turns; consecutive ones at most 0.21), while a swap of people between
    two frames is a step of 0.79-1.0 (``bench/README.md``, "mixed faces"). That leans on every frame having
    to match the claimed identity (a door's default): where a door lets some frames miss
    (``min_matching_frames``), a chain of faces each a small step from the last could drift from one person to
    another, and its caller asks for ``consecutive=False``: the largest distance between any two faces."""
    if len(embeddings) < 2:
        return 0.0
    e = np.asarray(embeddings, np.float64)
    if consecutive:
        steps = np.diff(e, axis=0)
        return float(np.sqrt((steps * steps).sum(-1)).max())
    diff = e[:, None, :] - e[None, :, :]  # (F, F, D); F is at most a few dozen frames
    return float(np.sqrt((diff * diff).sum(-1)).max())


def check_burst(
    landmarks: Sequence[np.ndarray | None],
    settings: GeometrySettings,
    *,
    embeddings: np.ndarray | None = None,
    match_threshold: float | None = None,
) -> PadResult:
    """:func:`check_geometry` for a door's burst as it came: per frame the face's (5,2) landmarks or None
    (no face, or not an image). A burst of a length the check cannot judge is UNDECIDED, not an error."""
    f = len(landmarks)
    if not settings.min_frames <= f <= settings.max_frames:
        reason = f"{CHECK}: a burst of {settings.min_frames}-{settings.max_frames} frames is needed, got {f}"
        return PadResult(PadVerdict.UNDECIDED, float("nan"), settings.min_parallax, (reason,), 0, f)
    lm = np.array(
        [np.full((5, 2), np.nan) if p is None else np.asarray(p, np.float64).reshape(5, 2) for p in landmarks]
    )
    return check_geometry(lm, settings, embeddings=embeddings, match_threshold=match_threshold)


__all__ = [
    "CANONICAL_QUAD",
    "CHECK",
    "PLANE",
    "GeometrySettings",
    "PadResult",
    "PadVerdict",
    "burst_spread",
    "canonical_nose",
    "check_burst",
    "check_geometry",
    "homography",
    "parallax_score",
]
