"""Webhook deliveries after the HTTP edge (hallmonitor.webhooks) has verified them.

Every signed delivery is stored raw first (deduplicated by a digest of platform,
account and body, so one body sent to two schools' accounts is kept for both), then
processed into items by a worker that claims it with a lease (storage.leases); a failure
leaves it pending to retry with backoff, up to MAX_ATTEMPTS, and a crashed worker's claim
runs out and the delivery is processed again. Events for pages we do not watch are logged and
ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import httpx
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from core.config import Config
from core.domain import NewItem
from core.protocols import Runtime
from handlers import pipeline
from handlers.health_notes import HealthNote, tell_moderators
from handlers.triage import Classifier
from monitors.registry import SOURCES
from storage.db import session_scope
from storage.leases import claim_webhook_events, retrying, worker_id
from storage.models import WebhookEvent
from storage.queries import insert_ignore
from storage.types import utcnow

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
RETRY_AFTER = timedelta(seconds=5)  # the first retry of a failed delivery; doubles each time


def lease_for(config: Config) -> timedelta:
    """How long a claimed delivery stays claimed: the configured lease, plus room for a platform
    look-up (one HTTP deadline) and the batch's triage."""
    return config.service.lease + config.service.http_timeout * 2


class WebhookRuntime(Runtime, Protocol):
    """The service as webhook processing sees it: it also triages, and lends its HTTP client."""

    classifier: Classifier | None

    def http_client(self) -> httpx.AsyncClient: ...


def delivery_digest(*, platform: str, account_id: str | None, body: bytes) -> str:
    """What makes a delivery the same delivery: the platform, the account it was sent to and the body."""
    return hashlib.sha256(f"{platform}\n{account_id or ''}\n".encode() + body).hexdigest()


def _event_row(*, platform: str, body: bytes, account_id: str | None) -> dict[str, object]:
    return {
        "platform": platform,
        "account_id": account_id,
        "digest": delivery_digest(platform=platform, account_id=account_id, body=body),
        "body": body,
        "received_at": utcnow(),
        "status": "pending",
        "attempts": 0,
    }


def store_event(service: WebhookRuntime, *, platform: str, body: bytes, account_id: str | None = None) -> int | None:
    """Keep the raw delivery; None if this exact delivery was stored before."""
    return store_events(service, [_event_row(platform=platform, body=body, account_id=account_id)])[0]


def store_events(service: WebhookRuntime, rows: list[dict[str, object]]) -> list[int | None]:
    """Keep several raw deliveries in one transaction (one commit, one wait for SQLite's write
    lock, however many requests arrived together); None for each stored before."""
    with session_scope(service.engine) as session:
        return [insert_ignore(session, WebhookEvent, row) for row in rows]


@dataclass(frozen=True, slots=True)
class _Delivery:
    id: int
    platform: str
    account_id: str | None
    body: bytes


Parsed = dict[str, list[NewItem]] | Exception  # account id -> items, or why it could not be read


def _claim(engine: Engine, owner: str, limit: int, now: datetime, lease: timedelta) -> list[_Delivery]:
    def work(session: Session) -> list[_Delivery]:
        events = claim_webhook_events(session, owner=owner, now=now, lease=lease, limit=limit)
        return [_Delivery(e.id, e.platform, e.account_id, e.body) for e in events if e.id is not None]

    return retrying(engine, work)


async def _parse(service: WebhookRuntime, delivery: _Delivery) -> Parsed:
    """A stored delivery's items, keyed by account, from its platform's own webhook parser."""
    config = service.config
    try:
        source = SOURCES[delivery.platform]
        if delivery.account_id is not None:
            accounts = [config.account(delivery.account_id)]
        else:
            accounts = [a for a in config.accounts if a.platform == delivery.platform]
        return await source.webhook_items(service.http_client(), accounts, json.loads(delivery.body))
    except Exception as exc:  # kept, and retried up to MAX_ATTEMPTS
        log.warning("webhook_parse_failed id=%s platform=%s error=%r", delivery.id, delivery.platform, exc)
        return exc


def _record(service: WebhookRuntime, parsed: dict[int, Parsed]) -> int:
    """Ingest and mark several deliveries in one transaction, one batched triage per account, and
    clear their leases; how many items were new. Accounts and events go in one order everywhere,
    so two workers never deadlock on each other's rows."""
    config = service.config

    def work(session: Session) -> int:
        batches: dict[str, list[NewItem]] = {}
        for found in parsed.values():
            for account_id, items in found.items() if isinstance(found, dict) else ():
                batches.setdefault(account_id, []).extend(items)
        stored = 0
        for account_id in sorted(batches):
            stats = pipeline.ingest(
                session,
                config=config,
                account=config.account(account_id),
                items=batches[account_id],
                now=utcnow(),
                classifier=service.classifier,
            )
            stored += stats.stored
        for event_id, found in sorted(parsed.items()):
            event = session.get(WebhookEvent, event_id)
            assert event is not None
            event.attempts += 1
            if isinstance(found, Exception):
                _failed(session, event, found, config)
            else:
                event.status, event.processed_at = ("processed" if found else "ignored"), utcnow()
                event.lease_owner, event.lease_until = None, None
            session.add(event)
        return stored

    stored = retrying(service.engine, work)
    log.info("webhook_processed events=%d items_new=%d", len(parsed), stored)
    return stored


