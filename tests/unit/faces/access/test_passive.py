"""The passive single-frame slot: the registry refuses unknown and unavailable checks at start-up (the
anti-spoof model is known but not available, saying why), and a burst's result is its worst frame."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fovea.faces.access.core.access import DoorPolicies, DoorPolicy
from fovea.faces.access.core.passive import PASSIVE_CHECKS, check_available, summarise


def test_off_by_default_and_unavailable_checks_fail_the_start() -> None:
    assert DoorPolicy().passive == "off" and DoorPolicy().passive_check == "none"
    assert check_available("none").available
    assert (
        not PASSIVE_CHECKS["antispoof"].available and "does not separate" in PASSIVE_CHECKS["antispoof"].why
    )
    with pytest.raises(ValueError, match="'antispoof' is not available: measured"):
        DoorPolicies.from_dict({"doors": {"front": {"passive": "record", "passive_check": "antispoof"}}})
    with pytest.raises(ValueError, match="unknown passive check 'x'; known: antispoof, none"):
        check_available("x")
    # naming it while off is allowed (a file prepared for when a model is there)
    assert DoorPolicy(passive_check="antispoof").passive == "off"


def test_the_worst_frame_decides() -> None:
    r = summarise("m", np.array([0.9, 0.4, 0.8]), 0.5)
    assert r.attack and r.score == pytest.approx(0.4) and "0.400 < 0.500" in r.reason
    ok = summarise("m", np.array([0.9, 0.6]), 0.5)
    assert not ok.attack and ok.score == pytest.approx(0.6)
    none = summarise("m", np.array([]), 0.5)
    assert none.attack and math.isnan(none.score)
