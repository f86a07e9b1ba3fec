"""Reminder before a reply is late; an escalation ping once it is late.

Run on every scheduler tick. The outbox's dedupe keys make this idempotent:
each item gets at most one reminder and one late ping, however often it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from core.config import Config
from handlers.pipeline import escalation_key
from handlers.routing import reping_audience
from storage.models import Item
from storage.queries import enqueue, items_due_for_clock, open_escalations

REPING_ROUNDS = 2


@dataclass(slots=True)
class ClockStats:
    reminders: int = 0
    late: int = 0
    repings: int = 0


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
    stats.repings = reping_escalations(session, config=config, now=now)
    return stats


def reping_escalations(session: Session, *, config: Config, now: datetime) -> int:
    """Nobody acknowledged an escalation in time: ping again by direct message, once per round, counted
    from when the escalation was raised. Safeguarding re-pings go to the DSL and deputy DSLs only; an
    SLT or head escalation widens to every SLT member and the head (`handlers.routing`)."""
    queued = 0
    for esc in open_escalations(session):
        item = session.get(Item, esc.item_id)
        if item is None:
            continue
        school = config.school(item.school_id)
        waited = now - esc.created_at
        for round_ in range(1, REPING_ROUNDS + 1):
            if waited >= school.escalation_reping * round_ and enqueue(
                session,
                dedupe_key=escalation_key(esc.item_id, esc.target, round_),
                school_id=school.id,
                kind="escalation",
                audience=reping_audience(esc.target),
                item_id=item.id,
                now=now,
                payload={"reason": esc.reason, "target": esc.target, "round": round_},
            ):
                queued += 1
    return queued
