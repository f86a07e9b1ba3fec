"""The running service: one scheduler tick polls due sources, checks reply
clocks and delivers the outbox. Everything it needs to remember is in the
database, so a restart picks up where it left off."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine, func, select
from sqlmodel import col

from bot.notify import deliver_pending
from core.chat import ChatSurface
from core.config import Config
from handlers.actions import run_act
from handlers.polling import PollSummary, poll_once
from handlers.reminders import check_clocks
from handlers.reports.digest import queue_due_digests
from handlers.retention import run_due_purges
from handlers.triage import Classifier, default_classifier
from handlers.webhooks import prune_processed, retry_pending
from monitors.base import ActRequest
from monitors.base import Source as Connector
from monitors.http import USER_AGENT, client_limits
from storage.db import session_scope
from storage.models import Delivery, Outbox, Source
from storage.queries import sync_config
from storage.types import utcnow

log = logging.getLogger(__name__)


@dataclass
class Service:
    """`surfaces` are the chat surfaces running in this process, by name (a school's deliveries
    wait for its surfaces); `surface` is a shorthand for one."""

    config: Config
    engine: Engine
    surface: ChatSurface | None = None
    surfaces: dict[str, ChatSurface] = field(default_factory=dict)
    classifier: Classifier | None = None
    scheduler: AsyncIOScheduler | None = None
    client: httpx.AsyncClient | None = None
    loop: asyncio.AbstractEventLoop | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _purged: dict[str, date] = field(default_factory=dict)  # school id -> day of its last retention purge

    def __post_init__(self) -> None:
        if self.surface is not None:
            self.surfaces.setdefault(self.surface.name, self.surface)
        if self.classifier is None:
            self.classifier = default_classifier()
        configure = getattr(self.classifier, "configure", None)
        if configure is not None:
            configure(self.config)
        with session_scope(self.engine) as session:
            sync_config(session, config=self.config)

    def http_client(self) -> httpx.AsyncClient:
        if self.client is None:
            self.client = httpx.AsyncClient(
                timeout=self.config.service.http_timeout.total_seconds(),
                headers={"User-Agent": USER_AGENT},
                limits=client_limits(self.config.service.max_concurrent_polls),
            )
        return self.client

    async def tick(self, *, all_sources: bool = False) -> PollSummary:
        """Poll what is due, check clocks, deliver notifications. Never raises."""
        async with self._lock:
            summary = PollSummary()
            try:
                summary = await poll_once(
                    self.engine,
                    config=self.config,
                    client=self.http_client(),
                    all_sources=all_sources,
                    classifier=self.classifier,
                )
            except Exception:
                log.exception("poll_pass_crashed")
            try:
                await retry_pending(self)
                await asyncio.to_thread(prune_processed, self, now=utcnow())
            except Exception:
                log.exception("webhook_retry_crashed")
            try:
                with session_scope(self.engine) as session:
                    check_clocks(session, config=self.config, now=utcnow())
                self.scheduled_jobs(utcnow())
                with session_scope(self.engine) as session:
                    await deliver_pending(session, config=self.config, surfaces=self.surfaces, now=utcnow())
            except Exception:
                log.exception("notify_pass_crashed")
            return summary

    async def deliver_updates(self, item_id: int | None) -> None:
        """Send an item's pending card updates now (an update sent twice is harmless; a new
        message never goes this way, so nobody gets a duplicate)."""
        if item_id is None:
            return
        try:
            with session_scope(self.engine) as session:
                await deliver_pending(
                    session,
                    config=self.config,
                    surfaces=self.surfaces,
                    now=utcnow(),
                    item_id=item_id,
                    updates_only=True,
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
                queue_due_digests(session, config=self.config, now=now)
        except Exception:
            log.exception("digest_pass_crashed")
        try:
            run_due_purges(self.engine, config=self.config, now=now, last_run=self._purged)
        except Exception:
            log.exception("purge_pass_crashed")

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.config.service.tick.total_seconds(),
            id="tick",
            max_instances=1,
            coalesce=True,
            next_run_time=utcnow(),
        )
        self.scheduler.start()

    async def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        if self.client is not None:
            await self.client.aclose()

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
