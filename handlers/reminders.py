"""Reminder before a reply is late; an escalation ping once it is late.

Run on every scheduler tick. The outbox's dedupe keys make this idempotent:
each item gets at most one reminder and one late ping, however often it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from hallmonitor.config import Config
from storage.queries import enqueue, items_due_for_clock


@dataclass(slots=True)
class ClockStats:
    reminders: int = 0
    late: int = 0


def check_clocks(session: Session, *, config: Config, now: datetime) -> ClockStats:
    stats = ClockStats()
    longest = max((s.reminder_before for s in config.schools), default=timedelta(hours=2))
    for item in items_due_for_clock(session, before=now + longest):
        assert item.reply_by is not None and item.id is not None
        school = config.school(item.school_id)
        if now >= item.reply_by:
            kind, audience = "late", "slt"
        elif now >= item.reply_by - school.reminder_before:
            kind, audience = "reminder", "moderators"
        else:
            continue
        queued = enqueue(
            session,
            dedupe_key=f"{kind}:{item.id}",
            school_id=school.id,
            kind=kind,
            audience=audience,
            item_id=item.id,
            now=now,
        )
        if queued and kind == "late":
            stats.late += 1
        elif queued:
            stats.reminders += 1
    return stats
