"""The reply clock (ashgrove policy, MONITORING).

A comment received on a working day is due 24 hours later. One received at a
weekend or on a bank holiday of the school's nation is due at the end of the
next working day (17:00 school time by default). Instants are compared in UTC;
calendar days and the working-day end are read in the school's zone, so the
clock changes are handled by zoneinfo, not by arithmetic on offsets.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

REPLY_WINDOW = timedelta(hours=24)
LONDON = ZoneInfo("Europe/London")

# holidays.UK subdivision codes per nation
SUBDIVISIONS = {
    "england": "ENG",
    "wales": "WLS",
    "scotland": "SCT",
    "northern-ireland": "NIR",
}


@lru_cache(maxsize=64)
def _bank_holidays(nation: str, year: int) -> holidays.HolidayBase:
    try:
        subdiv = SUBDIVISIONS[nation]
    except KeyError:
        raise ValueError(f"unknown nation {nation!r}; use one of {', '.join(SUBDIVISIONS)}") from None
    return holidays.country_holidays("GB", subdiv=subdiv, years=year)


def bank_holiday_name(day: date, nation: str) -> str | None:
    """The bank holiday's name on `day` in `nation`, or None."""
    return _bank_holidays(nation, day.year).get(day)


def is_working_day(day: date, nation: str) -> bool:
    return day.weekday() < 5 and bank_holiday_name(day, nation) is None


def next_working_day(day: date, nation: str) -> date:
    """The first working day strictly after `day`."""
    day += timedelta(days=1)
    while not is_working_day(day, nation):
        day += timedelta(days=1)
    return day


def reply_by(
    received: datetime,
    *,
    nation: str = "england",
    zone: ZoneInfo = LONDON,
    day_end: time = time(17, 0),
) -> datetime:
    """When a reply is due for an item received at `received` (timezone-aware).

    Returns an aware datetime in the school's zone.
    """
    if received.tzinfo is None or received.utcoffset() is None:
        raise ValueError("received time has no UTC offset; give one, e.g. 2026-03-28T10:00:00+00:00")
    local = received.astimezone(zone)
    if is_working_day(local.date(), nation):
        return (received + REPLY_WINDOW).astimezone(zone)
    due_day = next_working_day(local.date(), nation)
    # fold=0 and a 17:00 end never fall in a gap; zoneinfo picks the right offset.
    return datetime.combine(due_day, day_end, tzinfo=zone)


def why_due(received: datetime, *, nation: str = "england", zone: ZoneInfo = LONDON) -> str:
    """A short reason for the deadline, for cards ("received on Easter Monday")."""
    local = received.astimezone(zone)
    holiday = bank_holiday_name(local.date(), nation)
    if holiday:
        return f"received on a bank holiday ({holiday}): due end of next working day"
    if local.weekday() >= 5:
        return "received at the weekend: due end of next working day"
    return "received on a working day: due within 24 hours"
