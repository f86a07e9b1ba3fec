"""The weekly SLT digest: last week's figures against the week before, with charts.

`queue_due_digests` runs on every scheduler tick and queues one digest per school
per week with anything to report (an empty week with healthy sources sends none);
the outbox dedupe key makes it once, across restarts. The outbox delivers it to
the school's SLT by direct message with its charts attached. The payload holds
figures only, never an item's text, so safeguarding is counted, never quoted.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from core.config import Config, SchoolConfig
from handlers.reports import charts
from handlers.reports.figures import (
    CATEGORY_ORDER,
    Figures,
    Period,
    compute,
    fmt_hours,
    fmt_rate,
    source_problems,
    weekly_trend,
)
from storage.models import Outbox
from storage.queries import enqueue

log = logging.getLogger(__name__)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CATCH_UP = timedelta(days=2)  # after an outage, a digest up to this late is still sent
RECHECK_EMPTY = timedelta(minutes=15)  # a week found empty is looked at again this often
TREND_WEEKS = 8


def summary(f: Figures) -> dict[str, Any]:
    """The figures as plain JSON-ready values (what the outbox stores and templates read)."""
    return {
        "start": f.period.start.isoformat(),
        "end": f.period.end.isoformat(),
        "items": f.items,
        "by_category": {c: f.by_category[c] for c in CATEGORY_ORDER if f.by_category.get(c)},
        "daily": {d.isoformat(): dict(c) for d, c in sorted(f.daily.items())},
        "on_time": f.on_time,
        "late": f.late,
        "pending": f.pending,
        "on_time_rate": f.on_time_rate,
        "median_response_hours": f.median_response_hours,
        "p90_response_hours": f.p90_response_hours,
        "awaiting_at_end": f.awaiting_at_end,
        "overdue_at_end": f.overdue_at_end,
        "escalations": dict(f.escalations),
        "median_ack_minutes": f.median_ack_minutes,
        "unacknowledged_at_end": f.unacknowledged_at_end,
    }


def digest_payload(
    session: Session, *, config: Config, school: SchoolConfig, week: Period, now: datetime
) -> dict[str, Any]:
    """Everything the digest shows, for one school's week."""
    this = compute(session, config=config, schools=[school], period=week, now=now)
    before = compute(session, config=config, schools=[school], period=week.previous(), now=now)
    trend = weekly_trend(session, config=config, schools=[school], last=week, weeks=TREND_WEEKS, now=now)
    return {
        "school": school.id,
        "school_name": school.name,
        "this": summary(this),
        "before": summary(before),
        "trend": [[d.isoformat(), rate] for d, rate in trend],
        "sources": [
            {"account": p.account, "source": p.source, "state": p.state, "detail": p.detail}
            for p in source_problems(session, config=config, schools=[school], now=now)
        ],
    }


def _change(now: float | None, before: float | None, *, unit: str = "") -> str:
    if now is None or before is None:
        return ""
    delta = now - before
    return " (same as the week before)" if abs(delta) < 1e-9 else f" ({delta:+.1f}{unit} on the week before)"


def digest_text(payload: dict[str, Any]) -> str:
    """The digest as plain lines; every surface shows these and attaches the charts."""
    this, before = payload["this"], payload["before"]
    categories = ", ".join(f"{c} {n}" for c, n in this["by_category"].items()) or "none"
    escalations = ", ".join(f"{t.upper()} {n}" for t, n in sorted(this["escalations"].items())) or "none"
    ack = this["median_ack_minutes"]
    rate_now = None if this["on_time_rate"] is None else 100 * this["on_time_rate"]
    rate_before = None if before["on_time_rate"] is None else 100 * before["on_time_rate"]
    lines = [
        f"Week {this['start']} to {this['end']}: {this['items']} item(s) (week before: {before['items']})",
        f"By category: {categories}",
        f"Replies on time: {this['on_time']} of {this['on_time'] + this['late']} ({fmt_rate(this['on_time_rate'])})"
        + _change(rate_now, rate_before, unit=" points"),
        f"Time to first reply: median {fmt_hours(this['median_response_hours'])}, "
        f"90th percentile {fmt_hours(this['p90_response_hours'])} "
        f"(week before: {fmt_hours(before['median_response_hours'])}, {fmt_hours(before['p90_response_hours'])})",
        f"Still awaiting a reply at the end of the week: {this['awaiting_at_end']}, "
        f"of which overdue: {this['overdue_at_end']}",
        f"Escalations raised: {escalations}; median time to acknowledge "
        f"{'n/a' if ack is None else f'{ack:.0f} min'}; unacknowledged at the end of the week: "
        f"{this['unacknowledged_at_end']}",
    ]
    problems = payload.get("sources") or []
    lines.append(
        "Sources: all healthy"
        if not problems
        else "Sources needing attention: " + "; ".join(f"{p['source']} ({p['state']}: {p['detail']})" for p in problems)
    )
    return "\n".join(lines)


def digest_charts(payload: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(file name, PNG) for the digest: volume by category per day, and the on-time trend."""
    daily = {date.fromisoformat(d): Counter(c) for d, c in payload["this"]["daily"].items()}
    trend = [(date.fromisoformat(d), rate) for d, rate in payload["trend"]]
    return [
        ("volume-by-category.png", charts.volume_by_category(daily)),
        ("on-time-trend.png", charts.on_time_trend(trend)),
    ]


def digest_week(school: SchoolConfig, now: datetime) -> tuple[datetime, Period]:
    """The most recent digest moment at or before `now`, and the week it covers (the seven days before it)."""
    local = now.astimezone(school.zone)
    back = (local.weekday() - WEEKDAYS.index(school.digest.day)) % 7
    day = local.date() - timedelta(days=back)
    moment = datetime.combine(day, school.digest.at, tzinfo=school.zone)
    if moment > now:
        day -= timedelta(days=7)
        moment = datetime.combine(day, school.digest.at, tzinfo=school.zone)
    return moment, Period(day - timedelta(days=7), day - timedelta(days=1))


def queue_due_digests(
    session: Session, *, config: Config, now: datetime, empty: dict[str, datetime] | None = None
) -> int:
    """Queue each school's digest once its moment has come (at most CATCH_UP late); return how many.

    `empty` (digest key -> when it was found to have nothing to tell) lets a caller that asks every
    tick look again only every RECHECK_EMPTY: building the payload reads the whole week and every
    source, and a quiet week would otherwise be built again on each tick for the two days of CATCH_UP."""
    queued = 0
    for school in config.schools:
        if not school.digest.enabled:
            continue
        moment, week = digest_week(school, now)
        if now - moment > CATCH_UP:
            continue
        key = f"digest:{school.id}:{week.start.isoformat()}"
        if empty is not None and key in empty and now - empty[key] < RECHECK_EMPTY:
            continue
        if session.scalars(select(col(Outbox.id)).where(col(Outbox.dedupe_key) == key)).first() is not None:
            continue  # already queued: skip the work (the unique key would refuse it anyway)
        payload = digest_payload(session, config=config, school=school, week=week, now=now)
        if not payload["this"]["items"] and not payload["this"]["escalations"] and not payload["sources"]:
            if empty is not None:  # nothing to tell SLT yet; a source may still start failing in CATCH_UP
                empty[key] = now
            continue
        if enqueue(
            session,
            dedupe_key=key,
            school_id=school.id,
            kind="digest",
            audience="slt",
            payload={"headline": f"Weekly digest: {school.name}", **payload},
            now=now,
        ):
            queued += 1
            log.info("digest_queued school=%s week=%s", school.id, week.start.isoformat())
    return queued
