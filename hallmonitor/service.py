"""The running service: the worker loops (hallmonitor.workers: polling, webhooks, clocks, outbox),
each claiming its work with leases on our own rows (storage.leases), and the one-of-each pass
that `hallmonitor poll` and the tests use (`tick`). Everything the service needs to remember is in
the database, so a restart picks up where it left off, and several `hallmonitor run` processes on
one Postgres share the work."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from bot.outbox import deliver_pending
from core.chat import ChatSurface
from core.config import Config
from hallmonitor.workers import Workers
from handlers.actions import run_act
from handlers.polling import PollSummary, poll_once
from handlers.reminders import check_clocks
from handlers.reports.digest import queue_due_digests
from handlers.retention import run_due_purges
from handlers.triage import Classifier, default_classifier
from handlers.webhooks import WebhookProcessor, prune_processed, retry_pending
from monitors.base import ActRequest
from monitors.base import Source as Connector
from monitors.http import USER_AGENT, client_limits
from storage.db import session_scope
from storage.leases import claim_sources, hold_job, release, retrying, worker_id
from storage.models import Delivery, Outbox, Source
from storage.queries import sync_config
from storage.types import utcnow

log = logging.getLogger(__name__)

CLAIM_ALL = 1000  # sources claimed at a time by `tick`
POLL_CRASH_BACKOFF = timedelta(minutes=1)  # a batch whose pass crashed is tried again after this


@dataclass
class Service:
    """`surfaces` are the chat surfaces running in this process, by name (a school's deliveries
    wait for its surfaces); `surface` is a shorthand for one. `owner` names this process in
    lease columns."""

    config: Config
    engine: Engine
    surface: ChatSurface | None = None
    surfaces: dict[str, ChatSurface] = field(default_factory=dict)
    classifier: Classifier | None = None
    client: httpx.AsyncClient | None = None
    loop: asyncio.AbstractEventLoop | None = None
    owner: str = field(default_factory=worker_id)
    webhooks: WebhookProcessor = field(init=False)
    workers: Workers | None = None
    _purged: dict[str, date] = field(default_factory=dict)  # school id -> day of its last retention purge
    _empty_digests: dict[str, datetime] = field(default_factory=dict)  # digest key -> when found empty

    def __post_init__(self) -> None:
        if self.surface is not None:
            self.surfaces.setdefault(self.surface.name, self.surface)
        if self.classifier is None:
            self.classifier = default_classifier()  # once per process: the model is cached
        configure = getattr(self.classifier, "configure", None)
        if configure is not None:
            configure(self.config)
        self._sync_config()
        self.webhooks = WebhookProcessor(self, owner=self.owner, on_stored=self.wake_outbox)

    def _sync_config(self, attempts: int = 5) -> None:
        """Mirror the config into the tables; two processes starting at once may both insert the
        same school or source, and the loser simply runs it again (it then finds the rows)."""
        for attempt in range(1, attempts + 1):
            try:
                retrying(self.engine, lambda session: sync_config(session, config=self.config))
                return
            except IntegrityError:
                if attempt == attempts:
                    raise
                log.info("config_sync_retried attempt=%d: another process synced the config at the same time", attempt)
                time.sleep(0.2 * attempt)

    def http_client(self) -> httpx.AsyncClient:
        if self.client is None:
            self.client = httpx.AsyncClient(
                timeout=self.config.service.http_timeout.total_seconds(),
                headers={"User-Agent": USER_AGENT},
                limits=client_limits(self.config.service.max_concurrent_polls),
            )
        return self.client

    @property
    def poll_lease(self) -> timedelta:
        """How long a claimed source stays claimed: the lease, plus a pass's fetch deadline and writes."""
        return self.config.service.lease + self.config.service.http_timeout * 2

    async def tick(self, *, all_sources: bool = False) -> PollSummary:
        """Each kind of work once, in turn (`hallmonitor poll`, tests): poll what is due (or every
        source), process pending webhooks, run the clocks, deliver everything due. Never raises."""
        summary = PollSummary()
        polled: set[int] = set()  # each source once per pass, however many pages of claims it takes
        try:
            while ids := await asyncio.to_thread(self.claim_sources, CLAIM_ALL, all_sources, polled):
                done = await self.poll_batch(ids)
                polled.update(ids)
                summary.sources += done.sources
                summary.seconds += done.seconds
                summary.merge(done)
        except Exception:
            log.exception("poll_pass_crashed")
        try:
            await retry_pending(self)
        except Exception:
            log.exception("webhook_retry_crashed")
        try:
            await asyncio.to_thread(self.clocks)
            await deliver_pending(self.engine, config=self.config, surfaces=self.surfaces)
        except Exception:
            log.exception("notify_pass_crashed")
        return summary

    def claim_sources(self, limit: int, all_sources: bool = False, exclude: Collection[int] = ()) -> list[int]:
        """Claim up to `limit` due sources (every enabled one with `all_sources`) for this process,
        leaving out `exclude` (those this pass has polled already). A source of an account no
        longer in the config is put off, not polled."""
        known = {a.id for a in self.config.accounts}

        def work(session: Session) -> list[int]:
            now = utcnow()
            rows = claim_sources(
                session,
                owner=self.owner,
                now=now,
                lease=self.poll_lease,
                limit=limit,
                all_enabled=all_sources,
                exclude=exclude,
            )
            gone = [s.id for s in rows if s.account_id not in known and s.id is not None]
            release(session, Source, gone, owner=self.owner, next_check_at=now + POLL_CRASH_BACKOFF)
            return [s.id for s in rows if s.account_id in known and s.id is not None]

        return retrying(self.engine, work)

    async def poll_batch(self, ids: list[int], fetched: Callable[[], None] | None = None) -> PollSummary:
        """Poll claimed sources, then give their leases back (a batch whose pass crashed waits a minute)."""
        summary, crashed = PollSummary(), False
        try:
            summary = await poll_once(
                self.engine,
                config=self.config,
                client=self.http_client(),
                classifier=self.classifier,
                source_ids=ids,
                concurrency=len(ids),
                fetched=fetched,
            )
        except Exception:
            crashed = True
            log.exception("poll_batch_crashed sources=%d", len(ids))
        finally:
            later = {"next_check_at": utcnow() + POLL_CRASH_BACKOFF} if crashed else {}
            await asyncio.to_thread(retrying, self.engine, lambda s: release(s, Source, ids, owner=self.owner, **later))
        if summary.items_stored:
            self.wake_outbox()
        return summary

    def clocks(self) -> bool:
        """Reply clocks, then the digests, purges and webhook pruning, by one process at a time (the
        "clocks" job lease, held for four ticks). False when another process holds it."""
        held: list[datetime] = []

        def work(session: Session) -> None:
            now = utcnow()
            if hold_job(session, name="clocks", owner=self.owner, now=now, lease=self.config.service.tick * 4):
                check_clocks(session, config=self.config, now=now)
                held.append(now)

        retrying(self.engine, work)
        if not held:
            return False
        self.scheduled_jobs(held[0])
        try:
            prune_processed(self, now=held[0])
        except Exception:
            log.exception("webhook_prune_crashed")
        return True

    def wake_outbox(self) -> None:
        """Something was queued: the outbox lanes look at once (a no-op before `start`)."""
        if self.workers is not None:
            self.workers.wake()

    async def deliver_updates(self, item_id: int | None) -> None:
        """Send an item's pending card updates now (an update sent twice is harmless; a new
        message never goes this way, so nobody gets a duplicate)."""
        if item_id is None:
            return
        try:
            await deliver_pending(
                self.engine, config=self.config, surfaces=self.surfaces, item_id=item_id, updates_only=True
            )
        except Exception:
            log.exception("update_pass_crashed item=%s", item_id)

    def platform_call(self, connector: Connector, request: ActRequest) -> str:
        """Run a connector's action on the service's event loop and shared client, from the worker
        thread an action runs in; with no loop running yet (CLI, tests), on a loop of its own."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # a worker thread, as it should be
        else:
            raise RuntimeError("platform_call blocks: call it from a worker thread, not from the event loop")
        loop = self.loop
        if loop is None or not loop.is_running():
            return run_act(connector, request)
        return asyncio.run_coroutine_threadsafe(connector.act(self.http_client(), request), loop).result()

    def scheduled_jobs(self, now: datetime) -> None:
        """The weekly digests and the nightly retention purge, each when its school's time has come.
        Each job is idempotent (a dedupe key, a purge of what is past its period), so a tick may call it often."""
        try:
            with session_scope(self.engine) as session:
                queue_due_digests(session, config=self.config, now=now, empty=self._empty_digests)
        except Exception:
            log.exception("digest_pass_crashed")
        try:
            run_due_purges(self.engine, config=self.config, now=now, last_run=self._purged)
        except Exception:
            log.exception("purge_pass_crashed")

    def start(self) -> None:
        """Start the worker loops on the running event loop."""
        self.loop = asyncio.get_running_loop()
        self.workers = Workers(self)
        self.workers.start()

    async def stop(self) -> None:
        """Stop the workers (finishing the deliveries in hand, giving back every lease), close the client."""
        if self.workers is not None:
            await self.workers.stop()
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    def health(self) -> dict[str, Any]:
        with session_scope(self.engine) as session:
            sources = list(session.scalars(select(Source).where(col(Source.enabled).is_(True))))
            pending = (
                session.scalar(select(func.count()).select_from(Delivery).where(col(Delivery.status) == "pending")) or 0
            )
            pending += (
                session.scalar(select(func.count()).select_from(Outbox).where(col(Outbox.status) == "pending")) or 0
            )
            dead = session.scalar(select(func.count()).select_from(Delivery).where(col(Delivery.status) == "dead")) or 0
            dead += session.scalar(select(func.count()).select_from(Outbox).where(col(Outbox.status) == "dead")) or 0
            rows = [
                {
                    "account": s.account_id,
                    "source": s.label or s.location,
                    "healthy": s.consecutive_errors == 0,
                    "consecutive_errors": s.consecutive_errors,
                    "last_error": s.last_error,
                    "error_kind": s.last_error_kind,
                    "last_success_at": s.last_success_at.isoformat() if s.last_success_at else None,
                    "last_new_item_at": s.last_new_item_at.isoformat() if s.last_new_item_at else None,
                    "next_check_at": s.next_check_at.isoformat() if s.next_check_at else None,
                }
                for s in sources
            ]
        failing = [r for r in rows if not r["healthy"]]
        return {
            "status": "degraded" if failing or dead else "ok",
            "sources": rows,
            "failing": len(failing),
            "outbox_pending": pending or 0,
            "outbox_dead": dead or 0,
        }
