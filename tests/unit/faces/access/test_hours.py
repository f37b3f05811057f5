"""Opening hours: day lists and ranges, windows over midnight, time zones and daylight-saving changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from fovea.faces.access.core.hours import OpeningHours, parse_days, parse_minutes

BERLIN = ZoneInfo("Europe/Berlin")


def at(y: int, mo: int, d: int, h: int, mi: int = 0, tz: dt.tzinfo = BERLIN) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=tz)


def test_days() -> None:
    assert parse_days("mon-fri") == frozenset(range(5))
    assert parse_days("sat,sun") == parse_days("sat-sun") == frozenset({5, 6})
    assert parse_days("fri-mon") == frozenset({4, 5, 6, 0})  # wraps over the week end
    assert parse_days("daily") == frozenset(range(7))
    assert parse_days("Mon, wed") == frozenset({0, 2})
    for bad in ("", "monday", "mon-", "xyz"):
        with pytest.raises(ValueError):
            parse_days(bad)


def test_minutes() -> None:
    assert parse_minutes("07:30") == 450 and parse_minutes("24:00") == 1440 and parse_minutes("00:00") == 0
    for bad in ("7:30", "24:01", "12:60", "noon", 7):
        with pytest.raises(ValueError):
            parse_minutes(bad)  # type: ignore[arg-type]


def test_weekday_hours_in_the_doors_zone() -> None:
    hours = OpeningHours.from_dict(
        {"tz": "Europe/Berlin", "open": [{"days": "mon-fri", "from": "07:00", "to": "19:00"}]}
    )
    # 2026-11-30 is a Monday
    assert not hours.is_open(at(2026, 11, 30, 6, 59))
    assert hours.is_open(at(2026, 11, 30, 7, 0))  # from is inclusive
    assert hours.is_open(at(2026, 11, 30, 18, 59))
    assert not hours.is_open(at(2026, 11, 30, 19, 0))  # to is exclusive
    assert not hours.is_open(at(2026, 12, 5, 12))  # Saturday
    # the same instant given in another zone: 06:30 UTC = 07:30 in Berlin (CET)
    assert hours.is_open(at(2026, 11, 30, 6, 30, dt.UTC))
    assert not hours.is_open(at(2026, 11, 30, 6, 30, ZoneInfo("Asia/Tokyo")))  # 06:30 JST = Sun 22:30 Berlin
    with pytest.raises(ValueError, match="aware"):
        hours.is_open(dt.datetime(2026, 11, 30, 12))


def test_a_window_over_midnight_belongs_to_the_day_it_starts() -> None:
    hours = OpeningHours.from_dict({"tz": "UTC", "open": [{"days": "fri", "from": "22:00", "to": "06:00"}]})
    utc = dt.UTC
    assert hours.is_open(at(2026, 12, 4, 23, 0, utc))  # Friday night
    assert hours.is_open(at(2026, 12, 5, 5, 59, utc))  # Saturday early morning
    assert not hours.is_open(at(2026, 12, 5, 6, 0, utc))
    assert not hours.is_open(at(2026, 12, 4, 5, 0, utc))  # Friday early morning belongs to Thursday
    whole = OpeningHours.from_dict({"tz": "UTC", "open": [{"days": "sun", "from": "00:00", "to": "24:00"}]})
    assert whole.is_open(at(2026, 12, 6, 0, 0, utc)) and whole.is_open(at(2026, 12, 6, 23, 59, utc))
    assert not whole.is_open(at(2026, 12, 7, 0, 0, utc))


def test_daylight_saving_keeps_the_wall_clock() -> None:
    hours = OpeningHours.from_dict(
        {"tz": "Europe/Berlin", "open": [{"days": "daily", "from": "07:00", "to": "08:00"}]}
    )
    # 07:30 local is 05:30 UTC in summer (CEST) and 06:30 UTC in winter (CET)
    assert hours.is_open(dt.datetime(2026, 7, 1, 5, 30, tzinfo=dt.UTC))
    assert not hours.is_open(dt.datetime(2026, 7, 1, 6, 30, tzinfo=dt.UTC))
    assert hours.is_open(dt.datetime(2026, 1, 7, 6, 30, tzinfo=dt.UTC))
    # the day the clocks go forward (2026-03-29, 02:00 -> 03:00) and back (2026-10-25)
    assert hours.is_open(at(2026, 3, 29, 7, 15)) and hours.is_open(at(2026, 10, 25, 7, 15))


def test_no_windows_is_never_open_and_bad_windows_are_refused() -> None:
    assert not OpeningHours.from_dict({"tz": "UTC", "open": []}).is_open(at(2026, 1, 1, 12, 0, dt.UTC))
    for window, message in (
        ({"days": "mon", "from": "07:00", "to": "07:00"}, "differ"),
        ({"days": "mon", "from": "24:00", "to": "07:00"}, "before 24:00"),
        ({"days": "mon", "from": "07:00"}, "exactly"),
        ({"days": "mon", "from": "07:00", "to": "08:00", "note": "x"}, "exactly"),
    ):
        with pytest.raises(ValueError, match=message):
            OpeningHours.from_dict({"tz": "UTC", "open": [window]})
    with pytest.raises(ValueError, match="list"):
        OpeningHours.from_dict({"tz": "UTC", "open": {"days": "mon"}})
