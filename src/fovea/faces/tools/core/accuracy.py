"""Verification accuracy from pairwise distances: ROC-AUC, EER, TAR at fixed FARs, the threshold for a FAR.

Every pair of photos of the same identity is a genuine pair, every pair of different identities an impostor
pair. A pair is accepted when its distance is below the threshold, so the score given to scikit-learn's ROC
functions is the negated distance. FAR = accepted impostor pairs / impostor pairs, TAR = accepted genuine
pairs / genuine pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def pair_distances(distances: np.ndarray, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(N, N) distance matrix between N photos and their identity labels -> (genuine, impostor) distances
    of the N(N-1)/2 unordered pairs; the matrix is symmetrised ((D + D.T) / 2) first."""
    d = np.asarray(distances, dtype=np.float64)
    n = len(labels)
    if d.shape != (n, n):
        raise ValueError(f"expected a ({n}, {n}) distance matrix, got {d.shape}")
    d = (d + d.T) / 2
    i, j = np.triu_indices(n, k=1)
    same = np.array(labels, dtype=object)[i] == np.array(labels, dtype=object)[j]
    return d[i, j][same], d[i, j][~same]


@dataclass(frozen=True)
class OperatingPoint:
    far: float  # the FAR asked for
    tar: float  # best TAR with FAR <= far
    threshold: float  # distance threshold reaching it (accept when distance < threshold)
    achieved_far: float


@dataclass(frozen=True)
class RocReport:
    genuine_pairs: int
    impostor_pairs: int
    roc_auc: float
    eer: float
    eer_threshold: float
    operating_points: tuple[OperatingPoint, ...]  # at the FARs asked for, in that order

    @property
    def far_resolution(self) -> float:
        """The smallest non-zero FAR these impostor pairs can measure."""
        return 1.0 / self.impostor_pairs


def roc_report(genuine: np.ndarray, impostor: np.ndarray, fars: Sequence[float] = (1e-2, 1e-3)) -> RocReport:
    """Metrics from genuine and impostor distances (each 1-D, at least one of each)."""
    genuine = np.asarray(genuine, dtype=np.float64).reshape(-1)
    impostor = np.asarray(impostor, dtype=np.float64).reshape(-1)
    if len(genuine) == 0 or len(impostor) == 0:
        raise ValueError(
            f"need genuine and impostor pairs (got {len(genuine)} and {len(impostor)}): "
            "at least two identities, one of them with two photos"
        )
    for far in fars:
        if not 0 < far < 1:
            raise ValueError(f"FAR targets must be within (0, 1), got {far}")
    y = np.concatenate([np.ones(len(genuine)), np.zeros(len(impostor))])
    scores = -np.concatenate([genuine, impostor])
    fpr, tpr, thresholds = roc_curve(y, scores, drop_intermediate=False)
    eer, eer_threshold = _eer(fpr, tpr, thresholds)
    return RocReport(
        genuine_pairs=len(genuine),
        impostor_pairs=len(impostor),
        roc_auc=float(roc_auc_score(y, scores)),
        eer=eer,
        eer_threshold=eer_threshold,
        operating_points=tuple(_operating_point(fpr, tpr, thresholds, far) for far in fars),
    )


