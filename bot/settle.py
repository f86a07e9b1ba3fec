"""Recording what became of a delivery: sent (with where the chat put it, and the card copy to
update later; the moderators are told when its files were refused for good), failed (retried
alone with backoff; `maybe_sent` unless the failure certainly sent nothing), or dead after
`MAX_ATTEMPTS` (the moderators are told who cannot be reached). Each runs inside the caller's
short transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from core.chat import Notification, Posted
from core.config import Config
from core.errors import FilesNotSent, Unreachable
from handlers.health_notes import HealthNote, tell_moderators
from storage.models import CardCopy, Delivery, Item, Outbox
from storage.queries import insert_ignore, mark_delivery
from storage.types import utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=30)
MAX_ATTEMPTS = 60  # a chat outage is retried for more than a day (backoff tops out at 30 min)


@dataclass(slots=True)
class DeliveryStats:
    fanned: int = 0
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0

    def add(self, other: DeliveryStats) -> None:
        self.fanned += other.fanned
        self.claimed += other.claimed
        self.sent += other.sent
        self.failed += other.failed
        self.dead += other.dead


def sent(
    session: Session,
    *,
    note: Notification | None,
    delivery: Delivery,
    posted: Posted | None,
    surface: str,
    now: datetime,
    error: str | None = None,
) -> None:
    """Sent, with where it went (`error`: what did not go with it, such as files)."""
    assert delivery.id is not None
    mark_delivery(
        session,
        delivery_id=delivery.id,
        status="sent",
        last_error=error,
        sent_at=max(now, utcnow()),
        attempts=delivery.attempts + 1,
        lease_owner=None,
        lease_until=None,
        reference=f"{posted.conversation} {posted.message_id}" if posted else None,
    )
    if note is not None:
        remember(session, note=note, delivery=delivery, posted=posted, surface=surface, now=now)


def failed(
    session: Session,
    *,
    config: Config,
    delivery: Delivery,
    exc: Exception,
    now: datetime,
    stats: DeliveryStats,
    unsent: bool = False,
) -> None:
    """Back off and retry alone; dead after the cap. Unless the failure certainly sent nothing
    (`unsent`), the message may have reached the recipient, so the next attempt looks first
    (`maybe_sent`)."""
    assert delivery.id is not None
    error = f"{type(exc).__name__}: {exc}"[:2000]
    cap = exc.attempts if isinstance(exc, Unreachable) else MAX_ATTEMPTS
    if delivery.attempts + 1 >= cap:
        dead(session, config=config, delivery=delivery, error=error, now=now, stats=stats)
        return
    backoff = min(MAX_BACKOFF, timedelta(seconds=15 * 2 ** min(delivery.attempts, 10)))
    mark_delivery(
        session,
        delivery_id=delivery.id,
        status="pending",
        attempts=delivery.attempts + 1,
        next_attempt_at=now + backoff,
        last_error=error,
        lease_owner=None,
        lease_until=None,
        maybe_sent=delivery.maybe_sent or not unsent,
    )
    log.warning(
        "delivery_failed delivery=%s surface=%s target=%s error=%r retry_in_s=%d",
        delivery.id,
        delivery.surface,
        delivery.target,
        error,
        backoff.total_seconds(),
    )
    stats.failed += 1


def remember(
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


def dead(
    session: Session, *, config: Config, delivery: Delivery, error: str, now: datetime, stats: DeliveryStats
) -> None:
    """Dead-letter a delivery and tell the moderators, once per person and surface a day, who cannot be reached."""
    assert delivery.id is not None
    mark_delivery(
        session,
        delivery_id=delivery.id,
        status="dead",
        attempts=delivery.attempts + 1,
        last_error=error[:2000],
        lease_owner=None,
        lease_until=None,
    )
    stats.dead += 1
    row = session.get(Outbox, delivery.outbox_id)
    log.error(
        "delivery_dead delivery=%s surface=%s target=%s error=%r", delivery.id, delivery.surface, delivery.target, error
    )
    if row is None or row.kind in ("health", "update"):  # never alert about an alert, nor a card refresh
        return
    who = _who(config, delivery.target)
    item = session.get(Item, row.item_id) if row.item_id else None
    known = item is not None and item.account_id in {a.id for a in config.accounts}
    note = HealthNote(
        headline="Someone cannot be reached",
        text=f"{who} could not be sent a {row.kind} on {delivery.surface} "
        f"{'(item #' + str(row.item_id) + ') ' if row.item_id else ''}after {delivery.attempts + 1} attempt(s): "
        f"{error[:300]}",
        account=item.account_id if item and known else None,
    )
    dedupe = f"unreachable:{delivery.surface}:{delivery.target}:{now.date().isoformat()}"
    tell_moderators(session, school_id=row.school_id, key=dedupe, note=note, now=now)


def files_refused(session: Session, *, config: Config, delivery: Delivery, exc: FilesNotSent, now: datetime) -> None:
    """Tell the moderators, once per delivery, that a message went but its files were refused for
    good (a permission, a surface that cannot add files): somebody is missing a digest's charts or
    a record they asked for. The note names the person, the kind of message and the files, never
    what the files hold."""
    assert delivery.id is not None
    row = session.get(Outbox, delivery.outbox_id)
    if row is None:
        return
    note = HealthNote(
        headline="Files could not be sent",
        text=f"{_who(config, delivery.target)} was sent a {row.kind} on {delivery.surface} (delivery "
        f"{delivery.id}), but its {len(exc.missing)} file(s) ({', '.join(exc.missing)}) were refused and "
        f"are not retried. The log line delivery_files_not_sent delivery={delivery.id} says why; check "
        "the app's permission to upload files.",
    )
    tell_moderators(session, school_id=row.school_id, key=f"files-not-sent:{delivery.id}", note=note, now=now)


def _who(config: Config, target: str) -> str:
    """A delivery target as the moderators know it: a person's name, an audience or a channel."""
    kind, _, key = target.partition(":")
    person = config.staff_by_id(key) if kind == "person" else None
    return person.name if person else (f"the {key} audience" if kind == "nobody" else f"channel {key}")
