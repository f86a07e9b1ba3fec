"""The outbox's recipients and messages, one delivery per recipient.

`fan_out` turns each new outbox row into deliveries, each with its priority (`priority_of`): a
channel post or one direct message per person, on each of the school's surfaces, or one update
per posted copy of the item's card. `build_note` makes one delivery's notification, its card
decided for its recipient and place by `bot.view.view`. Sending is `bot.outbox`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.view import headline_for, view
from core.chat import Card, CopyRef, Notification, Place
from core.config import Config
from core.domain import Audience
from core.errors import Unreachable
from handlers.reports.delivery import PERSONAL_KINDS
from handlers.routing import people_for
from storage.models import CardCopy, Delivery, Item, Outbox
from storage.queries import (
    add_deliveries,
    card_copies,
    mark_outbox,
    pending_outbox,
)
from storage.types import utcnow

log = logging.getLogger(__name__)

UNDELIVERABLE_ATTEMPTS = 3  # a config problem: tried a few times (a config reload may fix it), then dead
CHANNEL_AUDIENCES = frozenset({Audience.MODERATORS})


def priority_of(row: Outbox) -> int:
    """Lower goes first: DSL escalations, SLT and head escalations, cards and card updates and what
    someone just asked for, reminders and late pings and digests, health alerts."""
    if row.kind == "escalation":
        return 0 if row.audience == Audience.DSL else 1
    if row.kind in ("card", "update", "weblink", "export"):
        return 2
    if row.kind == "health":
        return 4
    return 3


def _gone(account_id: str) -> Unreachable:
    return Unreachable(
        f"account {account_id!r} is no longer in the config (deleted or renamed), so nobody can be "
        "chosen to receive this; restore the account or act on the item from the queue",
        attempts=UNDELIVERABLE_ATTEMPTS,
    )


def targets_for(config: Config, session: Session, row: Outbox) -> list[tuple[str, str]]:
    """(surface, target) pairs for one outbox row; see `storage.models.Delivery.target`."""
    if row.kind == "update":
        return [(c.surface, f"copy:{c.id}") for c in card_copies(session, item_id=row.item_id or 0)]
    if row.kind in PERSONAL_KINDS:  # digests, records, sign-in links: each person by direct message only
        personal = PERSONAL_KINDS[row.kind](session, config=config, row=row, surface="chat", now=utcnow())
        direct = [f"person:{p.id}" for p in personal.people] or [f"nobody:{row.audience}"]
        return [(surface, t) for surface in config.surfaces_of(row.school_id) for t in direct]
    item = session.get(Item, row.item_id) if row.item_id else None
    account_id = item.account_id if item else row.payload.get("account")
    if account_id and account_id not in {a.id for a in config.accounts}:
        raise _gone(account_id)
    people = people_for(config, school_id=row.school_id, audience=row.audience, account_id=account_id)
    channel_too = row.audience in CHANNEL_AUDIENCES or row.kind == "late"  # late: SLT by DM, moderators in channel
    direct = [f"person:{p.id}" for p in people] or [f"nobody:{row.audience}"]
    out: list[tuple[str, str]] = []
    for surface in config.surfaces_of(row.school_id):
        channel = _channel(config, surface, account_id) if channel_too else None
        if channel:
            out.append((surface, f"channel:{channel}"))
        elif row.audience in CHANNEL_AUDIENCES:  # no channel on this surface: each moderator by DM
            out += [(surface, f"person:{p.id}") for p in people]
        if row.audience not in CHANNEL_AUDIENCES:
            out += [(surface, target) for target in direct]
    return out


def _channel(config: Config, surface: str, account_id: str | None) -> str | None:
    if surface == "console":
        return "#moderators"
    return config.account(account_id).channel.get(surface) if account_id else None


def fan_out(session: Session, *, config: Config, now: datetime) -> int:
    """Write the deliveries of every outbox row not yet fanned out; returns how many were new. A row
    nobody can be chosen for is retried a few times, then dead-lettered with the sentence why."""
    added = 0
    for row in pending_outbox(session, now=now):
        assert row.id is not None
        try:
            targets = targets_for(config, session, row)
        except Unreachable as exc:
            attempts = row.attempts + 1
            done = attempts >= exc.attempts
            mark_outbox(
                session,
                outbox_id=row.id,
                attempts=attempts,
                status="dead" if done else "pending",
                next_attempt_at=now + timedelta(seconds=15 * 2**attempts),
                last_error=f"Unreachable: {exc}"[:2000],
            )
            log.log(
                logging.ERROR if done else logging.WARNING, "outbox_undeliverable outbox=%s error=%r", row.id, str(exc)
            )
            continue
        added += add_deliveries(session, outbox=row, targets=targets, now=now, priority=priority_of(row))
    return added


def build_note(session: Session, *, config: Config, delivery: Delivery, now: datetime) -> Notification | None:
    """The notification for one delivery, its card decided for its recipient and place; None when
    there is nothing left to send (the item or the posted copy is gone)."""
    row = session.get(Outbox, delivery.outbox_id)
    assert row is not None and delivery.id is not None
    kind, _, key = delivery.target.partition(":")
    if kind == "nobody":
        raise Unreachable(f"nobody at school {row.school_id!r} has a role for the {key} audience; add one to [[staff]]")
    if row.kind in PERSONAL_KINDS:
        return _personal(session, config=config, row=row, delivery=delivery, staff_id=key, now=now)
    item = session.get(Item, row.item_id) if row.item_id else None
    if item is not None and item.account_id not in {a.id for a in config.accounts}:
        raise _gone(item.account_id)
    copy: CardCopy | None = session.get(CardCopy, int(key)) if kind == "copy" else None
    if kind == "copy" and copy is None:
        return None
    viewer_id = copy.viewer if copy is not None else (key if kind == "person" else None)
    person = config.staff_by_id(viewer_id) if viewer_id else None
    if viewer_id and person is None:
        if copy is not None:
            return None  # their copy stays as it was: nobody else's view goes into their messages
        raise Unreachable(f"{key} is no longer on the staff list")
    place = Place.DIRECT if person is not None else Place.CHANNEL
    if delivery.surface == "console":  # a terminal anyone can read: shared, whoever the message is for
        place = Place.CONSOLE
    card = _card(session, config, row, copy, person, place, now)
    if card is None:
        return None
    return Notification(
        delivery_id=delivery.id,
        kind=row.kind,
        audience=row.audience,
        school_id=row.school_id,
        card=card,
        place=place,
        recipient=person,
        channel=(copy.conversation if copy else key) if person is None else None,
        copy=CopyRef(copy.id or 0, copy.conversation, copy.message_id) if copy else None,
    )


def _personal(
    session: Session, *, config: Config, row: Outbox, delivery: Delivery, staff_id: str, now: datetime
) -> Notification:
    person = config.staff_by_id(staff_id)
    if person is None:
        raise Unreachable(f"{staff_id} is no longer on the staff list")
    personal = PERSONAL_KINDS[row.kind](session, config=config, row=row, surface=delivery.surface, now=now)
    place = Place.CONSOLE if delivery.surface == "console" else Place.DIRECT
    return Notification(
        delivery_id=delivery.id or 0,
        kind=row.kind,
        audience=row.audience,
        school_id=row.school_id,
        card=personal.card,
        place=place,
        recipient=person,
        attachments=personal.attachments,
    )


def _card(
    session: Session, config: Config, row: Outbox, copy: CardCopy | None, person: object, place: Place, now: datetime
) -> Card | None:
    item = session.get(Item, row.item_id) if row.item_id else None
    if item is None:
        if row.item_id:
            return None
        headline = row.payload.get("headline", row.kind)
        return Card(item_id=None, kind=row.kind, headline=headline, text=row.payload.get("text"))
    kind, audience = (copy.kind, copy.audience) if copy else (row.kind, row.audience)
    viewer = person if person is not None else None
    card = view(session, config, item, viewer, place, now=now, kind=kind, audience=audience)  # type: ignore[arg-type]
    if card is not None:
        card.headline = headline_for(kind, audience, card.headline)
    return card
