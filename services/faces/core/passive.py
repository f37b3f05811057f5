"""The slot for single-frame passive presentation-attack checks: a model that looks at one face crop and
says how likely it is a live face rather than a print or a screen.

A door's policy names the check (``passive_check``, a key of :data:`PASSIVE_CHECKS`) and what to do with it
(``passive``: ``off``, ``record``: run and record, ``require``: an attack verdict on any frame is DENY).
Every check is off by default. A check is built once at start-up from the registry; a name that is not
there fails the start with the known names.

Pure: a check's ``score`` takes face crops (H,W,3 uint8 RGB, the detector's box) and returns one score per
crop; where the model runs is the check's business (see ``fovea.faces.passive``).
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
}


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


__all__ = ["PASSIVE_CHECKS", "PASSIVE_POLICIES", "PassiveCheck", "PassiveEntry", "PassiveResult", "summarise"]
