"""Presentation-attack detection from dense landmarks (the face mesh's outline, nose line, eyes and mouth):
does a burst show a head, or a print, flat *or bent like paper*?

The 5-point check (:mod:`fovea.faces.access.core.pad`) has one point off the plane of the other four, so a print
rolled into a cylinder can give its nose point some parallax and get through. With ~50 points over the whole
face more can be said: a print, flat or bent, is a *developable* surface whose depth varies along one
direction only.

Plane plus parallax. Each frame's points are mapped onto a reference frame's (the middle one) by the
least-squares homography of all points (what a flat print obeys exactly); the per-point mean over the burst
is removed (the reference frame's own noise, common to every frame). What is left is parallax: for a rigid
object moving a little, ``r[f, p] ~ v[f] * g[p]``, a per-frame vector times the point's depth off the fitted
plane (a rank-one field). For a print bent about one axis, ``g[p]`` is a function of one coordinate only,
the position across the bend: ``g[p] = q(n . x[p])`` for a direction ``n`` in the image and a smooth ``q``
(a cubic here: a circular arc and its perspective are smooth over a face; noise-free bent prints are fitted
to 0.002-0.005 IOD). A head's depth varies in both directions (the nose stands out of the middle of the face,
the outline falls away all round): no single direction explains it.

The check rests on the ratio of two residual sums of squares: what the best single-axis cylinder leaves (``n``
over 0-180 degrees in 5-degree steps, cubic ``q``, rank-one motion; a flat print is ``q = 0``) over what a
free rigid shape leaves (rank-one, ``g`` free per point), with a floor on the bend's residual itself
(:class:`DenseSettings`; the result's score is the margin over both, threshold 1). Both residuals scale with the landmark noise, so
the ratio does not depend on its level: for a print it is what fitting P free depths instead of 4 cubic
coefficients takes out of pure noise (1.0-1.65 over 1,600 synthetic prints and bent prints at noise 1-4% of
the IOD); for a head the cylinder also leaves the face's shape. It is used *with* the 5-point check
(:func:`combine`): the 5-point check rejects flat prints and screens, the dense one what is bent.

Pure functions; coordinates are image pixels (x right, y down), float64 inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fovea.faces.access.core.pad import (
    PadResult,
    PadVerdict,
    apply_homography,
    burst_spread,
    normaliser,
)

CHECK = "dense_geometry"
COMBINED_CHECK = "geometry+dense_geometry"
ANGLE_STEP_DEG = 5.0
CUBIC = 3


@dataclass(frozen=True)
class DenseSettings:
    """Thresholds of the dense check.

    ``min_ratio``: the score (residual of the best single-axis cylinder over that of a free rigid shape)
    at and above which the burst is not a sheet. 1.2: on synthetic bursts with Gaussian landmark noise
    (:func:`fovea.faces.tools.core.pad_synth.synthetic_set`, dense layout) about 20% of flat and bent prints reach
    it by chance alone and a head turning by 25-45 degrees scores 1.2-1.6 at 2% IOD noise (2-3 at 1%); the
    5-point check, required as well, stops the prints that pass it by chance.
    ``min_residual``: what the best single-axis bend leaves must also reach this RMS, in IOD. The real face
    mesh is not fixed to a print's surface: as a print tilts, the network re-poses its face prior a little,
    a systematic non-rigid motion that the ratio alone takes for 3D (flat and bent prints of one photo
    rendered with ``pad_synth.bent_photo_view`` score ratios of 1.15-2.2 through the served model). There the
    residual is 0.005-0.011 IOD for 13 prints and 0.013-0.027 for 4 rendered head turns of 20-30 degrees
    (``pad_synth.head_view``): 0.012 IOD, provisional, from that one photo.
    ``min_frames`` / ``max_frames``: the burst sizes the check judges."""

    min_ratio: float = 1.2
    min_residual: float = 0.012
    min_frames: int = 3
    max_frames: int = 15

    def __post_init__(self) -> None:
        if not 1 <= self.min_ratio <= 10:
            raise ValueError(f"min_ratio must be within [1, 10], got {self.min_ratio}")
        if not 0 <= self.min_residual < 0.5:
            raise ValueError(f"min_residual must be within [0, 0.5) IOD, got {self.min_residual}")
        if not 2 <= self.min_frames <= self.max_frames:
            raise ValueError(f"need 2 <= min_frames <= max_frames, got {self.min_frames}, {self.max_frames}")

    @property
    def threshold(self) -> float:
        """The score at and above which a burst is not a flat or singly bent sheet."""
        return self.min_ratio


def fit_homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(3,3) least-squares homography (direct linear transform on normalised points, H[2,2] = 1) mapping
    (P,2) ``src`` onto (P,2) ``dst``, P >= 4. ``ValueError`` for fewer points or a degenerate set."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.ndim != 2 or src.shape != dst.shape or src.shape[1] != 2 or len(src) < 4:
        raise ValueError(f"expected two (P >= 4, 2) point sets, got {src.shape} and {dst.shape}")
    ts, td = normaliser(src), normaliser(dst)
    s, d = apply_homography(ts, src), apply_homography(td, dst)
    n = len(s)
    a = np.zeros((2 * n, 9))
    a[0::2, 0:2], a[0::2, 2] = s, 1
    a[0::2, 6:8], a[0::2, 8] = -d[:, :1] * s, -d[:, 0]
    a[1::2, 3:5], a[1::2, 5] = s, 1
    a[1::2, 6:8], a[1::2, 8] = -d[:, 1:] * s, -d[:, 1]
    _, sv, vt = np.linalg.svd(a)
    if sv[-2] < 1e-9 * sv[0]:
        raise ValueError("degenerate points: no unique homography")
    h = np.linalg.inv(td) @ vt[-1].reshape(3, 3) @ ts
    if abs(h[2, 2]) < 1e-12:
        raise ValueError("degenerate homography")
    return np.asarray(h / h[2, 2])


def parallax_field(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(F,P,2) points of a burst (finite) -> (residual field (F,P,2) in IOD after each frame's best
    homography onto the reference frame (the middle one) and the per-point mean over frames removed,
    reference points (P,2) in IOD, the reference's IOD in pixels). The IOD is rows 0 to 1."""
    pts = np.asarray(points, np.float64)
    ref_i = len(pts) // 2
    ref = pts[ref_i]
    iod = float(np.linalg.norm(ref[1] - ref[0]))
    if not iod > 0:
        raise ValueError("the reference frame's eyes coincide")
    field = np.stack([apply_homography(fit_homography(frame, ref), frame) - ref for frame in pts])
    field -= field.mean(0, keepdims=True)  # the reference's own noise is common to every frame
    return field / iod, (ref - ref.mean(0)) / iod, iod


