"""Delivering the outbox through chat surfaces, one delivery per recipient.

`fan_out` turns each new outbox row into deliveries: a channel post or one direct message
per person, on each of the school's surfaces, or one update per posted copy of the item's
card. `deliver_pending` sends what is due, each delivery on its own: a recipient who fails
retries alone with backoff, nobody else hears it twice, and after `MAX_ATTEMPTS` (or at
once when retrying cannot help) the delivery is dead and the moderators get one health alert
naming the person who cannot be reached. Every view is decided by `bot.view.view`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.view import headline_for, view
from core.chat import Card, ChatSurface, CopyRef, Notification, Place, Posted
from core.config import Config
from core.domain import Audience
from core.errors import Unreachable
from handlers.reports.delivery import PERSONAL_KINDS
from handlers.routing import people_for
from storage.models import CardCopy, Delivery, Item, Outbox
from storage.queries import (
    add_deliveries,
    card_copies,
    due_deliveries,
    enqueue,
    insert_ignore,
    mark_delivery,
    mark_outbox,
    pending_outbox,
)
from storage.types import utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=30)
MAX_ATTEMPTS = 60  # a chat outage is retried for more than a day (backoff tops out at 30 min)
UNDELIVERABLE_ATTEMPTS = 3  # a config problem: tried a few times (a config reload may fix it), then dead
CHANNEL_AUDIENCES = frozenset({Audience.MODERATORS})


@dataclass(slots=True)
class DeliveryStats:
    fanned: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0


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
        added += add_deliveries(session, outbox=row, targets=targets, now=now)
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


async def deliver_pending(
    session: Session,
    *,
    config: Config,
    surfaces: Mapping[str, ChatSurface] | ChatSurface,
    now: datetime,
    item_id: int | None = None,
    updates_only: bool = False,
) -> DeliveryStats:
    """Fan out new outbox rows, then send every due delivery on these surfaces, each on its own
    (only one item's, and only card updates, when asked)."""
    by_name = {surfaces.name: surfaces} if not isinstance(surfaces, Mapping) else dict(surfaces)
    stats = DeliveryStats(fanned=fan_out(session, config=config, now=now))
    session.commit()
    due = due_deliveries(session, now=now, surfaces=tuple(by_name), item_id=item_id)
    for delivery in (d for d in due if not updates_only or d.target.startswith("copy:")):
        await _send(session, config=config, surface=by_name[delivery.surface], delivery=delivery, now=now, stats=stats)
        session.commit()
    return stats


async def _send(
    session: Session, *, config: Config, surface: ChatSurface, delivery: Delivery, now: datetime, stats: DeliveryStats
) -> None:
    assert delivery.id is not None
    try:
        note = build_note(session, config=config, delivery=delivery, now=now)
        posted = await surface.deliver(note) if note is not None else None
    except Exception as exc:  # any surface failure: this recipient retries later, alone
        error = f"{type(exc).__name__}: {exc}"[:2000]
        cap = exc.attempts if isinstance(exc, Unreachable) else MAX_ATTEMPTS
        if delivery.attempts + 1 >= cap:
            _dead(session, config=config, delivery=delivery, error=error, now=now, stats=stats)
            return
        backoff = min(MAX_BACKOFF, timedelta(seconds=15 * 2 ** min(delivery.attempts, 10)))
        mark_delivery(
            session,
            delivery_id=delivery.id,
            attempts=delivery.attempts + 1,
            next_attempt_at=now + backoff,
            last_error=error,
        )
        log.warning(
            "delivery_failed delivery=%s surface=%s target=%s error=%r retry_in_s=%d",
            delivery.id,
            surface.name,
            delivery.target,
            error,
            backoff.total_seconds(),
        )
        stats.failed += 1
        return
    mark_delivery(session, delivery_id=delivery.id, status="sent", sent_at=now, attempts=delivery.attempts + 1)
    if note is not None:
        _remember(session, note=note, delivery=delivery, posted=posted, surface=surface.name, now=now)
    stats.sent += 1


def _remember(
    session: Session, *, note: Notification, delivery: Delivery, posted: Posted | None, surface: str, now: datetime
) -> None:
    """Keep where a card went, so later changes update this copy too."""
    if note.copy is not None:
        copy = session.get(CardCopy, note.copy.copy_id)
        if copy is not None:
            copy.updated_at = now
            session.add(copy)
        return
    if posted is None or note.card.item_id is None:
        return
    insert_ignore(
        session,
        CardCopy,
        {
            "item_id": note.card.item_id,
            "surface": surface,
            "place": note.place.value,
            "viewer": note.recipient.id if note.recipient else None,
            "kind": note.kind,
            "audience": note.audience,
            "conversation": posted.conversation,
            "message_id": posted.message_id,
            "created_at": now,
        },
    )


def _dead(
    session: Session, *, config: Config, delivery: Delivery, error: str, now: datetime, stats: DeliveryStats
) -> None:
    """Dead-letter a delivery and tell the moderators, once per person and surface a day, who cannot be reached."""
    assert delivery.id is not None
    mark_delivery(
        session, delivery_id=delivery.id, status="dead", attempts=delivery.attempts + 1, last_error=error[:2000]
    )
    stats.dead += 1
    row = session.get(Outbox, delivery.outbox_id)
    log.error(
        "delivery_dead delivery=%s surface=%s target=%s error=%r", delivery.id, delivery.surface, delivery.target, error
    )
    if row is None or row.kind in ("health", "update"):  # never alert about an alert, nor a card refresh
        return
    kind, _, key = delivery.target.partition(":")
    person = config.staff_by_id(key) if kind == "person" else None
    who = person.name if person else (f"the {key} audience" if kind == "nobody" else f"channel {key}")
    item = session.get(Item, row.item_id) if row.item_id else None
    known = item is not None and item.account_id in {a.id for a in config.accounts}
    enqueue(
        session,
        dedupe_key=f"unreachable:{delivery.surface}:{delivery.target}:{now.date().isoformat()}",
        school_id=row.school_id,
        kind="health",
        audience=Audience.MODERATORS,
        now=now,
        payload={
            "headline": "Someone cannot be reached",
            "text": f"{who} could not be sent a {row.kind} on {delivery.surface} "
            f"{'(item #' + str(row.item_id) + ') ' if row.item_id else ''}after {delivery.attempts + 1} attempt(s): "
            f"{error[:300]}",
            "account": item.account_id if item and known else None,
        },
    )