def rates_at(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> tuple[float, float]:
    """(TAR, FAR) when pairs with distance < threshold are accepted."""
    g, i = np.asarray(genuine, np.float64), np.asarray(impostor, np.float64)
    if len(g) == 0 or len(i) == 0:
        raise ValueError("need genuine and impostor pairs")
    return float(np.mean(g < threshold)), float(np.mean(i < threshold))


def _distance_threshold(thresholds: np.ndarray, i: int) -> float:
    """Accepting ROC point i means score >= thresholds[i], i.e. distance <= -thresholds[i]. As a strict
    'distance < t' threshold: halfway to the next larger distance (or a little above the largest)."""
    at = -float(thresholds[i])
    if math.isinf(at):  # the (0, 0) point: accept nothing
        return float(-thresholds[1]) if len(thresholds) > 1 else 0.0
    if i + 1 < len(thresholds):
        return (at - float(thresholds[i + 1])) / 2
    return at + max(abs(at), 1.0) * 1e-6


def _operating_point(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray, far: float) -> OperatingPoint:
    i = int(np.flatnonzero(fpr <= far).max())  # fpr is non-decreasing; fpr[0] = 0
    return OperatingPoint(far, float(tpr[i]), _distance_threshold(thresholds, i), float(fpr[i]))


def _eer(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray) -> tuple[float, float]:
    """Equal error rate: where FAR = FRR (1 - TAR), linearly interpolated between ROC points."""
    gap = (1 - tpr) - fpr  # decreasing from 1 to -1
    j = int(np.flatnonzero(gap <= 0).min())
    if j == 0 or gap[j] == 0:
        return float(fpr[j]), _distance_threshold(thresholds, j)
    t = gap[j - 1] / (gap[j - 1] - gap[j])
    eer = float(fpr[j - 1] + t * (fpr[j] - fpr[j - 1]))
    lo, hi = _distance_threshold(thresholds, j - 1), _distance_threshold(thresholds, j)
    return eer, float(lo + t * (hi - lo))


# Presentation-attack detection (ISO/IEC 30107-3). A presentation is classified bona fide when its score is
# >= the threshold; a nan score (the check could not decide) is classified an attack.
# APCER (per attack species) = attacks classified bona fide / attacks of that species; the APCER reported is
# the worst species (the standard's APCER_PAIS, max over the species). BPCER = bona fide presentations
# classified attacks / bona fide presentations. ACER = (APCER + BPCER) / 2 (kept for comparison with the
# literature; the 2023 edition of the standard no longer recommends it).


@dataclass(frozen=True)
class PadOperatingPoint:
    apcer: float  # the APCER asked for (worst species)
    bpcer: float  # BPCER at the lowest threshold whose APCER is <= apcer
    threshold: float  # accept as bona fide when score >= threshold
    achieved_apcer: float


@dataclass(frozen=True)
class PadReport:
    threshold: float
    apcer: float  # worst species
    apcer_by_species: dict[str, float]
    bpcer: float
    acer: float
    bona_fide: int
    attacks: dict[str, int]
    operating_points: tuple[PadOperatingPoint, ...]  # at the APCERs asked for, in that order


def _pad_scores(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, np.float64).reshape(-1)
    return np.where(np.isnan(s), -np.inf, s)


def pad_report(
    bona_fide: np.ndarray,
    attacks: dict[str, np.ndarray],
    threshold: float,
    apcers: Sequence[float] = (0.01, 0.05),
) -> PadReport:
    """Rates at ``threshold`` and BPCER at the APCERs asked for, from the scores (higher = more bona fide)
    of bona fide presentations and of attacks by species (each non-empty)."""
    bona = _pad_scores(bona_fide)
    species = {k: _pad_scores(v) for k, v in attacks.items()}
    if len(bona) == 0 or not species or any(len(v) == 0 for v in species.values()):
        raise ValueError("need bona fide scores and, for each attack species, at least one score")
    for a in apcers:
        if not 0 <= a < 1:
            raise ValueError(f"APCER targets must be within [0, 1), got {a}")

    def worst_apcer(t: float) -> float:
        return max(float(np.mean(v >= t)) for v in species.values())

    by_species = {k: float(np.mean(v >= threshold)) for k, v in species.items()}
    apcer, bpcer = max(by_species.values()), float(np.mean(bona < threshold))
    candidates = np.unique(np.concatenate([bona, *species.values(), [np.inf]]))
    candidates = candidates[np.isfinite(candidates) | (candidates == np.inf)]
    points = []
    for target in apcers:
        # APCER falls as the threshold rises: the lowest candidate meeting the target has the best BPCER.
        t = next(float(c) for c in candidates if worst_apcer(c) <= target)
        points.append(PadOperatingPoint(target, float(np.mean(bona < t)), t, worst_apcer(t)))
    return PadReport(
        threshold=threshold,
        apcer=apcer,
        apcer_by_species=by_species,
        bpcer=bpcer,
        acer=(apcer + bpcer) / 2,
        bona_fide=len(bona),
        attacks={k: len(v) for k, v in species.items()},
        operating_points=tuple(points),
    )


__all__ = [
    "OperatingPoint",
    "PadOperatingPoint",
    "PadReport",
    "RocReport",
    "pad_report",
    "pair_distances",
    "rates_at",
    "roc_report",
]