def cylinder_residual(
    field: np.ndarray, reference: np.ndarray, step_deg: float = ANGLE_STEP_DEG
) -> tuple[float, float, float, float]:
    """(F,P,2) parallax field and (P,2) reference points (IOD) -> (RMS of the field over its F * P * 2
    numbers, RMS left by the best single-axis cylinder ``v[f] * q(n . x[p])`` (cubic ``q``), RMS left by a
    free rigid shape ``v[f] * g[p]``, the best axis angle in degrees: the direction ``n`` across the bend,
    0 = the image's x)."""
    r = np.asarray(field, np.float64)
    f, p = r.shape[:2]
    m = r.transpose(0, 2, 1).reshape(2 * f, p)  # rows: frame coordinates, columns: points
    total = float((m * m).sum())
    rigid = total - float(np.linalg.svd(m, compute_uv=False)[0] ** 2)
    best, best_angle = np.inf, 0.0
    for angle in np.arange(0.0, 180.0, step_deg):
        n = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
        q, _ = np.linalg.qr(np.vander(reference @ n, CUBIC + 1))  # (P, 4) orthonormal: u^3, u^2, u, 1
        # the best rank-one v g^T with g a cubic of u: the rank-one part of m's projection onto that span
        left = total - float(np.linalg.svd(m @ q, compute_uv=False)[0] ** 2)
        if left < best:
            best, best_angle = left, float(angle)
    rms = [float(np.sqrt(max(v, 0.0) / m.size)) for v in (total, best, rigid)]
    return rms[0], rms[1], rms[2], best_angle


