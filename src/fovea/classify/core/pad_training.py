"""The ``pad`` recipe of a training job (pure functions): a passive presentation-attack check trained on a
site's own bursts (``fovea.contracts.pad_classifier``).

What differs from a classifier of photos, and why:

- **Folds by burst** (:func:`burst_folds`): the frames of one burst are nearly the same picture; a burst
  with frames on both sides of a split would measure memory, not generalisation. Bursts go whole into one of
  :data:`CALIBRATION_FOLDS` folds, each kind and each attack species spread over them.
- **Augmentation that keeps what a screen or a print looks like** (:func:`augment_texture`): a random
  ``INPUT_SIZE`` crop of the ``CUT_SIZE`` cut *without resampling* (resizing blurs away moire, halftone and
  the pixel grid, the very evidence), mirrored half the time, and one exposure gain for all three channels
  (a screen's colour cast and a print's ink are kept: no per-channel colour shift).
- **Classes weighted equally** (:func:`balanced_weights`): bona fide and attack crops count the same in the
  loss however many of each a site has, so the head's boundary is not pushed towards the larger side.
- **Calibration by cross-fitting** (:func:`calibrate`): a head is trained without each fold and scores that
  fold's bursts (burst log-odds: the mean over frames of the mean over crops, ``pad_classifier.burst_logit``),
  so every burst is scored by a head that never saw it; the threshold with the fewest errors over all of
  them (APCER + BPCER: the ACER's minimum; ties at the middle of the widest gap between the two labels'
  scores) is moved to 0 by shifting the bona fide classes' bias of the head trained on every burst, the one
  served. (Measured: calibrated on 2 held-out bursts of each kind instead, the shift moved between -3.2 and
  +2.8 log-odds from draw to draw of the same material.)
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fovea.common.errors import InvalidArgument
from fovea.contracts.pad_classifier import ATTACK, BONA_FIDE, CROPS, LABELS, burst_logit, crop_logits

MIN_BURSTS = 8  # per kind (bona fide, attack): the learning curve's knee (README "learning curve")
RECOMMENDED_BURSTS = 16  # per kind: where the worst species' APCER levelled off on held-out renders
CALIBRATION_FOLDS = 5  # cross-fitting folds: every burst is scored by a head that never saw it
CAMERA_JITTER = 0.5  # share of augmented copies given another camera's look (camera_jitter)


def burst_kinds(labels: Sequence[str], groups: Sequence[str], min_bursts: int = MIN_BURSTS) -> dict[str, str]:
    """``{group: "bona_fide" | "attack"}`` for a ``pad`` training set. ``InvalidArgument`` when a label is
    not one of :data:`LABELS`, an image has no group, a group mixes bona fide and attack, or either kind
    has fewer than ``min_bursts`` bursts (saying how many are enough)."""
    if len(labels) != len(groups):
        raise InvalidArgument(f"{len(labels)} labels for {len(groups)} groups")
    unknown = sorted(set(labels) - set(LABELS))
    if unknown:
        raise InvalidArgument(f"the pad recipe takes the classes {', '.join(LABELS)}; got {unknown[0]!r}")
    if any(not g for g in groups):
        raise InvalidArgument("the pad recipe needs every image in a group (its burst)")
    kinds: dict[str, str] = {}
    for label_, group in zip(labels, groups, strict=True):
        kind = label_.split("-", 1)[0]
        if kinds.setdefault(group, kind) != kind:
            raise InvalidArgument(f"burst {group!r} holds both bona fide and attack crops")
    counts = {k: sum(v == k for v in kinds.values()) for k in (BONA_FIDE, ATTACK)}
    if min(counts.values()) < min_bursts:
        raise InvalidArgument(
            f"too little material: {counts[BONA_FIDE]} bona fide and {counts[ATTACK]} attack bursts; the pad "
            f"recipe needs at least {min_bursts} of each. "
            "Measured on held-out renders: 4 of each scored at chance (ACER 0.50), 8 brought the worst attack "
            f"species' APCER to 7%, 16 to 2%; aim for {RECOMMENDED_BURSTS} or more of each, from every camera "
            "and attack species the door will see and from many people (more bursts of the same people did "
            "not help a person never trained on)"
        )
    return kinds


def stratum(group: str) -> str:
    """A burst's stratum: its group's name up to the last ``/`` (``fovea faces pad-train`` names bursts
    ``bona_fide/<seq>`` and ``attack/[<species>/]<seq>``, so an attack's stratum is its species); '' for a
    name without one."""
    return group.rpartition("/")[0]


def burst_folds(kinds: Mapping[str, str], folds: int = CALIBRATION_FOLDS, seed: int = 0) -> dict[str, int]:
    """``{group: fold}``: every burst in one of ``folds`` folds (fewer when a kind has fewer bursts), chosen
    with ``seed``. Each kind's bursts, stratum by stratum (:func:`stratum`: an attack's species), are dealt
    to the folds in turn, so each fold holds bursts of both kinds and a species' bursts are spread over the
    folds: a head trained without one fold has still seen every species that has two bursts or more.
    ``ValueError`` for a kind with fewer than 2 bursts."""
    counts = [sum(k == kind for k in kinds.values()) for kind in (BONA_FIDE, ATTACK)]
    if min(counts) < 2:
        raise ValueError(f"cross-fitting needs 2 bursts of each kind at least, got {counts}")
    folds = max(2, min(folds, *counts))
    rng = np.random.default_rng(seed)
    out: dict[str, int] = {}
    position = int(rng.integers(folds))
    for kind in (BONA_FIDE, ATTACK):
        members = sorted(g for g, k in kinds.items() if k == kind)
        order = sorted((members[i] for i in rng.permutation(len(members))), key=stratum)  # stable
        for group in order:
            out[group] = position % folds
            position += 1
    return out


def camera_jitter(
    image: np.ndarray,
    rng: np.random.Generator,
    max_blur: float = 1.2,
    min_scale: float = 0.5,
    min_quality: int = 50,
) -> np.ndarray:
    """``image`` (H,W,3 uint8) as another camera might have taken it, each with probability 1/2: a Gaussian
    blur of sigma ``U(0.3, max_blur)`` px (optics, focus) or else, with probability 1/2, a phone's sharpening
    (unsharp mask, radius 2, ``U(60, 160)`` %), a lower resolution (down to ``U(min_scale, 0.9)`` of the size
    and back, bilinear), a JPEG of quality ``U(min_quality, 90)``; then sensor noise of sigma ``U(0, 3)``
    levels. Applied to bona fide and attack crops alike, it teaches the head that sharpness and compression
    are the camera's, not the presentation's."""
    from PIL import Image, ImageFilter

    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got {image.shape}")
    picture = Image.fromarray(np.asarray(image, np.uint8))
    if rng.random() < 0.5:
        picture = picture.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, max_blur))))
    elif rng.random() < 0.5:
        percent = int(rng.uniform(60, 160))
        picture = picture.filter(ImageFilter.UnsharpMask(radius=2, percent=percent, threshold=2))
    if rng.random() < 0.5:
        w, h = picture.size
        f = rng.uniform(min_scale, 0.9)
        small = picture.resize((max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.BILINEAR)
        picture = small.resize((w, h), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        buf = io.BytesIO()
        picture.save(buf, format="JPEG", quality=int(rng.integers(min_quality, 91)))
        picture = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    out = np.asarray(picture, np.float32) + rng.normal(
        0, rng.uniform(0, 3), (image.shape[0], image.shape[1], 3)
    )
    return np.asarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))


def augment_texture(
    image: np.ndarray,
    rng: np.random.Generator,
    size: int = 224,
    max_gain: float = 0.15,
    camera: float = CAMERA_JITTER,
) -> np.ndarray:
    """One augmented copy of a ``(S, S, 3)`` uint8 cut (S >= ``size``): with probability ``camera`` another
    camera's look first (:func:`camera_jitter`), then a random ``size`` crop at the cut's own scale, mirrored
    with probability 1/2, every channel times one gain in ``1 +- max_gain``."""
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < size:
        raise ValueError(f"expected an (H >= {size}, W >= {size}, 3) image, got {image.shape}")
    if camera and rng.random() < camera:
        image = camera_jitter(image, rng)
    top = int(rng.integers(0, image.shape[0] - size + 1))
    left = int(rng.integers(0, image.shape[1] - size + 1))
    crop = image[top : top + size, left : left + size].astype(np.float32)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    crop = crop * np.float32(rng.uniform(1 - max_gain, 1 + max_gain))
    return np.ascontiguousarray(np.clip(np.rint(crop), 0, 255).astype(np.uint8))


def balanced_weights(kinds: Sequence[str]) -> np.ndarray:
    """(N,) sample weights, mean 1, giving bona fide and attack samples the same total weight."""
    k = np.asarray(kinds)
    out = np.ones(len(k))
    for kind in (BONA_FIDE, ATTACK):
        n = int((k == kind).sum())
        if n:
            out[k == kind] = len(k) / (2 * n)
    return out


@dataclass(frozen=True)
class Calibration:
    """The threshold chosen on burst log-odds that no head scoring them was trained on, and the rates
    there."""

    threshold: float  # on the burst log-odds: the bias shift is -threshold
    bpcer: float
    apcer: float


def calibrate(logits: np.ndarray, bona_fide: np.ndarray) -> Calibration:
    """The threshold ``t`` on burst log-odds (bona fide when ``logit >= t``) with the fewest errors
    (APCER + BPCER) on bursts scored out of fold, ties broken at the middle of the widest gap. ``ValueError``
    when a kind has no burst."""
    x, y = np.asarray(logits, np.float64), np.asarray(bona_fide, bool)
    if not y.any() or y.all() or not np.all(np.isfinite(x)):
        raise ValueError("calibration needs finite scores of bona fide and attack bursts")
    values = np.unique(x)
    # Candidate thresholds: below everything, between each two neighbouring scores, above everything; the
    # width of the gap each sits in breaks ties (the middle of the widest gap generalises best).
    edges = np.concatenate([[values[0] - 2.0], values, [values[-1] + 2.0]])
    chosen: Calibration | None = None
    best: tuple[float, float] | None = None
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        t = float((lo + hi) / 2)
        bpcer = float((x[y] < t).mean())
        apcer = float((x[~y] >= t).mean())
        key = (bpcer + apcer, -float(hi - lo))
        if best is None or key < best:
            best, chosen = key, Calibration(t, bpcer, apcer)
    if chosen is None:  # there are always two candidates at least
        raise ValueError("no threshold")
    return chosen


def pad_calibration(
    probabilities: np.ndarray, labels: Sequence[str], groups: Sequence[str]
) -> tuple[Calibration, dict[str, Any]]:
    """The burst threshold (:func:`calibrate`) from crops' class ``probabilities`` (N, 4) with their
    ``labels`` and bursts (``groups``), and the figures a job reports (``PadCalibration``'s fields: bursts
    scored, the shift that moves the threshold to 0, APCER and BPCER per burst and per crop, APCER per attack
    species: :func:`stratum`'s last folder, ``attack`` for bursts without one)."""
    crops = np.array([label.split("-", 1)[1] for label in labels])
    bona = np.array([label.startswith(BONA_FIDE) for label in labels])
    logits = crop_logits(probabilities, crops)
    names, index = np.unique(np.asarray(groups, dtype=str), return_inverse=True)  # bursts, each crop's burst
    bursts = np.array(
        [burst_logit(logits[index == i], np.zeros(int((index == i).sum()))) for i in range(len(names))]
    )
    burst_bona = np.array([bona[index == i][0] for i in range(len(names))])
    found = calibrate(bursts, burst_bona)
    species = np.array([stratum(n).rpartition("/")[2] or ATTACK for n in names])
    passed = bursts >= found.threshold
    by_species = {
        str(sp): float(passed[~burst_bona & (species == sp)].mean())
        for sp in sorted(set(species[~burst_bona]))
    }
    return found, {
        "validation_bona_fide_bursts": int(burst_bona.sum()),
        "validation_attack_bursts": int((~burst_bona).sum()),
        "logit_shift": -found.threshold,
        "bpcer": found.bpcer,
        "apcer": found.apcer,
        "crop_bpcer": float((logits[bona] < found.threshold).mean()),
        "crop_apcer": float((logits[~bona] >= found.threshold).mean()),
        "apcer_by_species": by_species,
    }


def shift_bias(bias: np.ndarray, shift: float) -> np.ndarray:
    """The head's (4,) bias with ``shift`` added to the bona fide classes' entries."""
    b = np.asarray(bias, np.float32).copy()
    for crop in CROPS:
        b[LABELS.index(f"{BONA_FIDE}-{crop}")] += np.float32(shift)
    return b


__all__ = [
    "CALIBRATION_FOLDS",
    "MIN_BURSTS",
    "RECOMMENDED_BURSTS",
    "Calibration",
    "augment_texture",
    "camera_jitter",
    "balanced_weights",
    "burst_kinds",
    "calibrate",
    "pad_calibration",
    "burst_folds",
    "shift_bias",
    "stratum",
]
