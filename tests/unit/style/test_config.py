"""Style settings: the caps and heartbeat settings, and the orderings the validator insists on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fovea.style.config import StyleSettings
from fovea.style.store import store_limits


def test_defaults_are_consistent_and_give_the_store_its_caps() -> None:
    settings = StyleSettings()
    # a lost worker's job is noticed within heartbeat_timeout_s + reaper_interval_s = 20 s (issue 9: ~30 s)
    assert settings.heartbeat_timeout_s + settings.reaper_interval_s <= 30
    assert settings.heartbeat_timeout_s >= 3 * settings.heartbeat_interval_s
    limits = store_limits(StyleSettings(max_results=7, max_stored_bytes=2 << 20, max_job_records=9))
    assert (limits.max_results, limits.max_bytes, limits.max_records) == (7, 2 << 20, 9)


def test_a_heartbeat_timeout_too_close_to_the_interval_is_refused() -> None:
    with pytest.raises(ValidationError, match="heartbeat_timeout_s >= 3 \\* heartbeat_interval_s"):
        StyleSettings(heartbeat_interval_s=5, heartbeat_timeout_s=10)


@pytest.mark.parametrize("field", ["max_results", "max_job_records"])
def test_caps_are_bounded(field: str) -> None:
    with pytest.raises(ValidationError):
        StyleSettings(**{field: 0})  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        StyleSettings(max_stored_bytes=1000)
