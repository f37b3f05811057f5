"""The statistics of the geometry check's three answers: is there motion in a burst beyond its own landmark
noise, how much, and could a head have made it?

**Series and noise.** Each question is asked of a series ``x_f`` (F frames, D coordinates) measured on the
burst: the nose's canonical position (D = 2, IOD; :func:`fovea.faces.access.core.pad.canonical_nose`), the
eye-mouth quad's strain (D = 2, :func:`strain_series`), the mouth-to-eye width ratio (D = 1, log). The
model is ``x_f = mu(t_f) + e_f`` with ``e_f`` independent Gaussian noise of variance ``sigma^2`` per
coordinate (the detector's jitter from frame to frame) and ``mu`` smooth: a person or a hand moves over
0.3-1.5 s, slower than frames at 10 fps jitter. Two nested linear models of ``mu``:

- H0, *no motion*: ``mu(t) = a`` (D parameters), residual sum of squares ``RSS0``;
- H1, *smooth motion*: ``mu(t) = a + b t + c t^2`` (degree ``k`` = 2 from 6 frames on, else 1; D (k+1)
  parameters), residual ``RSS1`` with ``nu = D (F - k - 1)`` degrees of freedom.

``RSS1 / nu`` is the burst's own noise variance: what is left about a smooth path is jitter, so the noise is
measured on the burst itself, not assumed. Under H0, ``(RSS0 - RSS1) / (D k)`` and ``RSS1 / nu`` are
independent estimates of ``sigma^2`` (Cochran's theorem for nested least squares with Gaussian errors), so

    F = ((RSS0 - RSS1) / (D k)) / (RSS1 / nu)  ~  F(D k, nu)

and the p-value ``P(F(D k, nu) >= F)`` says how surprising the motion is if there were none. The burst
length enters through ``nu`` and through ``RSS0 - RSS1``, which grows with F for a real motion: a long
burst detects less motion than a short one. The noise estimate gets a floor, ``sigma_floor``
(:class:`StatsSettings`): below about 1% of the IOD the detector's pixel grid and JPEG blocks, not
Gaussian jitter, dominate, and a burst of identical frames (a replay of one image) would otherwise make any
0.001 IOD significant. With the floor the test is conservative (F smaller than its nominal law).

**How much**: the *travel*, the largest distance between two points of the fitted path ``mu`` (its
peak-to-peak, in the series' unit), and its standard error ``sigma * sqrt(2 h)``, ``h`` the largest
leverage of the fit (the variance of a fitted value is ``sigma^2 h``; the difference of two has at most
twice that).

**Could a head have made it (the *flat* answer).** A rotation of the face out of the image plane by theta
foreshortens the eye-mouth quad along one direction by ``cos(theta)`` (weak perspective; the eyes and mouth
corners of a face are nearly coplanar, 0.1 IOD apart in depth). :func:`strain_series` measures that from the
eye vector and the eye-to-mouth vector of each frame relative to the first: ``M_f = B_f B_0^-1``, whose
singular values ``s1 >= s2`` give ``log(s1 / s2) = -log cos(theta)`` for a tilt (scale and in-plane
rotation cancel). A head turned by theta moves its nose across that plane by ``d sin(theta)``, ``d`` its
height over the plane: 0.35 IOD on average, at least ``min_nose_height`` (0.2 IOD) for the flattest noses.
So when the strain shows a significant rotation of at least ``min_tilt_deg`` and the nose's travel stays
below ``min_nose_height * sin(theta) - z * se`` (a head with the flattest nose would have moved it more,
by ``z`` standard errors), a plane explains the burst: *flat*. Expressions change the quad too, and not
as a rotation does: the mouth widens against the eyes (an affine map keeps the ratio of parallel lengths,
so a rotation does not change it). A burst whose mouth-to-eye width ratio moves significantly by more than
``max_nonrigid`` is *not* called flat (it is undetermined): a talking or smiling person is never read as a
print. Perspective (a print pitched close to the camera) also changes that ratio a little, which makes
such a print undetermined rather than flat: the conservative side.

All functions are pure numpy (and scipy's F law); inputs are not modified.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import f as f_law

LEFT_EYE, RIGHT_EYE, NOSE, MOUTH_LEFT, MOUTH_RIGHT = range(5)


@dataclass(frozen=True)
class StatsSettings:
    """``alpha``: the p-value under which motion counts as seen (0.05: one burst in twenty without
    motion would be said to move). ``sigma_floor``: the smallest noise standard deviation believed, in the
    series' unit (IOD for the nose). ``min_tilt_deg``, ``min_nose_height``, ``z``: the flat answer (see the
    module docstring). ``max_nonrigid``: the travel of the log mouth-to-eye width ratio above which the quad's
    change is an expression, not a rotation."""

    alpha: float = 0.05
    sigma_floor: float = 0.01
    min_tilt_deg: float = 30.0
    min_nose_height: float = 0.2
    z: float = 2.0
    max_nonrigid: float = 0.05

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be within (0, 0.5), got {self.alpha}")
        if not 0 < self.sigma_floor < 0.5:
            raise ValueError(f"sigma_floor must be within (0, 0.5), got {self.sigma_floor}")
        if not 0 < self.min_tilt_deg < 90:
            raise ValueError(f"min_tilt_deg must be within (0, 90), got {self.min_tilt_deg}")
        if not 0 < self.min_nose_height < 1:
            raise ValueError(f"min_nose_height must be within (0, 1) IOD, got {self.min_nose_height}")
        if self.z < 0 or self.max_nonrigid <= 0:
            raise ValueError(f"need z >= 0 and max_nonrigid > 0, got {self.z}, {self.max_nonrigid}")


@dataclass(frozen=True)
class MotionTest:
    """The F-test of one series. ``p``: nan when the burst is too short to estimate noise (then nothing is
    significant); ``travel``: peak-to-peak of the fitted path; ``se``: its standard error; ``sigma``: the
    noise standard deviation used (floored); ``degree``: of the smooth model."""

    f: float
    p: float
    travel: float
    se: float
    sigma: float
    degree: int
    dof: int

    def significant(self, alpha: float) -> bool:
        return bool(np.isfinite(self.p) and self.p < alpha)


def _design(frames: int, degree: int) -> np.ndarray:
    t = np.linspace(-1.0, 1.0, frames)
    return np.stack([t**d for d in range(degree + 1)], axis=1)


def motion_test(series: np.ndarray, sigma_floor: float, degree: int | None = None) -> MotionTest:
    """The F-test of "no motion" against "smooth motion" for ``series`` (F,) or (F, D) (finite, in frame
    order, frames evenly spaced in time) with the noise floor ``sigma_floor``; ``degree`` of the smooth
    model (default 2 from 6 frames on, else 1). ``ValueError`` for fewer than 2 frames or non-finite
    values."""
    x = np.asarray(series, np.float64)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2 or len(x) < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"need a finite (F >= 2, D) series, got shape {np.shape(series)}")
    frames, dims = x.shape
    k = (2 if frames >= 6 else 1) if degree is None else degree
    k = min(k, frames - 1)
    design = _design(frames, k)
    coef, *_ = np.linalg.lstsq(design, x, rcond=None)
    fitted = design @ coef
    rss0 = float(((x - x.mean(0)) ** 2).sum())
    rss1 = float(((x - fitted) ** 2).sum())
    dof = dims * (frames - k - 1)
    noise = rss1 / dof if dof > 0 else 0.0
    sigma = float(np.sqrt(max(noise, sigma_floor**2)))
    stat = max(rss0 - rss1, 0.0) / (dims * k) / sigma**2
    p = float(f_law.sf(stat, dims * k, dof)) if dof > 0 else float("nan")
    diff = fitted[:, None, :] - fitted[None, :, :]
    travel = float(np.sqrt((diff**2).sum(-1)).max())
    hat = np.einsum("ij,jk,ik->i", design, np.linalg.pinv(design.T @ design), design)
    se = sigma * float(np.sqrt(2 * hat.max()))
    return MotionTest(stat, p, travel, se, sigma, k, dof)


def strain_series(landmarks: np.ndarray) -> np.ndarray:
    """(F,5,2) landmarks (finite, pixels) -> (F,2) the eye-mouth quad's log strain relative to the first
    frame: per frame ``B = [right eye - left eye, mouth centre - eye centre]`` (2x2, columns), ``M = B
    B_0^-1``, ``T`` the traceless part of ``log(M^T M)``; the row is ``(T11, T12)``, whose norm is
    ``log(s1 / s2)`` of M's singular values (0 for a similarity: a move, zoom or spin in the image plane;
    ``-log cos(theta)`` for a tilt by theta). ``ValueError`` for a degenerate first frame."""
    lm = np.asarray(landmarks, np.float64)
    eye = lm[:, RIGHT_EYE] - lm[:, LEFT_EYE]
    down = (lm[:, MOUTH_LEFT] + lm[:, MOUTH_RIGHT]) / 2 - (lm[:, LEFT_EYE] + lm[:, RIGHT_EYE]) / 2
    b = np.stack([eye, down], axis=2)  # (F, 2, 2), columns
    if abs(np.linalg.det(b[0])) < 1e-9:
        raise ValueError("degenerate first frame: eyes and mouth on one line")
    m = b @ np.linalg.inv(b[0])
    c = np.transpose(m, (0, 2, 1)) @ m
    values, vectors = np.linalg.eigh(c)
    log_c = vectors @ (np.log(np.maximum(values, 1e-12))[:, :, None] * np.transpose(vectors, (0, 2, 1)))
    # log(M^T M) = V diag(2 log s1, 2 log s2) V^T: its traceless part has entries of size (log s1 - log s2).
    trace = (log_c[:, 0, 0] + log_c[:, 1, 1]) / 2
    return np.stack([log_c[:, 0, 0] - trace, log_c[:, 0, 1]], axis=1)


def width_ratio_series(landmarks: np.ndarray) -> np.ndarray:
    """(F,5,2) landmarks -> (F,) log of the mouth's width over the eyes' distance (affine-invariant for
    parallel segments: a rotation leaves it, an expression moves it)."""
    lm = np.asarray(landmarks, np.float64)
    mouth = np.linalg.norm(lm[:, MOUTH_RIGHT] - lm[:, MOUTH_LEFT], axis=1)
    eyes = np.linalg.norm(lm[:, RIGHT_EYE] - lm[:, LEFT_EYE], axis=1)
    return np.asarray(np.log(np.maximum(mouth, 1e-9) / np.maximum(eyes, 1e-9)))


@dataclass(frozen=True)
class BurstMotion:
    """The three tests of one burst: the nose's parallax, the quad's rotation (strain), the expression."""

    nose: MotionTest
    strain: MotionTest
    expression: MotionTest

    def tilt_deg(self) -> float:
        """The rotation the strain's travel stands for, in degrees (acos of exp(-travel))."""
        return float(np.degrees(np.arccos(np.exp(-min(self.strain.travel, 20.0)))))

    def head_would_move(self, settings: StatsSettings) -> float:
        """How far the flattest nose would have moved over that rotation, in IOD."""
        return settings.min_nose_height * float(np.sin(np.radians(self.tilt_deg())))

    def flat(self, settings: StatsSettings) -> bool:
        """A plane explains the burst: enough rotation seen, no expression, and the nose moved less than the
        flattest head's would, by ``z`` standard errors (module docstring)."""
        rotated = self.strain.significant(settings.alpha) and self.tilt_deg() >= settings.min_tilt_deg
        expression = (
            self.expression.significant(settings.alpha) and self.expression.travel > settings.max_nonrigid
        )
        short = self.nose.travel + settings.z * self.nose.se < self.head_would_move(settings)
        return rotated and not expression and short


def burst_motion(positions: np.ndarray, landmarks: np.ndarray, settings: StatsSettings) -> BurstMotion:
    """The tests of a burst's usable frames: ``positions`` (F,2) canonical nose positions (IOD),
    ``landmarks`` (F,5,2) pixels, the same frames in order (F >= 2)."""
    lm = np.asarray(landmarks, np.float64)
    # The strain and the ratio are relative measures: a landmark's jitter of sigma IOD moves them by about
    # sigma (ratios of about one IOD long vectors), so the nose's floor serves them too.
    return BurstMotion(
        motion_test(positions, settings.sigma_floor),
        motion_test(strain_series(lm), settings.sigma_floor),
        motion_test(width_ratio_series(lm), settings.sigma_floor),
    )


__all__ = [
    "BurstMotion",
    "MotionTest",
    "StatsSettings",
    "burst_motion",
    "motion_test",
    "strain_series",
    "width_ratio_series",
]
