"""A passive presentation-attack classifier a site trains on its own captures (``fovea faces pad-train``):
what it is trained on, what its served outputs mean, and how a burst's frames make one score.

It is a trained classifier like any other (``classifier_<name>``, a new softmax layer on frozen MobileNetV2
features, versions and rollback: ``fovea.classify``), trained with the ``pad`` recipe on four classes, two per
crop of each frame's face. Its features are the backbone's ``TEXTURE`` (channel statistics of two early
blocks), not the pooled final features other classifiers use: those tell the training people's faces apart
from everything else, and a person the training never saw reads as an attack.

- the *face* crop: a square ``FACE_SCALE`` times the detector's box side, round the box's centre (skin,
  print halftone, screen moire, glare on the face);
- the *context* crop: a square ``CONTEXT_SCALE`` times the box side (a phone's or monitor's bezel, the
  hands holding it, a print's edge, the screen's own banding).

Each is cut at ``CUT_SIZE`` px (training takes random ``INPUT_SIZE`` crops of it, keeping the pixels' scale,
so moire and halftone are not resampled away); the served input is its centre ``INPUT_SIZE`` crop. The
labels are :data:`LABELS` (sorted, as the classify service orders classes). For a crop the bona fide
log-odds are ``log p(bona_fide-<crop>) - log p(attack-<crop>)`` (the two other classes are the other crop's
and have near-zero probability). A frame's log-odds are the mean over its crops, a burst's the mean over
its frames (:func:`burst_logit`: independent evidence adds up in log-odds; the mean keeps the scale of one
frame so that one threshold serves bursts of any length). Training calibrates the head's bias so that the
burst log-odds' threshold is 0: the score :func:`burst_score` is their logistic, bona fide when >= 0.5.
"""

from __future__ import annotations

import numpy as np

FACE, CONTEXT = "face", "context"
CROPS = (FACE, CONTEXT)
BONA_FIDE, ATTACK = "bona_fide", "attack"
LABELS = ("attack-context", "attack-face", "bona_fide-context", "bona_fide-face")
FACE_SCALE = 1.4
CONTEXT_SCALE = 3.2
CUT_SIZE = 256
INPUT_SIZE = 224
RECIPE = "pad"  # TrainingOptions.recipe of such a classifier
THRESHOLD = 0.5  # on burst_score, after the training's calibration


def label(kind: str, crop: str) -> str:
    """The class of a crop: ``bona_fide-face``, ``attack-context``, ..."""
    if kind not in (BONA_FIDE, ATTACK) or crop not in CROPS:
        raise ValueError(f"unknown kind {kind!r} or crop {crop!r}")
    return f"{kind}-{crop}"


def crop_logits(probabilities: np.ndarray, crops: np.ndarray | list[str]) -> np.ndarray:
    """(N, 4) probabilities over :data:`LABELS` and the N crops' kinds (``face`` / ``context``) -> (N,) bona
    fide log-odds of each crop against the attack class of the same crop kind."""
    p = np.asarray(probabilities, np.float64)
    kinds = np.asarray(crops)
    if p.ndim != 2 or p.shape[1] != len(LABELS) or len(kinds) != len(p):
        raise ValueError(
            f"expected (N, {len(LABELS)}) probabilities and N crop kinds, got {p.shape}, {len(kinds)}"
        )
    index = {name: i for i, name in enumerate(LABELS)}
    out = np.empty(len(p))
    for crop in CROPS:
        rows = kinds == crop
        bona, attack = p[rows, index[label(BONA_FIDE, crop)]], p[rows, index[label(ATTACK, crop)]]
        out[rows] = np.log(np.maximum(bona, 1e-12)) - np.log(np.maximum(attack, 1e-12))
    return out


def burst_logit(logits: np.ndarray, frames: np.ndarray) -> float:
    """The burst's log-odds: per frame the mean of its crops' ``logits``, then the mean over frames
    (``frames``: each crop's frame index). nan for no crop."""
    x, f = np.asarray(logits, np.float64), np.asarray(frames)
    if len(x) != len(f):
        raise ValueError(f"{len(x)} logits for {len(f)} frame indices")
    if len(x) == 0:
        return float("nan")
    return float(np.mean([x[f == i].mean() for i in np.unique(f)]))


def burst_score(logit: float) -> float:
    """The logistic of a burst's log-odds: in [0, 1], bona fide when >= :data:`THRESHOLD`."""
    return float(1.0 / (1.0 + np.exp(-np.clip(logit, -50, 50))))


__all__ = [
    "ATTACK",
    "BONA_FIDE",
    "CONTEXT",
    "CONTEXT_SCALE",
    "CROPS",
    "CUT_SIZE",
    "FACE",
    "FACE_SCALE",
    "INPUT_SIZE",
    "LABELS",
    "RECIPE",
    "THRESHOLD",
    "burst_logit",
    "burst_score",
    "crop_logits",
    "label",
]
