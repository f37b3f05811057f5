"""When a door opens: weekly windows in the door's time zone (IANA names, ``zoneinfo``).

``{"tz": "Europe/Berlin", "open": [{"days": "mon-fri", "from": "07:00", "to": "19:00"},
{"days": "sat", "from": "09:00", "to": "13:00"}]}``: ``days`` is a day (``mon`` .. ``sun``), a range
(``mon-fri``; ``fri-mon`` wraps over the week end), a comma list of those, or ``daily``; ``from`` and ``to``
are local wall-clock times ``HH:MM`` (``to`` may be ``24:00``). A window whose ``to`` is not after its
``from`` runs over midnight: ``{"days": "fri", "from": "22:00", "to": "06:00"}`` is open Friday 22:00 to
Saturday 06:00. ``from`` is inclusive, ``to`` exclusive. Across a daylight-saving change the wall clock
decides (07:00 is 07:00 local on both sides of it).

Pure: the instant is an argument (an aware ``datetime``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
DAY_MINUTES = 24 * 60


def parse_days(text: str) -> frozenset[int]:
    """``"mon-fri"``, ``"sat,sun"``, ``"fri-mon"``, ``"daily"`` -> weekday numbers (Monday 0)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"days must be a text like 'mon-fri', got {text!r}")
    if text.strip().lower() == "daily":
        return frozenset(range(7))
    out: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, sep, last = part.partition("-")
        if first not in DAYS or (sep and last not in DAYS):
            raise ValueError(f"unknown days {part!r}; use {', '.join(DAYS)}, ranges like mon-fri, or daily")
        a = DAYS.index(first)
        b = DAYS.index(last) if sep else a
        out.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(out)


def parse_minutes(text: str) -> int:
    """``"HH:MM"`` (00:00-24:00) -> minutes since midnight."""
    if not isinstance(text, str) or not _TIME.match(text):
        raise ValueError(f"times are 'HH:MM' from 00:00 to 24:00, got {text!r}")
    h, m = text.split(":")
    return int(h) * 60 + int(m)


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # weekdays the window starts on (Monday 0)
    start: int  # minutes since local midnight, inclusive
    end: int  # exclusive; <= start: the window ends the next day

    def contains(self, weekday: int, minute: int) -> bool:
        if self.start < self.end:
            return weekday in self.days and self.start <= minute < self.end
        return (weekday in self.days and minute >= self.start) or (
            (weekday - 1) % 7 in self.days and minute < self.end
        )


@dataclass(frozen=True)
class OpeningHours:
    tz: str  # IANA name, e.g. "Europe/Berlin"
    windows: tuple[Window, ...]

    @classmethod
    def from_dict(cls, raw: Any) -> OpeningHours:
        """``{"tz": ..., "open": [{"days", "from", "to"}, ...]}``; ``ValueError`` saying what is wrong
        (unknown keys too)."""
        if not isinstance(raw, Mapping):
            raise ValueError('hours must be an object {"tz": ..., "open": [...]}')
        unknown = set(raw) - {"tz", "open"}
        if unknown or "tz" not in raw or "open" not in raw:
            raise ValueError(f'hours needs exactly the keys "tz" and "open", got {sorted(raw)}')
        tz = raw["tz"]
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ValueError(f"unknown time zone {tz!r} (an IANA name like 'Europe/Berlin')") from exc
        if not isinstance(raw["open"], list):
            raise ValueError('hours "open" must be a list of {"days", "from", "to"} windows')
        windows = []
        for i, w in enumerate(raw["open"]):
            if not isinstance(w, Mapping) or set(w) != {"days", "from", "to"}:
                raise ValueError(f'hours window {i} must have exactly "days", "from", "to", got {w!r}')
            start, end = parse_minutes(w["from"]), parse_minutes(w["to"])
            if start in (DAY_MINUTES, end):
                raise ValueError(f"hours window {i}: 'from' must be before 24:00 and differ from 'to'")
            windows.append(Window(parse_days(w["days"]), start, end % DAY_MINUTES))
        return cls(tz, tuple(windows))

    def is_open(self, at: dt.datetime) -> bool:
        """Whether the door opens at ``at`` (an aware datetime, any zone). No windows: never open."""
        if at.tzinfo is None:
            raise ValueError("need an aware datetime (with a time zone)")
        local = at.astimezone(ZoneInfo(self.tz))
        minute = local.hour * 60 + local.minute
        return any(w.contains(local.weekday(), minute) for w in self.windows)

    def describe(self, at: dt.datetime) -> str:
        """``at`` in the door's zone, for a DENY's reason."""
        local = at.astimezone(ZoneInfo(self.tz))
        return f"{DAYS[local.weekday()]} {local:%H:%M} {self.tz}"


__all__ = ["DAYS", "OpeningHours", "Window", "parse_days", "parse_minutes"]
