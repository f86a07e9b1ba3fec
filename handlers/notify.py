"""Delivering the outbox through chat surfaces.

A notification stays in the outbox until a surface accepts it; failures back
off and retry, so a chat outage delays messages but never loses them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from bot.cards import Button, Card, triage_card
from bot.surface import ChatSurface, Notification
from hallmonitor.config import Config, Role, StaffConfig
from handlers.reports.delivery import PERSONAL_KINDS
from monitors.registry import SOURCES
from storage.models import Item, Outbox, Triage
from storage.queries import mark_outbox, pending_outbox

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=30)
AUDIENCE_ROLE = {"slt": Role.SLT, "dsl": Role.DSL}
HEADLINES: dict[str, str | dict[str, str]] = {
    "escalation": {
        "dsl": "Safeguarding concern for the DSL",
        "slt": "Escalation for SLT",
        "leaders": "Escalation not yet acknowledged: please make sure someone picks this up",
    },
    "reminder": "Reply due soon",
    "late": "Reply is late",
}


@dataclass(slots=True)
class DeliveryStats:
    sent: int = 0
    failed: int = 0


def recipients(config: Config, *, school_id: str, audience: str, account_id: str | None) -> list[StaffConfig]:
    """Who a notification is for. DSL pings go to DSLs only; late pings widen to SLT and moderators."""
    if audience == "moderators":
        ids = config.account(account_id).moderators if account_id else []
        return [s for s in (config.staff_by_id(i) for i in ids) if s is not None]
    if audience == "leaders":  # the widened circle: every SLT member and the DSL
        leaders = config.staff_with_role(school_id, Role.SLT) + config.staff_with_role(school_id, Role.DSL)
        return list({p.id: p for p in leaders}.values())
    return config.staff_with_role(school_id, AUDIENCE_ROLE[audience])


def build_note(session: Session, *, config: Config, row: Outbox, surface: str, now: datetime) -> Notification:
    if row.kind in PERSONAL_KINDS:
        return PERSONAL_KINDS[row.kind](session, config=config, row=row, surface=surface, now=now)
    item = session.get(Item, row.item_id) if row.item_id else None
    if item is None:
        card = Card(
            item_id=None, kind=row.kind, headline=row.payload.get("headline", row.kind), text=row.payload.get("text")
        )
        people = recipients(
            config, school_id=row.school_id, audience=row.audience, account_id=row.payload.get("account")
        )
        return Notification(row.id or 0, row.kind, row.audience, row.school_id, card, people)
    account = config.account(item.account_id)
    school = config.school_of(account)
    latest = session.scalars(
        select(Triage).where(col(Triage.item_id) == item.id).order_by(col(Triage.id).desc()).limit(1)
    ).first()
    named = HEADLINES.get(row.kind)
    headline = named.get(row.audience) if isinstance(named, dict) else named
    in_channel = row.audience == "moderators"
    card = triage_card(
        item,
        school=school,
        account=account,
        capabilities=SOURCES[account.platform].capabilities,
        now=now,
        reasons=latest.reasons if latest else [],
        kind=row.kind,
        headline=headline,
        withhold_text=in_channel and item.category == "safeguarding",
    )
    if row.kind == "escalation":  # SLT / DSL act on the escalation, moderators on the item
        card.buttons = [Button("ack_escalation", "Acknowledge escalation")]
    people = recipients(config, school_id=school.id, audience=row.audience, account_id=account.id)
    if row.kind == "late":  # widen the circle: moderators hear it too
        people += [
            p
            for p in recipients(config, school_id=school.id, audience="moderators", account_id=account.id)
            if p not in people
        ]
    return Notification(
        outbox_id=row.id or 0,
        kind=row.kind,
        audience=row.audience,
        school_id=school.id,
        card=card,
        recipients=people,
        channel=account.channel.get(surface) if in_channel else None,
        direct_only=row.audience in ("dsl", "leaders"),
    )


async def deliver_pending(session: Session, *, config: Config, surface: ChatSurface, now: datetime) -> DeliveryStats:
    """Send what is due; on failure keep the row and back off exponentially."""
    stats = DeliveryStats()
    for row in pending_outbox(session, now=now):
        assert row.id is not None
        try:
            note = build_note(session, config=config, row=row, surface=surface.name, now=now)
            await surface.deliver(note)
        except Exception as exc:  # any surface failure: keep it, retry later
            backoff = min(MAX_BACKOFF, timedelta(seconds=15 * 2 ** min(row.attempts, 10)))
            mark_outbox(
                session,
                outbox_id=row.id,
                attempts=row.attempts + 1,
                next_attempt_at=now + backoff,
                last_error=f"{type(exc).__name__}: {exc}"[:2000],
            )
            log.warning(
                "delivery_failed outbox=%s surface=%s error=%r retry_in_s=%d",
                row.id,
                surface.name,
                exc,
                backoff.total_seconds(),
            )
            stats.failed += 1
            continue
        mark_outbox(session, outbox_id=row.id, status="sent", sent_at=now, attempts=row.attempts + 1)
        stats.sent += 1
    return stats
