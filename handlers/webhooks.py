"""Webhook deliveries after the HTTP edge (hallmonitor.webhooks) has verified them.

Every signed delivery is stored raw first (deduplicated by a digest of the
body), then processed into items; a failure leaves it pending for the scheduler
to retry, up to MAX_ATTEMPTS. Events for pages we do not watch are logged and
ignored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import httpx
from sqlalchemy import Engine, select
from sqlmodel import col

from core.domain import NewItem
from core.protocols import Runtime
from handlers import pipeline
from handlers.triage import Classifier
from monitors.registry import SOURCES
from storage.db import session_scope
from storage.models import WebhookEvent
from storage.queries import insert_ignore
from storage.types import utcnow

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5


class WebhookRuntime(Runtime, Protocol):
    """The service as webhook processing sees it: it also triages, and lends its HTTP client."""

    classifier: Classifier | None

    def http_client(self) -> httpx.AsyncClient: ...


def store_event(service: WebhookRuntime, *, platform: str, body: bytes, account_id: str | None = None) -> int | None:
    """Keep the raw delivery; None if this exact delivery was stored before."""
    with session_scope(service.engine) as session:
        return insert_ignore(
            session,
            WebhookEvent,
            {
                "platform": platform,
                "account_id": account_id,
                "digest": hashlib.sha256(body).hexdigest(),
                "body": body.decode("utf-8", errors="replace"),
                "received_at": utcnow(),
                "status": "pending",
                "attempts": 0,
            },
        )


@dataclass(frozen=True, slots=True)
class _Delivery:
    id: int
    platform: str
    account_id: str | None
    body: str


Parsed = dict[str, list[NewItem]] | Exception  # account id -> items, or why it could not be read


def _pending(engine: Engine, event_ids: list[int]) -> list[_Delivery]:
    with session_scope(engine) as session:
        events = [session.get(WebhookEvent, i) for i in event_ids]
        return [
            _Delivery(e.id, e.platform, e.account_id, e.body)
            for e in events
            if e is not None and e.id is not None and e.status == "pending"
        ]


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


def _record(service: WebhookRuntime, parsed: dict[int, Parsed]) -> None:
    """Ingest and mark several deliveries in one transaction, one batched triage per account.
    Events are marked only after ingesting, so the write lock is not held while triage runs."""
    config = service.config
    with session_scope(service.engine) as session:
        batches: dict[str, list[NewItem]] = {}
        for found in parsed.values():
            for account_id, items in found.items() if isinstance(found, dict) else ():
                batches.setdefault(account_id, []).extend(items)
        stored = 0
        for account_id, items in batches.items():
            account = config.account(account_id)
            stats = pipeline.ingest(
                session, config=config, account=account, items=items, now=utcnow(), classifier=service.classifier
            )
            stored += stats.stored
        for event_id, found in parsed.items():
            event = session.get(WebhookEvent, event_id)
            assert event is not None
            event.attempts += 1
            if isinstance(found, Exception):
                _failed(event, found)
            else:
                event.status, event.processed_at = ("processed" if found else "ignored"), utcnow()
            session.add(event)
        log.info("webhook_processed events=%d items_new=%d", len(parsed), stored)


def _failed(event: WebhookEvent, error: BaseException) -> None:
    event.status = "failed" if event.attempts >= MAX_ATTEMPTS else "pending"
    event.error = f"{type(error).__name__}: {error}"[:2000]


def _count_failure(engine: Engine, event_id: int, error: BaseException) -> str:
    with session_scope(engine) as session:
        event = session.get(WebhookEvent, event_id)
        if event is None:
            return "missing"
        event.attempts += 1
        _failed(event, error)
        session.add(event)
        log.error("webhook_processing_failed id=%s attempts=%d error=%r", event_id, event.attempts, error)
        return event.status


async def process(service: WebhookRuntime, event_ids: list[int], executor: Executor | None = None) -> None:
    """Process stored deliveries: parse each on the event loop (a platform may need to look
    something up), then ingest them together in a worker thread; if that fails, one at a time,
    so a bad delivery cannot block the rest. A delivery that keeps failing is marked failed."""
    loop = asyncio.get_running_loop()
    deliveries = await loop.run_in_executor(executor, _pending, service.engine, event_ids)
    parsed = {d.id: await _parse(service, d) for d in deliveries}
    if not parsed:
        return
    try:
        await loop.run_in_executor(executor, _record, service, parsed)
        return
    except Exception as exc:
        if len(parsed) == 1:
            await loop.run_in_executor(executor, _count_failure, service.engine, next(iter(parsed)), exc)
            return
        log.warning("webhook_batch_failed events=%d retrying one by one", len(parsed), exc_info=True)
    for event_id in parsed:
        await process(service, [event_id], executor)


class WebhookProcessor:
    """One writer for webhook work: SQLite serialises writes anyway, and threads fighting for the
    lock sleep in its busy handler. Requests store the raw event here and return; a background
    task processes what is queued in batches."""

    BATCH = 64

    def __init__(self, service: WebhookRuntime) -> None:
        self.service = service
        # Stores (short writes) and batch processing (triage first, then one short write) each get
        # one thread, so a burst of deliveries is never queued behind a batch's triage.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-store")
        self.processing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-process")
        self.queue: asyncio.Queue[int] | None = None
        self.worker: asyncio.Task[None] | None = None

    async def store(self, *, platform: str, body: bytes, account_id: str | None) -> int | None:
        loop = asyncio.get_running_loop()
        event_id = await loop.run_in_executor(
            self.executor, lambda: store_event(self.service, platform=platform, body=body, account_id=account_id)
        )
        if event_id is not None:
            self._ensure_worker()
            assert self.queue is not None
            self.queue.put_nowait(event_id)
        return event_id

    def _ensure_worker(self) -> None:
        if self.worker is None or self.worker.done():
            self.queue = self.queue or asyncio.Queue()
            self.worker = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        assert self.queue is not None
        while True:
            ids = [await self.queue.get()]
            while not self.queue.empty() and len(ids) < self.BATCH:
                ids.append(self.queue.get_nowait())
            try:
                await process(self.service, ids, self.processing)
            except Exception:
                log.exception("webhook_worker_failed events=%s", ids)  # they stay pending; the scheduler retries
            finally:
                for _ in ids:
                    self.queue.task_done()

    async def drain(self) -> None:
        """Wait until everything queued so far is processed (tests, shutdown)."""
        if self.queue is not None:
            await self.queue.join()


def _pending_ids(engine: Engine, limit: int) -> list[int]:
    with session_scope(engine) as session:
        query = (
            select(WebhookEvent)
            .where(col(WebhookEvent.status) == "pending")
            .order_by(col(WebhookEvent.id))
            .limit(limit)
        )
        return [e.id for e in session.scalars(query) if e.id is not None]


async def retry_pending(service: WebhookRuntime, *, limit: int = 100) -> int:
    """Process deliveries that a crash or error left pending, one at a time; how many now are processed."""
    ids = await asyncio.to_thread(_pending_ids, service.engine, limit)
    for event_id in ids:
        await process(service, [event_id])
    with session_scope(service.engine) as session:
        return sum(1 for i in ids if (e := session.get(WebhookEvent, i)) is not None and e.status == "processed")