def check_dense(
    points: Sequence[np.ndarray | None],
    settings: DenseSettings,
    *,
    embeddings: np.ndarray | None = None,
    match_threshold: float | None = None,
) -> PadResult:
    """The verdict on one burst from its dense landmarks: per frame a (P,2) array in pixels
    (:func:`fovea.faces.recognition.core.mesh.dense_points`, rows 0 and 1 the eyes), or None for a frame without a face.
    With ``embeddings`` and the gallery's ``match_threshold`` a burst whose faces are not one person is an
    ATTACK, as in the 5-point check. Fewer usable frames than ``settings.min_frames`` (or a burst longer
    than ``max_frames``) is UNDECIDED. The result's score is a margin, the smaller of the ratio over
    ``min_ratio`` and the bend's residual over ``min_residual`` (threshold 1: a head scores 1 or more); its
    reasons give both numbers."""
    f = len(points)
    threshold = settings.threshold  # the ratio's; the result's score is a margin, its threshold 1
    spread = None
    if embeddings is not None:
        e = np.asarray(embeddings, np.float64)
        if match_threshold is None or e.ndim != 2:
            raise ValueError(f"need (N, D) embeddings and a match threshold, got {e.shape}")
        spread = burst_spread(e)
    usable = [np.asarray(p, np.float64) for p in points if p is not None and np.all(np.isfinite(p))]
    shapes = {u.shape for u in usable}
    if len(shapes) > 1 or any(len(s) != 2 or s[1] != 2 or s[0] < 8 for s in shapes):
        raise ValueError(f"every frame's points must be one (P >= 8, 2) shape, got {sorted(shapes)}")

    def result(verdict: PadVerdict, score: float, *reasons: str) -> PadResult:
        return PadResult(verdict, score, 1.0, reasons, len(usable), f, spread, CHECK)

    if spread is not None and match_threshold is not None and spread >= match_threshold:
        return result(
            PadVerdict.ATTACK,
            float("nan"),
            f"{CHECK}: the identity changes within the burst (two faces {spread:.3f} apart, "
            f"threshold {match_threshold:.3f})",
        )
    if not settings.min_frames <= len(usable) or f > settings.max_frames:
        return result(
            PadVerdict.UNDECIDED,
            float("nan"),
            f"{CHECK}: {len(usable)} of {f} frames have a face mesh; {settings.min_frames}-"
            f"{settings.max_frames} needed",
        )
    try:
        field, reference, _ = parallax_field(np.stack(usable))
    except ValueError as exc:
        return result(PadVerdict.UNDECIDED, float("nan"), f"{CHECK}: the landmarks are degenerate ({exc})")
    planar, sheet, rigid, angle = cylinder_residual(field, reference)
    score = (sheet / rigid) ** 2 if rigid > 0 else float("inf")  # the ratio of the residual sums of squares
    floor = sheet / settings.min_residual if settings.min_residual > 0 else float("inf")
    margin = min(score / threshold, floor)
    detail = (
        f"landmarks off one homography {planar:.4f} IOD (RMS), off the best single-axis bend (across "
        f"{angle:.0f} degrees) {sheet:.4f}, off a free rigid shape {rigid:.4f}"
    )
    if margin >= 1:
        return result(
            PadVerdict.BONA_FIDE,
            margin,
            f"{CHECK}: a single-axis bend leaves {score:.2f}x a rigid shape's residual (>= {threshold:.2f}) and "
            f"{sheet:.4f} IOD (>= {settings.min_residual:.4f}): the face is neither flat nor bent along one "
            f"axis, as a head is",
            detail,
        )
    return result(
        PadVerdict.ATTACK,
        margin,
        f"{CHECK}: the landmarks move as a flat or singly bent sheet (a bend leaves {score:.2f}x a rigid "
        f"shape's residual and {sheet:.4f} IOD; a head needs >= {threshold:.2f} and >= "
        f"{settings.min_residual:.4f}): a print or a screen, or the head did not turn",
        detail,
    )


def combine(five_point: PadResult, dense: PadResult) -> PadResult:
    """The door's verdict when both checks run: BONA_FIDE only when both are, ATTACK when either is (its
    reason first), else UNDECIDED. The score is the smaller margin, the 5-point score over its threshold or
    the dense margin (threshold 1 both), so BONA_FIDE is score >= 1; reasons are both checks'."""
    verdicts = (five_point.verdict, dense.verdict)
    if PadVerdict.ATTACK in verdicts:
        verdict = PadVerdict.ATTACK
        first = five_point if five_point.verdict is PadVerdict.ATTACK else dense
    elif all(v is PadVerdict.BONA_FIDE for v in verdicts):
        verdict, first = PadVerdict.BONA_FIDE, dense
    else:
        verdict = PadVerdict.UNDECIDED
        first = five_point if five_point.verdict is PadVerdict.UNDECIDED else dense
    other = dense if first is five_point else five_point
    return PadResult(
        verdict,
        min(five_point.score / five_point.threshold, dense.score),
        1.0,
        (*first.reasons, *other.reasons),
        min(five_point.usable_frames, dense.usable_frames),
        dense.frame_count,
        five_point.identity_spread if five_point.identity_spread is not None else dense.identity_spread,
        COMBINED_CHECK,
    )


__all__ = [
    "CHECK",
    "COMBINED_CHECK",
    "combine",
    "DenseSettings",
    "check_dense",
    "cylinder_residual",
    "fit_homography",
    "parallax_field",
]
