"""Webhook deliveries after the HTTP edge (hallmonitor.webhooks) has verified them.

Every signed delivery is stored raw first (deduplicated by a digest of platform,
account and body, so one body sent to two schools' accounts is kept for both), then
processed into items; a failure leaves it pending for the scheduler
to retry, up to MAX_ATTEMPTS. Events for pages we do not watch are logged and
ignored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlmodel import col

from core.config import AccountConfig, Config
from core.domain import NewItem
from core.protocols import Runtime
from handlers import pipeline
from handlers.triage import Classifier
from monitors import instagram
from monitors.facebook import comment_to_item
from storage.db import session_scope
from storage.models import WebhookEvent
from storage.queries import insert_ignore
from storage.types import utcnow

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5


class WebhookRuntime(Runtime, Protocol):
    """The service as webhook processing sees it: it also triages."""

    classifier: Classifier | None


def delivery_digest(*, platform: str, account_id: str | None, body: bytes) -> str:
    """What makes a delivery the same delivery: the platform, the account it was sent to and the body."""
    return hashlib.sha256(f"{platform}\n{account_id or ''}\n".encode() + body).hexdigest()


def store_event(service: WebhookRuntime, *, platform: str, body: bytes, account_id: str | None = None) -> int | None:
    """Keep the raw delivery; None if this exact delivery was stored before."""
    with session_scope(service.engine) as session:
        return insert_ignore(
            session,
            WebhookEvent,
            {
                "platform": platform,
                "account_id": account_id,
                "digest": delivery_digest(platform=platform, account_id=account_id, body=body),
                "body": body.decode("utf-8", errors="replace"),
                "received_at": utcnow(),
                "status": "pending",
                "attempts": 0,
            },
        )


def _meta_items(config: Config, platform: str, payload: dict[str, Any]) -> dict[str, list[NewItem]]:
    """Account id -> new items from a Meta webhook payload; unknown pages are logged and skipped."""
    pages = {w.url: a for a in config.accounts if a.platform == platform for w in a.watch}
    out: dict[str, list[NewItem]] = {}
    for entry in payload.get("entry") or []:
        account = pages.get(str(entry.get("id")))
        if account is None:
            log.warning("webhook_unknown_page platform=%s page=%s", platform, entry.get("id"))
            continue
        for change in entry.get("changes") or []:
            value = change.get("value") or {}
            if platform == "instagram":
                item = _instagram_item(account, change.get("field"), value)
                if item is not None:
                    out.setdefault(account.id, []).append(item)
                continue
            if (
                change.get("field") != "feed"
                or value.get("item") != "comment"
                or value.get("verb") not in ("add", "edited")
            ):
                continue  # reactions, removals, posts by the page itself
            created = value.get("created_time")
            comment = {
                "id": value.get("comment_id"),
                "message": value.get("message"),
                "from": value.get("from") or {},
                "parent": {"id": value.get("parent_id")},
                "post_id": value.get("post_id"),
                "created_time": datetime.fromtimestamp(int(created), UTC).strftime("%Y-%m-%dT%H:%M:%S%z")
                if isinstance(created, int | float)
                else created,
                "permalink_url": (value.get("post") or {}).get("permalink_url"),
            }
            item = comment_to_item(comment)
            if item is not None:
                out.setdefault(account.id, []).append(item)
    return out


def _instagram_item(account: AccountConfig, field: str | None, value: dict[str, Any]) -> NewItem | None:
    if field == "comments":
        comment = {
            "id": value.get("id"),
            "text": value.get("text"),
            "from": value.get("from") or {},
            "media": value.get("media") or {},
            "timestamp": None,
        }
        return instagram.comment_to_item(comment)
    if field == "mentions" and value.get("comment_id"):
        source = instagram.InstagramSource(account, account.watch[0])
        return source.mentioned_comment(str(value["comment_id"]))
    return None


def _generic_items(payload: Any, account: AccountConfig) -> list[NewItem]:
    rows = payload if isinstance(payload, list) else [payload]
    kind = account.watch[0].kind if account.watch else "message"
    items = []
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            continue
        ident = str(row.get("id") or hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()[:32])
        created = None
        if isinstance(row.get("created_at"), str):
            try:
                created = datetime.fromisoformat(row["created_at"])
                created = created if created.tzinfo else None
            except ValueError:
                created = None
        items.append(
            NewItem(
                external_id=ident,
                kind=kind,
                text=row["text"],
                author=row.get("author"),
                url=row.get("url"),
                created_at=created,
                raw=row,
            )
        )
    return items


def _event_items(config: Config, event: WebhookEvent) -> dict[str, list[NewItem]]:
    """A stored delivery's items, keyed by the account they belong to."""
    payload = json.loads(event.body)
    if event.platform == "webhook":
        account = config.account(event.account_id or "")
        return {account.id: _generic_items(payload, account)}
    return _meta_items(config, event.platform, payload)