def _failed(session: Session, event: WebhookEvent, error: BaseException, config: Config) -> None:
    """Count a failure; the lease now says when to try again (backing off), or the event is given
    up, and then the moderators are told (a delivery that can never be read is never silent)."""
    event.status = "failed" if event.attempts >= MAX_ATTEMPTS else "pending"
    event.error = f"{type(error).__name__}: {error}"[:2000]
    event.lease_owner = None
    event.lease_until = utcnow() + min(timedelta(minutes=5), RETRY_AFTER * 2 ** max(event.attempts - 1, 0))
    if event.status == "failed":
        _tell_given_up(session, event, config)


def _tell_given_up(session: Session, event: WebhookEvent, config: Config) -> None:
    """One health note per given-up delivery, to the moderators of the school it was sent to (of
    every school with an account on that platform when the platform sends to one app-wide address).
    It names the delivery, never its content: the body may hold a safeguarding disclosure."""
    known = {a.id: a for a in config.accounts}
    if event.account_id in known:
        schools = {config.school_of(known[event.account_id]).id}
    else:
        schools = {config.school_of(a).id for a in config.accounts if a.platform == event.platform}
    note = HealthNote(
        headline="A webhook delivery could not be read",
        text=f"A {event.platform} webhook delivery (number {event.id}) failed {event.attempts} times "
        "and is no longer retried. It is kept exactly as it arrived, so nothing in it is lost; the "
        f"log line webhook_processing_failed id={event.id} says why. Check the account's connection "
        "and what the platform is sending.",
    )
    for school_id in sorted(schools or {s.id for s in config.schools}):
        tell_moderators(
            session, school_id=school_id, key=f"webhook-given-up:{event.id}:{school_id}", note=note, now=utcnow()
        )
    log.error("webhook_given_up id=%s platform=%s attempts=%d", event.id, event.platform, event.attempts)


def _count_failure(service: WebhookRuntime, event_id: int, error: BaseException) -> str:
    with session_scope(service.engine) as session:
        event = session.get(WebhookEvent, event_id)
        if event is None:
            return "missing"
        event.attempts += 1
        _failed(session, event, error, service.config)
        session.add(event)
        log.error("webhook_processing_failed id=%s attempts=%d error=%r", event_id, event.attempts, error)
        return event.status


async def process(service: WebhookRuntime, deliveries: list[_Delivery], executor: Executor | None = None) -> int:
    """Process claimed deliveries: parse each on the event loop (a platform may need to look
    something up; no transaction is open), then ingest them together in a worker thread; if that
    fails, one at a time, so a bad delivery cannot block the rest. A delivery that keeps failing is
    marked failed. Returns how many items were new."""
    loop = asyncio.get_running_loop()
    parsed = {d.id: await _parse(service, d) for d in deliveries}
    if not parsed:
        return 0
    try:
        return await loop.run_in_executor(executor, _record, service, parsed)
    except Exception as exc:
        if len(parsed) == 1:
            await loop.run_in_executor(executor, _count_failure, service, next(iter(parsed)), exc)
            return 0
        log.warning("webhook_batch_failed events=%d retrying one by one", len(parsed), exc_info=True)
    return sum([await process(service, [delivery], executor) for delivery in deliveries])


