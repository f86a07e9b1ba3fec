"""Delivering the outbox through chat surfaces.

A notification stays in the outbox until a surface accepts it; failures back
off and retry, so a chat outage delays messages but never loses them. A retry
loop has a cap: a notification that cannot be delivered is dead-lettered with
the sentence that says why (status "dead", counted on /healthz). Workers claim
notifications with a lease (storage.leases), escalations first, and each one is
committed as sent on its own, with no transaction open while it is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from bot.cards import item_card
from core.chat import Button, Card, ChatSurface, Notification
from core.config import AccountConfig, Config, Role, StaffConfig
from core.domain import Audience
from core.errors import HallMonitorError
from handlers.reports.delivery import PERSONAL_KINDS
from storage.db import session_scope
from storage.leases import claim_outbox, release, retrying, worker_id
from storage.models import Item, Outbox
from storage.queries import mark_outbox
from storage.types import utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=30)
MAX_ATTEMPTS = 60  # a chat outage is retried for more than a day (backoff tops out at 30 min)
UNDELIVERABLE_ATTEMPTS = 3  # a config problem: tried a few times (a config reload may fix it), then dead
CLAIM = 20  # notifications claimed at a time: a few seconds of sending
AUDIENCE_ROLE = {Audience.SLT: Role.SLT, Audience.DSL: Role.DSL}
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


class Undeliverable(HallMonitorError):
    """A notification that cannot be built from the current config: it needs a person, not a retry."""


def _account(config: Config, account_id: str) -> AccountConfig:
    try:
        return config.account(account_id)
    except KeyError:
        raise Undeliverable(
            f"account {account_id!r} is no longer in the config (deleted or renamed), so nobody can be "
            "chosen to receive this; restore the account or act on the item from the queue"
        ) from None


def recipients(config: Config, *, school_id: str, audience: str, account_id: str | None) -> list[StaffConfig]:
    """Who a notification is for. DSL pings go to DSLs only; late pings widen to SLT and moderators."""
    if audience == Audience.MODERATORS:
        ids = _account(config, account_id).moderators if account_id else []
        return [s for s in (config.staff_by_id(i) for i in ids) if s is not None]
    if audience == Audience.LEADERS:  # the widened circle: every SLT member and the DSL
        leaders = config.staff_with_role(school_id, Role.SLT) + config.staff_with_role(school_id, Role.DSL)
        return list({p.id: p for p in leaders}.values())
    return config.staff_with_role(school_id, AUDIENCE_ROLE[Audience(audience)])


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
    account = _account(config, item.account_id)
    school = config.school_of(account)
    named = HEADLINES.get(row.kind)
    headline = named.get(row.audience) if isinstance(named, dict) else named
    in_channel = row.audience == Audience.MODERATORS
    card = item_card(
        session,
        config=config,
        item=item,
        now=now,
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
        direct_only=row.audience in (Audience.DSL, Audience.LEADERS),
    )


def _failed(session: Session, *, row: Outbox, error: Exception, surface: str, now: datetime) -> None:
    """Back off and retry; after the cap (a short one when the config makes it undeliverable),
    dead-letter it with the sentence: status "dead", counted on /healthz and in `status`. Either
    way the lease is cleared and no send is in progress."""
    assert row.id is not None
    attempts, reason = row.attempts + 1, f"{type(error).__name__}: {error}"[:2000]
    cap = UNDELIVERABLE_ATTEMPTS if isinstance(error, Undeliverable) else MAX_ATTEMPTS
    free = {"lease_owner": None, "lease_until": None, "sending_at": None}
    if attempts >= cap:
        mark_outbox(session, outbox_id=row.id, status="dead", attempts=attempts, last_error=reason, **free)
        log.error("delivery_dead outbox=%s surface=%s attempts=%d error=%r", row.id, surface, attempts, str(error))
        return
    backoff = min(MAX_BACKOFF, timedelta(seconds=15 * 2 ** min(row.attempts, 10)))
    mark_outbox(session, outbox_id=row.id, attempts=attempts, next_attempt_at=now + backoff, last_error=reason, **free)
    log.warning(
        "delivery_failed outbox=%s surface=%s error=%r retry_in_s=%d",
        row.id,
        surface,
        str(error),
        backoff.total_seconds(),
    )


def _build(engine: Engine, config: Config, row: Outbox, surface: str, now: datetime) -> Notification:
    with session_scope(engine) as session:  # reads only
        return build_note(session, config=config, row=row, surface=surface, now=now)


def _mark(engine: Engine, outbox_id: int, **values: Any) -> None:
    retrying(engine, lambda session: mark_outbox(session, outbox_id=outbox_id, **values))


async def deliver_one(engine: Engine, *, config: Config, surface: ChatSurface, row: Outbox, now: datetime) -> bool:
    """Send one claimed notification: build it (a read), commit that a send is starting, send with
    no transaction open, then commit it sent and clear the lease. On failure keep it and back off.
    A row whose earlier send was cut short (`sending_at` set) goes through the surface's
    `deliver_resumed` when it has one (Slack: conversations that already have the message, found by
    its metadata, are skipped), so it is not posted twice."""
    assert row.id is not None
    try:
        note = await asyncio.to_thread(_build, engine, config, row, surface.name, now)
        send: Callable[[Notification], Awaitable[Any]] = surface.deliver  # a surface may return a reference
        if row.sending_at is not None:  # an earlier send was cut short: it may have reached some people
            resumed = getattr(surface, "deliver_resumed", None)
            log.warning(
                "delivery_interrupted_before outbox=%s surface=%s checking=%s", row.id, surface.name, bool(resumed)
            )
            send = resumed or send
        await asyncio.to_thread(_mark, engine, row.id, sending_at=now)
        reference = await send(note)
    except Exception as exc:  # any failure: keep it, retry later, up to a cap
        error = exc
        await asyncio.to_thread(
            retrying, engine, lambda s: _failed(s, row=row, error=error, surface=surface.name, now=now)
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
        return claim_outbox(session, owner=owner, now=now, lease=config.service.lease, limit=limit)

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
