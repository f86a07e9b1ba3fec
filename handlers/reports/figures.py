"""The figures behind the weekly digest, the termly report and the web view.

A period is a run of whole calendar days in each school's own zone. Replies are
judged against the reply clock of `handlers.deadline` (weekends and the nation's
bank holidays move the deadline), as of the moment the figures are made: an
item with no reply whose deadline has passed is late; one not yet due is
pending and left out of the on-time rate. Only counts and durations leave this
module: never a comment's text or an author's name, so safeguarding is counted,
never quoted.

Percentiles: the median is the middle value (the mean of the two middle values
for an even count); the 90th percentile is by nearest rank, the ceil(0.9 n)-th
smallest value.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from core.config import Config, SchoolConfig
from handlers.deadline import reply_by
from handlers.polling import silent_for
from storage.models import Escalation, Item, Source

CATEGORY_ORDER = ("question", "complaint", "praise", "abuse", "safeguarding", "media", "spam", "other", "untriaged")


@dataclass(frozen=True, slots=True)
class Period:
    """Whole days from `start` to `end`, both included, in each school's zone."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"the period ends ({self.end}) before it starts ({self.start})")

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def bounds(self, school: SchoolConfig) -> tuple[datetime, datetime]:
        """The period as [from, to) instants for a school (local midnights)."""
        zone = school.zone
        return (
            datetime.combine(self.start, time(0), tzinfo=zone),
            datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=zone),
        )

    def previous(self) -> Period:
        """The period of the same length just before this one."""
        length = (self.end - self.start).days + 1
        return Period(self.start - timedelta(days=length), self.start - timedelta(days=1))


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def p90(values: Sequence[float]) -> float | None:
    """90th percentile by nearest rank."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[math.ceil(0.9 * len(ordered)) - 1])


@dataclass(slots=True)
class Figures:
    """Counts and durations for some schools over a period."""

    schools: list[str]
    period: Period
    by_category: Counter[str] = field(default_factory=Counter)
    daily: dict[date, Counter[str]] = field(default_factory=dict)
    on_time: int = 0
    late: int = 0
    pending: int = 0
    response_hours: list[float] = field(default_factory=list)
    awaiting_at_end: int = 0
    overdue_at_end: int = 0
    escalations: Counter[str] = field(default_factory=Counter)
    ack_minutes: list[float] = field(default_factory=list)
    unacknowledged_at_end: int = 0

    @property
    def items(self) -> int:
        return sum(self.by_category.values())

    @property
    def on_time_rate(self) -> float | None:
        judged = self.on_time + self.late
        return self.on_time / judged if judged else None

    @property
    def median_response_hours(self) -> float | None:
        return median(self.response_hours)

    @property
    def p90_response_hours(self) -> float | None:
        return p90(self.response_hours)

    @property
    def median_ack_minutes(self) -> float | None:
        return median(self.ack_minutes)


def compute(
    session: Session, *, config: Config, schools: Sequence[SchoolConfig], period: Period, now: datetime
) -> Figures:
    """Figures for `schools` (one school, or a trust's) over `period`, judged as of `now`."""
    figures = Figures(schools=[s.id for s in schools], period=period)
    figures.daily = {day: Counter() for day in period.days}
    for school in schools:
        start, end = period.bounds(school)
        as_of = min(now, end)
        for item in _items(session, school_id=school.id, start=start, end=end):
            _count_item(figures, school, item, now=now, end=as_of)
        for esc in _escalations(session, school_id=school.id, start=start, end=end):
            figures.escalations[esc.target] += 1
            if esc.acknowledged_at is not None:
                figures.ack_minutes.append((esc.acknowledged_at - esc.created_at).total_seconds() / 60)
            if esc.acknowledged_at is None or esc.acknowledged_at > as_of:
                figures.unacknowledged_at_end += 1
    return figures


def _count_item(figures: Figures, school: SchoolConfig, item: Item, *, now: datetime, end: datetime) -> None:
    category = item.category or "untriaged"
    figures.by_category[category] += 1
    figures.daily[item.received_at.astimezone(school.zone).date()][category] += 1
    if not item.needs_reply:
        return
    due = reply_by(item.received_at, nation=school.nation.value, zone=school.zone, day_end=school.working_day_end)
    if item.replied_at is not None:
        figures.response_hours.append((item.replied_at - item.received_at).total_seconds() / 3600)
        if item.replied_at <= due:
            figures.on_time += 1
        else:
            figures.late += 1
    elif due <= now:
        figures.late += 1
    else:
        figures.pending += 1
    if item.replied_at is None or item.replied_at > end:
        figures.awaiting_at_end += 1
        if due <= end:
            figures.overdue_at_end += 1


def _items(session: Session, *, school_id: str, start: datetime, end: datetime) -> list[Item]:
    stmt = select(Item).where(
        col(Item.school_id) == school_id, col(Item.received_at) >= start, col(Item.received_at) < end
    )
    return list(session.scalars(stmt))


def _escalations(session: Session, *, school_id: str, start: datetime, end: datetime) -> list[Escalation]:
    stmt = (
        select(Escalation)
        .join(Item, col(Item.id) == col(Escalation.item_id))
        .where(
            col(Item.school_id) == school_id,
            col(Escalation.created_at) >= start,
            col(Escalation.created_at) < end,
        )
    )
    return list(session.scalars(stmt))


@dataclass(frozen=True, slots=True)
class SourceHealth:
    account: str
    source: str
    state: str  # failing / silent
    detail: str


def source_problems(
    session: Session, *, config: Config, schools: Sequence[SchoolConfig], now: datetime
) -> list[SourceHealth]:
    """Enabled sources of these schools that are failing now or have gone quiet for longer than usual."""
    wanted = {s.id for s in schools}
    out: list[SourceHealth] = []
    for source in session.scalars(select(Source).where(col(Source.enabled).is_(True)).order_by(col(Source.id))):
        try:
            account = config.account(source.account_id)
        except KeyError:
            continue
        if config.school_of(account).id not in wanted:
            continue
        name = source.label or source.location
        if source.consecutive_errors:
            kind = source.last_error_kind or "error"
            out.append(
                SourceHealth(account.id, name, "failing", f"{source.consecutive_errors} failed check(s), {kind}")
            )
            continue
        silent = silent_for(session, source=source, configured=account.silent_after, now=now)
        if silent is not None:
            out.append(SourceHealth(account.id, name, "silent", f"nothing new for {silent[0].days} day(s)"))
    return out


def fmt_hours(value: float | None) -> str:
    """Hours as a reader wants them: minutes under an hour, else hours to one decimal; n/a for none."""
    if value is None:
        return "n/a"
    return f"{value * 60:.0f} min" if value < 1 else f"{value:.1f} h"


def fmt_rate(value: float | None) -> str:
    """A fraction as a whole percentage; n/a for none."""
    return "n/a" if value is None else f"{100 * value:.0f}%"


def weekly_trend(
    session: Session, *, config: Config, schools: Sequence[SchoolConfig], last: Period, weeks: int, now: datetime
) -> list[tuple[date, float | None]]:
    """(week start, on-time rate) for `weeks` periods of `last`'s length ending with `last`."""
    periods = [last]
    while len(periods) < weeks:
        periods.insert(0, periods[0].previous())
    return [
        (p.start, compute(session, config=config, schools=schools, period=p, now=now).on_time_rate) for p in periods
    ]
