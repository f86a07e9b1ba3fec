"""Delivering the outbox through chat surfaces.

A notification stays in the outbox until a surface accepts it; failures back
off and retry, so a chat outage delays messages but never loses them. Workers
claim notifications with a lease (storage.leases), escalations first, and each
one is committed as sent on its own, with no transaction open while it is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from bot.cards import triage_card
from core.chat import Button, Card, ChatSurface, Notification
from core.config import Config, Role, StaffConfig
from monitors.registry import SOURCES
from storage.db import session_scope
from storage.leases import claim_outbox, release, retrying, worker_id
from storage.models import Item, Outbox, Triage
from storage.queries import mark_outbox
from storage.types import utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=30)
CLAIM = 20  # notifications claimed at a time: a few seconds of sending
LEASE = timedelta(minutes=2)  # a claimed notification comes back if its worker dies
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
    claimed: int = 0
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


def _build(engine: Engine, config: Config, row: Outbox, surface: str, now: datetime) -> Notification:
    with session_scope(engine) as session:  # reads only
        return build_note(session, config=config, row=row, surface=surface, now=now)


def _mark(engine: Engine, outbox_id: int, **values: Any) -> None:
    retrying(engine, lambda session: mark_outbox(session, outbox_id=outbox_id, **values))


async def deliver_one(engine: Engine, *, config: Config, surface: ChatSurface, row: Outbox, now: datetime) -> bool:
    """Send one claimed notification: build it (a read), commit that a send is starting, send with
    no transaction open, then commit it sent and clear the lease. On failure keep it and back off.
    A row whose earlier send was cut short (`sending_at` set) is first asked of the surface, when
    the surface can tell (`was_delivered`), so it is not posted twice."""
    assert row.id is not None
    try:
        note = await asyncio.to_thread(_build, engine, config, row, surface.name, now)
        check = getattr(surface, "was_delivered", None)
        if row.sending_at is not None and check is not None and await check(note, row.dedupe_key):
            log.info("delivery_found_after_interruption outbox=%s surface=%s", row.id, surface.name)
            reference = None
        else:
            if row.sending_at is not None:
                log.warning("delivery_resent_after_interruption outbox=%s surface=%s", row.id, surface.name)
            await asyncio.to_thread(_mark, engine, row.id, sending_at=now)
            send: Callable[[Notification], Awaitable[Any]] = surface.deliver  # a surface may return a reference
            reference = await send(note)
    except Exception as exc:  # any surface failure: keep it, retry later
        backoff = min(MAX_BACKOFF, timedelta(seconds=15 * 2 ** min(row.attempts, 10)))
        await asyncio.to_thread(
            _mark,
            engine,
            row.id,
            attempts=row.attempts + 1,
            next_attempt_at=now + backoff,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            lease_owner=None,
            lease_until=None,
            sending_at=None,
        )
        log.warning(
            "delivery_failed outbox=%s surface=%s error=%r retry_in_s=%d",
            row.id,
            surface.name,
            exc,
            backoff.total_seconds(),
        )
        return False
    await asyncio.to_thread(
        _mark,
        engine,
        row.id,
        status="sent",
        sent_at=utcnow(),
        attempts=row.attempts + 1,
        lease_owner=None,
        lease_until=None,
        reference=reference if isinstance(reference, str) else None,
    )
    return True


async def deliver_pending(
    engine: Engine,
    *,
    config: Config,
    surface: ChatSurface,
    now: datetime | None = None,
    owner: str | None = None,
    limit: int = CLAIM,
    stopping: Callable[[], bool] = lambda: False,
) -> DeliveryStats:
    """Claim up to `limit` due notifications (escalations first) and send them one by one, each
    committed as sent on its own. When `stopping()` turns true the send in hand is finished and
    the rest are given back for another worker (or the next start)."""
    stats = DeliveryStats()
    now = now or utcnow()
    owner = owner or worker_id()

    def claim(session: Session) -> list[Outbox]:
        return claim_outbox(session, owner=owner, now=now, lease=LEASE, limit=limit)

    rows = await asyncio.to_thread(retrying, engine, claim)
    stats.claimed = len(rows)
    for n, row in enumerate(rows):
        if stopping():
            left = [r.id for r in rows[n:] if r.id is not None]
            await asyncio.to_thread(retrying, engine, lambda s, left=left: release(s, Outbox, left, owner=owner))
            break
        if await deliver_one(engine, config=config, surface=surface, row=row, now=now):
            stats.sent += 1
        else:
            stats.failed += 1
    return stats