class WebhookProcessor:
    """Webhook work for one process. Requests store the raw event and return at once; a worker
    loop claims pending events (its own and any a crashed process left behind) in batches under a
    lease and processes them. Stores (short writes; requests arriving together share one commit)
    and processing (triage, then one short write) each get one thread, so a burst of deliveries is
    never queued behind a batch's triage.
    `on_stored` is called after a batch stored new items (the service wakes its outbox)."""

    BATCH = 64
    STORE_BATCH = 500

    def __init__(
        self, service: WebhookRuntime, owner: str | None = None, on_stored: Callable[[], None] | None = None
    ) -> None:
        self.service = service
        self.owner = owner or worker_id()
        self.on_stored = on_stored
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-store")
        self.processing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-process")
        self.wake: asyncio.Event | None = None
        self.worker: asyncio.Task[None] | None = None
        self._to_store: list[tuple[dict[str, object], asyncio.Future[int | None]]] = []
        self._storer: asyncio.Task[None] | None = None
        self._step_lock: asyncio.Lock | None = None
        self.stopping = False

    @property
    def lease(self) -> timedelta:
        return lease_for(self.service.config)

    async def store(self, *, platform: str, body: bytes, account_id: str | None) -> int | None:
        """Keep one delivery and return once it is committed (None if it was stored before).
        Requests arriving while a store is in progress are committed together in the next one."""
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._to_store.append((_event_row(platform=platform, body=body, account_id=account_id), done))
        if self._storer is None or self._storer.done():
            self._storer = asyncio.get_running_loop().create_task(self._store_waiting())
        event_id = await done
        if event_id is not None and not self.stopping:
            self.start()
            assert self.wake is not None
            self.wake.set()
        return event_id

    async def _store_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        while self._to_store:
            batch, self._to_store = self._to_store[: self.STORE_BATCH], self._to_store[self.STORE_BATCH :]
            try:
                ids = await loop.run_in_executor(
                    self.executor, store_events, self.service, [row for row, _done in batch]
                )
            except Exception:
                if len(batch) == 1:
                    await self._store_alone(*batch[0])
                    continue
                log.warning("webhook_store_batch_failed deliveries=%d storing one by one", len(batch), exc_info=True)
                for row, done in batch:  # one bad delivery must not fail the others stored with it
                    await self._store_alone(row, done)
                continue
            for (_row, done), event_id in zip(batch, ids, strict=True):
                if not done.done():
                    done.set_result(event_id)

    async def _store_alone(self, row: dict[str, object], done: asyncio.Future[int | None]) -> None:
        """Store one delivery; if even that fails its request answers 500 and the platform sends it again."""
        try:
            event_id = await asyncio.get_running_loop().run_in_executor(
                self.executor, store_events, self.service, [row]
            )
        except Exception as exc:
            log.error("webhook_store_failed platform=%s digest=%s error=%r", row["platform"], row["digest"], exc)
            if not done.done():
                done.set_exception(exc)
            return
        if not done.done():
            done.set_result(event_id[0])

    def start(self, idle_s: float = 1.0) -> None:
        """Run the worker loop (idempotent); it also looks for work every `idle_s` seconds."""
        if self.worker is None or self.worker.done():
            self.stopping = False
            self.wake = self.wake or asyncio.Event()
            self.worker = asyncio.get_running_loop().create_task(self._run(idle_s))

    async def step(self, now: datetime | None = None) -> int:
        """Claim and process one batch; how many deliveries it held."""
        if self._step_lock is None:
            self._step_lock = asyncio.Lock()
        async with self._step_lock:
            loop = asyncio.get_running_loop()
            claimed = await loop.run_in_executor(
                self.processing, _claim, self.service.engine, self.owner, self.BATCH, now or utcnow(), self.lease
            )
            if claimed and await process(self.service, claimed, self.processing) and self.on_stored:
                self.on_stored()
            return len(claimed)

    async def _run(self, idle_s: float) -> None:
        assert self.wake is not None
        while not self.stopping:
            self.wake.clear()
            try:
                busy = await self.step()
            except Exception:
                log.exception("webhook_worker_failed")  # the events keep their leases and come back
                busy = 0
            if not busy and not self.stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), idle_s)

    async def drain(self) -> None:
        """Process until nothing is ready (tests)."""
        while await self.step():
            pass

    async def stop(self) -> None:
        """Finish the batch in hand, then stop (unclaimed events wait for the next start)."""
        self.stopping = True
        if self.wake is not None:
            self.wake.set()
        if self.worker is not None:
            await asyncio.gather(self.worker, return_exceptions=True)


async def retry_pending(service: WebhookRuntime, *, now: datetime | None = None) -> int:
    """Process every delivery ready to retry (a crash or an error left it pending); how many of
    them are now processed."""
    owner, ids = worker_id(), []
    lease = lease_for(service.config)
    while claimed := await asyncio.to_thread(
        _claim, service.engine, owner, WebhookProcessor.BATCH, now or utcnow(), lease
    ):
        ids += [d.id for d in claimed]
        await process(service, claimed)
    with session_scope(service.engine) as session:
        return sum(1 for i in ids if (e := session.get(WebhookEvent, i)) is not None and e.status == "processed")


def prune_processed(service: WebhookRuntime, *, now: datetime) -> int:
    """Delete raw deliveries that were processed (or ignored) longer ago than the retention setting
    `retention.webhooks` of their account's school; account-less (Meta) deliveries use the shortest
    setting of any school. Pending and failed deliveries are kept for retry and for a person to see."""
    config: Config = service.config
    shortest = min(s.retention.webhooks for s in config.schools)
    keep = {a.id: config.school_of(a).retention.webhooks for a in config.accounts}
    with session_scope(service.engine) as session:
        done = session.scalars(
            select(WebhookEvent).where(
                col(WebhookEvent.status).in_(("processed", "ignored")),
                col(WebhookEvent.processed_at) < now - min([shortest, *keep.values()]),
            )
        ).all()
        gone = 0
        for event in done:
            period = keep.get(event.account_id or "", shortest)
            if event.processed_at is not None and event.processed_at < now - period:
                session.delete(event)
                gone += 1
    if gone:
        log.info("webhooks_pruned deliveries=%d", gone)
    return gone