def process_event(service: WebhookRuntime, event_id: int) -> str:
    """Turn a stored delivery into items (once). Returns the event's new status."""
    config: Config = service.config
    with session_scope(service.engine) as session:
        event = session.get(WebhookEvent, event_id)
        if event is None or event.status in ("processed", "ignored"):
            return event.status if event else "missing"
        event.attempts += 1
        try:
            batches = _event_items(config, event)
            stored = 0
            for account_id, items in batches.items():
                stats = pipeline.ingest(
                    session,
                    config=config,
                    account=config.account(account_id),
                    items=items,
                    now=utcnow(),
                    classifier=service.classifier,
                )
                stored += stats.stored
            event.status = "processed" if batches else "ignored"
            event.processed_at = utcnow()
            log.info("webhook_processed id=%s platform=%s items_new=%d", event.id, event.platform, stored)
        except Exception as exc:  # keep the raw event; the scheduler retries it
            session.rollback()
            event = session.get(WebhookEvent, event_id)
            assert event is not None
            event.attempts += 1
            event.status = "failed" if event.attempts >= MAX_ATTEMPTS else "pending"
            event.error = f"{type(exc).__name__}: {exc}"[:2000]
            log.exception("webhook_processing_failed id=%s attempts=%d", event_id, event.attempts)
        session.add(event)
        return event.status


def process_batch(service: WebhookRuntime, event_ids: list[int]) -> None:
    """Process several stored deliveries in one transaction with one batched triage per account;
    if anything in the batch fails, fall back to one event at a time so a bad one cannot block the rest.
    Events are marked only after ingesting, so the write lock is not held while triage runs."""
    config: Config = service.config
    try:
        with session_scope(service.engine) as session:
            events = [e for e in (session.get(WebhookEvent, i) for i in event_ids) if e and e.status == "pending"]
            batches: dict[str, list[NewItem]] = {}
            outcome: dict[int, str] = {}
            for event in events:
                found = _event_items(config, event)
                for account_id, items in found.items():
                    batches.setdefault(account_id, []).extend(items)
                outcome[event.id or 0] = "processed" if found else "ignored"
            for account_id, items in batches.items():
                pipeline.ingest(
                    session,
                    config=config,
                    account=config.account(account_id),
                    items=items,
                    now=utcnow(),
                    classifier=service.classifier,
                )
            for event in events:
                event.status, event.processed_at = outcome[event.id or 0], utcnow()
                event.attempts += 1
                session.add(event)
    except Exception:
        log.warning("webhook_batch_failed events=%d retrying one by one", len(event_ids), exc_info=True)
        for event_id in event_ids:
            process_event(service, event_id)


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
        loop = asyncio.get_running_loop()
        while True:
            ids = [await self.queue.get()]
            while not self.queue.empty() and len(ids) < self.BATCH:
                ids.append(self.queue.get_nowait())
            try:
                await loop.run_in_executor(self.processing, process_batch, self.service, ids)
            except Exception:
                log.exception("webhook_worker_failed events=%s", ids)  # they stay pending; the scheduler retries
            finally:
                for _ in ids:
                    self.queue.task_done()

    async def drain(self) -> None:
        """Wait until everything queued so far is processed (tests, shutdown)."""
        if self.queue is not None:
            await self.queue.join()


def retry_pending(service: WebhookRuntime, *, limit: int = 100) -> int:
    """Process deliveries that a crash or error left pending."""
    with session_scope(service.engine) as session:
        ids = [
            e.id
            for e in session.scalars(
                select(WebhookEvent)
                .where(col(WebhookEvent.status) == "pending")
                .order_by(col(WebhookEvent.id))
                .limit(limit)
            )
            if e.id is not None
        ]
    return sum(process_event(service, i) == "processed" for i in ids)


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
