"""Sending deliveries: claimed with a lease, sent with no transaction open, committed one by one.

`deliver_batch` fans new outbox rows out (bot.notify.fan_out), claims up to `CLAIM` due
deliveries (storage.leases.claim_deliveries: DSL and SLT escalations first, then cards, then
reminders, then health), and sends them: up to `SENDS_AT_ONCE` recipients at once (a chat API's
round trip, not our CPU, is what a send waits on), each recipient's messages one by one in claim
order. Each is read, sent with no transaction open, then committed `sent` with the chat's message
reference, so a crash or a SIGTERM never makes the others go again. A delivery whose worker died
mid-send comes back with `maybe_sent` and is looked for in the chat first (`find_sent`: Slack
finds it by the message metadata); a surface that cannot look (Teams, the console) sends it again
and logs `delivery_resent_unverifiable`.
A recipient who fails retries alone with backoff; after `MAX_ATTEMPTS` (or at once when retrying
cannot help) the delivery is dead and the moderators get one health alert naming the person.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from bot.notify import build_note, fan_out
from core.chat import ChatSurface, Notification, Posted
from core.config import Config
from core.domain import Audience
from core.errors import Unreachable
from storage.db import session_scope
from storage.leases import claim_deliveries, release, retrying, worker_id
from storage.models import CardCopy, Delivery, Item, Outbox
from storage.queries import enqueue, insert_ignore, mark_delivery
from storage.types import utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=30)
MAX_ATTEMPTS = 60  # a chat outage is retried for more than a day (backoff tops out at 30 min)
CLAIM = 10  # deliveries claimed at a time: a few seconds of sending, then priorities are looked at again
SENDS_AT_ONCE = 4  # recipients sent to at once; one recipient's messages always go one by one, in order
LEASE = timedelta(minutes=2)  # a claimed delivery whose worker died is looked at again after this
URGENT = 1  # priorities up to this one: the escalations (DSL 0, SLT and head 1)


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


def _read_note(engine: Engine, config: Config, delivery: Delivery, now: datetime) -> Notification | None:
    with session_scope(engine) as session:  # reads only: nothing is held while the note is sent
        return build_note(session, config=config, delivery=delivery, now=now)


async def deliver_one(
    engine: Engine, *, config: Config, surface: ChatSurface, delivery: Delivery, now: datetime, stats: DeliveryStats
) -> None:
    """Send one claimed delivery with no transaction open, then commit it sent, with where it went.
    A delivery whose earlier send may have reached its recipient (`maybe_sent`) is first looked for
    with the surface's `find_sent` (Slack: by the message metadata); a surface without one sends
    again and says so in the log, since it cannot tell."""
    assert delivery.id is not None
    try:
        note = await asyncio.to_thread(_read_note, engine, config, delivery, now)
        posted = None
        if note is not None:
            posted = await _already_sent(surface, note, delivery)
            if posted is None:
                posted = await surface.deliver(note)
    except Exception as exc:  # any surface failure: this recipient retries later, alone
        error = exc
        unsent = isinstance(exc, Unreachable) or bool(getattr(surface, "unsent", lambda _e: False)(exc))
        await asyncio.to_thread(
            retrying,
            engine,
            lambda s: _failed(s, config=config, delivery=delivery, exc=error, now=now, stats=stats, unsent=unsent),
        )
        return
    await asyncio.to_thread(
        retrying, engine, lambda s: _sent(s, note=note, delivery=delivery, posted=posted, surface=surface.name, now=now)
    )
    stats.sent += 1


async def _already_sent(surface: ChatSurface, note: Notification, delivery: Delivery) -> Posted | None:
    if not delivery.maybe_sent or note.copy is not None:  # an update sent twice is harmless
        return None
    finder = getattr(surface, "find_sent", None)
    if finder is None:
        log.warning(
            "delivery_resent_unverifiable delivery=%s surface=%s target=%s", delivery.id, surface.name, delivery.target
        )
        return None
    found: Posted | None = await finder(note, since=delivery.created_at)
    log.warning(
        "delivery_interrupted delivery=%s surface=%s target=%s already_posted=%s",
        delivery.id,
        surface.name,
        delivery.target,
        found is not None,
    )
    return found


def _sent(
    session: Session,
    *,
    note: Notification | None,
    delivery: Delivery,
    posted: Posted | None,
    surface: str,
    now: datetime,
) -> None:
    assert delivery.id is not None
    mark_delivery(
        session,
        delivery_id=delivery.id,
        status="sent",
        sent_at=max(now, utcnow()),
        attempts=delivery.attempts + 1,
        lease_owner=None,
        lease_until=None,
        reference=f"{posted.conversation} {posted.message_id}" if posted else None,
    )
    if note is not None:
        _remember(session, note=note, delivery=delivery, posted=posted, surface=surface, now=now)


def _failed(
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
        _dead(session, config=config, delivery=delivery, error=error, now=now, stats=stats)
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


async def deliver_batch(
    engine: Engine,
    *,
    config: Config,
    surfaces: Mapping[str, ChatSurface] | ChatSurface,
    now: datetime | None = None,
    owner: str | None = None,
    lease: timedelta = LEASE,
    limit: int = CLAIM,
    max_priority: int | None = None,
    item_id: int | None = None,
    updates_only: bool = False,
    stopping: Callable[[], bool] = lambda: False,
    fan_lock: asyncio.Lock | None = None,
    fan: bool = True,
) -> DeliveryStats:
    """Fan out new outbox rows (one fan-out at a time under `fan_lock`), then claim up to `limit`
    due deliveries on these surfaces (lowest priority number first) and send them, several recipients
    at once and each recipient's in order, each delivery committed on its own. The rest of a batch
    is given back, unsent, when `stopping()` turns true
    or half the lease has gone (so nothing is sent after its claim could have run out)."""
    by_name = {surfaces.name: surfaces} if not isinstance(surfaces, Mapping) else dict(surfaces)
    now = now or utcnow()
    owner = owner or worker_id()
    stats = DeliveryStats()
    if fan:
        async with fan_lock or asyncio.Lock():
            stats.fanned = await asyncio.to_thread(retrying, engine, lambda s: fan_out(s, config=config, now=now))

    def claim(session: Session) -> list[Delivery]:
        return claim_deliveries(
            session,
            owner=owner,
            now=now,
            lease=lease,
            limit=limit,
            surfaces=tuple(by_name),
            max_priority=max_priority,
            item_id=item_id,
            updates_only=updates_only,
        )

    claimed = await asyncio.to_thread(retrying, engine, claim) if by_name else []
    stats.claimed = len(claimed)
    give_back_at = time.monotonic() + lease.total_seconds() / 2
    left: list[int] = []
    slots = asyncio.Semaphore(SENDS_AT_ONCE)

    async def send_in_order(recipient: list[Delivery]) -> None:
        async with slots:
            for n, delivery in enumerate(recipient):
                if stopping() or time.monotonic() > give_back_at:
                    left.extend(d.id for d in recipient[n:] if d.id is not None)
                    return
                await deliver_one(
                    engine, config=config, surface=by_name[delivery.surface], delivery=delivery, now=now, stats=stats
                )

    await asyncio.gather(*(send_in_order(r) for r in by_recipient(claimed)))
    if left:
        await asyncio.to_thread(retrying, engine, lambda s: release(s, Delivery, left, owner=owner, status="pending"))
    return stats


def by_recipient(claimed: list[Delivery]) -> list[list[Delivery]]:
    """The claimed deliveries per recipient (surface and channel or person), each in claim order
    (priority, then age), recipients in the order of their most urgent delivery."""
    groups: dict[tuple[str, str], list[Delivery]] = {}
    for delivery in claimed:
        groups.setdefault((delivery.surface, delivery.target), []).append(delivery)
    return list(groups.values())


async def deliver_pending(
    engine: Engine,
    *,
    config: Config,
    surfaces: Mapping[str, ChatSurface] | ChatSurface,
    now: datetime | None = None,
    item_id: int | None = None,
    updates_only: bool = False,
) -> DeliveryStats:
    """Fan out once, then deliver everything due on these surfaces (only one item's, and only card
    updates, when asked), batch after batch; a failed delivery waits for its backoff, so this ends.
    What the sending itself queues (an alert about someone unreachable) goes on the next call."""
    total = DeliveryStats()
    owner = worker_id()
    while True:
        stats = await deliver_batch(
            engine,
            config=config,
            surfaces=surfaces,
            now=now,
            owner=owner,
            item_id=item_id,
            updates_only=updates_only,
            fan=not total.claimed,
        )
        total.add(stats)
        if not stats.claimed:
            return total


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
