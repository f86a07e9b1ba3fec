"""Sending deliveries: claimed with a lease, sent with no transaction open, committed one by one.

`deliver_batch` fans new outbox rows out (bot.notify.fan_out), claims up to `CLAIM` due
deliveries (storage.leases.claim_deliveries: DSL and SLT escalations first, then cards, then
reminders, then health), and sends them: up to `SENDS_AT_ONCE` recipients at once (a chat API's
round trip, not our CPU, is what a send waits on), each recipient's messages one by one in claim
order. Each is read, sent with no transaction open, then committed `sent` with the chat's message
reference, so a crash or a SIGTERM never makes the others go again. Deliveries that may have gone
(`maybe_sent`: a worker died mid-send, or a send failed after it may have posted) are looked for in
the chat first, together (bot.recovery; Slack finds them by the message metadata, one history scan
per conversation); a found message's missing files are uploaded, never the message again. A
surface that cannot look (Teams, the console) sends it again and logs `delivery_resent_unverifiable`.
A recipient who fails retries alone with backoff (bot.settle); after `MAX_ATTEMPTS` (or at once when
retrying cannot help) the delivery is dead and the moderators get one health alert naming the person.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from bot import recovery, settle
from bot.notify import build_note, fan_out
from bot.settle import DeliveryStats
from core.chat import ChatSurface, Found, Notification, Posted
from core.config import Config
from core.errors import FilesNotSent, Unreachable
from storage.db import session_scope
from storage.leases import claim_deliveries, release, retrying, worker_id
from storage.models import Delivery
from storage.types import utcnow

log = logging.getLogger(__name__)

CLAIM = 10  # deliveries claimed at a time: a few seconds of sending, then priorities are looked at again
SENDS_AT_ONCE = 4  # recipients sent to at once; one recipient's messages always go one by one, in order
LEASE = timedelta(minutes=2)  # a claimed delivery whose worker died is looked at again after this
URGENT = 1  # priorities up to this one: the escalations (DSL 0, SLT and head 1)
__all__ = [
    "CLAIM",
    "LEASE",
    "SENDS_AT_ONCE",
    "URGENT",
    "DeliveryStats",
    "by_recipient",
    "deliver_batch",
    "deliver_one",
    "deliver_pending",
]


def _read_note(engine: Engine, config: Config, delivery: Delivery, now: datetime) -> Notification | None:
    with session_scope(engine) as session:  # reads only: nothing is held while the note is sent
        return build_note(session, config=config, delivery=delivery, now=now)


async def deliver_one(
    engine: Engine,
    *,
    config: Config,
    surface: ChatSurface,
    delivery: Delivery,
    now: datetime,
    stats: DeliveryStats,
    looked: bool = False,
    found: Found | None = None,
) -> None:
    """Send one claimed delivery with no transaction open, then commit it sent, with where it went.
    A delivery whose earlier send may have reached its recipient (`maybe_sent`) and was not looked
    for yet (`looked`) is looked for first with the surface's `find_sent`; a surface without one
    sends again and says so in the log, since it cannot tell. A message found (`found`) is not sent
    again: only its missing files are."""
    assert delivery.id is not None
    try:
        note = await asyncio.to_thread(_read_note, engine, config, delivery, now)
        posted = None
        if note is not None:
            if not looked:
                found = await _already_sent(surface, note, delivery)
            if found is not None:
                posted = found.posted
                await recovery.complete(surface, note, found)
            else:
                posted = await surface.deliver(note)
    except FilesNotSent as exc:
        await _files_not_sent(
            engine, config=config, note=note, delivery=delivery, exc=exc, surface=surface, now=now, stats=stats
        )
        return
    except Exception as exc:  # any surface failure: this recipient retries later, alone
        error = exc
        unsent = isinstance(exc, Unreachable) or bool(getattr(surface, "unsent", lambda _e: False)(exc))

        def failed(s: Session) -> None:
            settle.failed(s, config=config, delivery=delivery, exc=error, now=now, stats=stats, unsent=unsent)

        await asyncio.to_thread(retrying, engine, failed)
        return
    await asyncio.to_thread(
        retrying,
        engine,
        lambda s: settle.sent(s, note=note, delivery=delivery, posted=posted, surface=surface.name, now=now),
    )
    stats.sent += 1


async def _files_not_sent(
    engine: Engine,
    *,
    config: Config,
    note: Notification | None,
    delivery: Delivery,
    exc: FilesNotSent,
    surface: ChatSurface,
    now: datetime,
    stats: DeliveryStats,
) -> None:
    """The message went but files did not: retried (looked for, then only the files uploaded), or,
    when retrying cannot help, recorded sent with which files did not go and why, and the moderators
    are told (a health note)."""
    if exc.retry:
        await asyncio.to_thread(
            retrying,
            engine,
            lambda s: settle.failed(s, config=config, delivery=delivery, exc=exc, now=now, stats=stats, unsent=False),
        )
        return
    log.error("delivery_files_not_sent delivery=%s target=%s error=%r", delivery.id, delivery.target, str(exc))
    posted = Posted(exc.conversation, exc.message_id)

    def refused(s: Session) -> None:
        settle.sent(
            s, note=note, delivery=delivery, posted=posted, surface=surface.name, now=now, error=str(exc)[:2000]
        )
        settle.files_refused(s, config=config, delivery=delivery, exc=exc, now=now)

    await asyncio.to_thread(retrying, engine, refused)
    stats.sent += 1


async def _already_sent(surface: ChatSurface, note: Notification, delivery: Delivery) -> Found | None:
    if not delivery.maybe_sent or note.copy is not None:  # an update sent twice is harmless
        return None
    finder = getattr(surface, "find_sent", None)
    if finder is None:
        log.warning(
            "delivery_resent_unverifiable delivery=%s surface=%s target=%s", delivery.id, surface.name, delivery.target
        )
        return None
    found: Found | None = (await finder([(note, delivery.created_at)])).get(note.delivery_id)
    log.warning(
        "delivery_interrupted delivery=%s surface=%s target=%s already_posted=%s",
        delivery.id,
        surface.name,
        delivery.target,
        found is not None,
    )
    return found


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

    args = {
        "owner": owner,
        "now": now,
        "lease": lease,
        "max_priority": max_priority,
        "item_id": item_id,
        "updates_only": updates_only,
    }

    def claim(session: Session) -> list[Delivery]:
        return claim_deliveries(session, limit=limit, surfaces=tuple(by_name), **args)  # type: ignore[arg-type]

    claimed = await asyncio.to_thread(retrying, engine, claim) if by_name else []
    looked = await recovery.look(engine, config=config, surfaces=by_name, claimed=claimed, claim_more=args, now=now)
    claimed = await asyncio.to_thread(recovery.to_work_on, engine, looked, claimed, owner=owner)
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
                    engine,
                    config=config,
                    surface=by_name[delivery.surface],
                    delivery=delivery,
                    now=now,
                    stats=stats,
                    looked=delivery.id in looked.looked,
                    found=looked.found.get(delivery.id) if delivery.id is not None else None,
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
