"""The running service: four independent worker loops, none waiting on another.

- polling: passes over the due sources (handlers.poller), each source claimed with a lease;
- webhooks: stored deliveries claimed and processed (handlers.webhooks.WebhookProcessor);
- clocks: reminders, late pings and escalation re-pings, run by one process at a time (a job lease);
- outbox: notifications claimed and sent one by one, escalations first (bot.notify).

Everything they need to remember is in the database, so a restart picks up where it left off, and
several `hallmonitor run` processes on one Postgres share the work. `stop()` finishes the delivery
in hand and gives back every lease this process holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from bot.notify import deliver_pending
from core.chat import ChatSurface
from core.config import Config
from handlers.actions import run_act
from handlers.poller import Poller
from handlers.polling import PollSummary
from handlers.reminders import check_clocks
from handlers.reports.digest import queue_due_digests
from handlers.retention import run_due_purges
from handlers.triage import Classifier, default_classifier
from handlers.webhooks import WebhookProcessor, retry_pending
from monitors.base import ActRequest
from monitors.base import Source as Connector
from monitors.http import USER_AGENT
from storage.db import session_scope
from storage.leases import hold_job, retrying, worker_id
from storage.models import Outbox, Source
from storage.queries import sync_config
from storage.types import utcnow

log = logging.getLogger(__name__)

OUTBOX_IDLE_S = 0.5  # how often an idle outbox worker looks for work another process queued
STOP_WAIT_S = 30.0  # how long shutdown waits for the delivery in hand


@dataclass
class Service:
    config: Config
    engine: Engine
    surface: ChatSurface
    classifier: Classifier | None = None
    client: httpx.AsyncClient | None = None
    loop: asyncio.AbstractEventLoop | None = None
    owner: str = field(default_factory=worker_id)
    poller: Poller = field(init=False)
    webhooks: WebhookProcessor = field(init=False)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _stopping: asyncio.Event | None = None
    _purged: dict[str, date] = field(default_factory=dict)  # school id -> day of its last retention purge

    def __post_init__(self) -> None:
        if self.classifier is None:
            self.classifier = default_classifier()  # once per process: the model is cached
        configure = getattr(self.classifier, "configure", None)
        if configure is not None:
            configure(self.config)
        retrying(self.engine, lambda session: sync_config(session, config=self.config))
        self.poller = Poller(self.engine, self.config, self.classifier, owner=self.owner)
        self.webhooks = WebhookProcessor(self, owner=self.owner)

    def http_client(self) -> httpx.AsyncClient:
        if self.client is None:
            connections = self.config.service.max_concurrent_polls + 16  # room for webhooks and actions
            self.client = httpx.AsyncClient(
                timeout=self.config.service.http_timeout.total_seconds(),
                headers={"User-Agent": USER_AGENT},
                limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            )
        return self.client

    @property
    def tick_s(self) -> float:
        return self.config.service.tick.total_seconds()

    async def tick(self, *, all_sources: bool = False) -> PollSummary:
        """Each kind of work once, in turn (`hallmonitor poll`, tests); never raises."""
        summary = PollSummary()
        try:
            summary = await self.poller.run_pass(self.http_client(), all_sources=all_sources)
        except Exception:
            log.exception("poll_pass_crashed")
        try:
            await retry_pending(self)
        except Exception:
            log.exception("webhook_retry_crashed")
        try:
            await asyncio.to_thread(self._clocks)
            while (await deliver_pending(self.engine, config=self.config, surface=self.surface)).claimed:
                pass
        except Exception:
            log.exception("notify_pass_crashed")
        return summary

    def _clocks(self) -> None:
        """Reply clocks, then the digests and purges: by one process at a time (the "clocks" job lease)."""
        held: list[datetime] = []

        def work(session: Session) -> None:
            now = utcnow()
            if hold_job(session, name="clocks", owner=self.owner, now=now, lease=timedelta(seconds=self.tick_s * 4)):
                check_clocks(session, config=self.config, now=now)
                held.append(now)

        retrying(self.engine, work)
        if held:
            self.scheduled_jobs(held[0])

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
        """Start the worker loops on the running event loop."""
        self.loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self.webhooks.start(idle_s=self.tick_s)
        self._tasks = {
            "poll": asyncio.create_task(self._loop("poll", self._poll, self.tick_s)),
            "clocks": asyncio.create_task(self._loop("clocks", lambda: asyncio.to_thread(self._clocks), self.tick_s)),
            "outbox": asyncio.create_task(self._loop("outbox", self._deliver, min(self.tick_s, OUTBOX_IDLE_S))),
        }

    async def _poll(self) -> bool:
        await self.poller.run_pass(self.http_client())
        return False  # a pass covers everything due; wait a tick for more

    async def _deliver(self) -> bool:
        stopping = self._stopping
        stats = await deliver_pending(
            self.engine,
            config=self.config,
            surface=self.surface,
            owner=self.owner,
            stopping=lambda: stopping is not None and stopping.is_set(),
        )
        return stats.claimed > 0

    async def _loop(self, name: str, step: Callable[[], Awaitable[Any]], idle_s: float) -> None:
        """Run `step` until stopped; straight again while it finds work, else after `idle_s`."""
        assert self._stopping is not None
        while not self._stopping.is_set():
            try:
                busy = await step()
            except Exception:
                log.exception("worker_failed worker=%s", name)
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), idle_s)

    async def stop(self) -> None:
        """Finish the delivery and webhook batch in hand, stop polling, give back every lease."""
        if self._stopping is not None:
            self._stopping.set()
            self.poller.stopping = True
            poll = self._tasks.pop("poll", None)
            if poll is not None:
                poll.cancel()
            others = [self.webhooks.stop(), *self._tasks.values()]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*others, return_exceptions=True), STOP_WAIT_S)
            if poll is not None:
                await asyncio.gather(poll, return_exceptions=True)
            await asyncio.to_thread(self.poller.release)
        if self.client is not None:
            await self.client.aclose()

    def health(self) -> dict[str, Any]:
        with session_scope(self.engine) as session:
            sources = list(session.scalars(select(Source).where(col(Source.enabled).is_(True))))
            pending = session.scalar(select(func.count()).select_from(Outbox).where(col(Outbox.status) == "pending"))
            dead = session.scalar(select(func.count()).select_from(Outbox).where(col(Outbox.status) == "dead"))
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
