"""The in-process door row of ``pad-eval --passive`` (``pad_passive.in_process_door``): what a door with
``pad: require``, ``pad_undetermined: passive``, ``passive: require`` decides from the geometry answer, the
passive score and whether the faces are one person."""

from __future__ import annotations

import math

from fovea.faces.access.core.pad import PadResult, PadVerdict
from fovea.faces.tools.pad_passive import FTA, in_process_door


def _pad(verdict: PadVerdict) -> PadResult:
    return PadResult(verdict, 0.2, 0.12, ("r",), 5, 5)


def test_the_door_row_follows_the_doors_order() -> None:
    live, flat, undecided = _pad(PadVerdict.BONA_FIDE), _pad(PadVerdict.ATTACK), _pad(PadVerdict.UNDECIDED)
    assert in_process_door(live, 0.9, 5) == "bona_fide"
    assert in_process_door(undecided, 0.9, 5) == "bona_fide"  # undetermined: the passive check decides
    assert in_process_door(live, 0.1, 5) == "attack"  # a replayed turn: live, but the passive check says no
    assert in_process_door(flat, 0.9, 5) == "attack"  # flat is an attack whatever the passive check says
    assert in_process_door(live, 0.9, 0) == FTA and in_process_door(live, math.nan, 5) == FTA
    # faces not one person (the door's mixed_faces): an attack; below the match threshold they are one
    assert in_process_door(live, 0.9, 5, spread=0.7, match_threshold=0.6) == "attack"
    assert in_process_door(live, 0.9, 5, spread=0.5, match_threshold=0.6) == "bona_fide"
    assert in_process_door(live, 0.5, 5) == "bona_fide"  # the threshold is bona fide's (score >= 0.5)
