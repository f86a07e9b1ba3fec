"""The service's worker loops: asyncio tasks on one event loop, none waiting on another.

- poll: keeps up to `max_concurrent_polls` claimed sources fetching, in batches, so one slow feed
  holds its own slot until its deadline and nothing else; a batch whose fetches are done frees its
  slots while its comments are triaged and recorded, so the next batch fetches meanwhile (at most
  WRITING batches at that stage: triage is CPU work, more at once would only queue);
- webhooks: the webhook processor's own loop (handlers.webhooks.WebhookProcessor);
- clocks: reminders, digests, purges and webhook pruning every tick, under the "clocks" job lease;
- outbox: two lanes sending deliveries (bot.notify.deliver_batch): one only for escalations
  (DSL and SLT), one for everything in priority order. Both are woken at once when this process
  queues something and look every second for work other processes queued.

`stop()` stops claiming, lets the deliveries and the webhook batch in hand finish (bounded),
cancels polls in flight and gives back every lease this process holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Protocol

from sqlalchemy import Engine, update
from sqlmodel import Session, col

from bot.outbox import URGENT, deliver_batch
from core.chat import ChatSurface
from core.config import Config
from handlers.webhooks import WebhookProcessor
from storage.leases import retrying
from storage.models import Delivery, Source, WebhookEvent

log = logging.getLogger(__name__)

IDLE_S = 1.0  # how often an idle worker looks for work another process queued
STOP_WAIT_S = 20.0  # how long shutdown waits for the deliveries and webhook batch in hand
WRITING = 2  # poll batches past fetching (triage, recording) at once


class Host(Protocol):
    """What the workers need from the service."""

    config: Config
    engine: Engine
    surfaces: dict[str, ChatSurface]
    owner: str
    webhooks: WebhookProcessor

    def claim_sources(self, limit: int, all_sources: bool = False, exclude: Collection[int] = ()) -> list[int]: ...

    async def poll_batch(self, ids: list[int], fetched: Callable[[], None] | None = None) -> Any: ...

    def clocks(self) -> bool: ...


class Workers:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        self.fan_lock = asyncio.Lock()
        self.wakes = [asyncio.Event(), asyncio.Event()]
        self.polls: dict[asyncio.Task[Any], list[int]] = {}
        self.fetched: set[asyncio.Task[Any]] = set()  # poll batches past fetching
        self.poll_progress = asyncio.Event()  # a batch finished fetching, or finished
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        self.host.webhooks.start(idle_s=IDLE_S)
        tick = self.host.config.service.tick.total_seconds()
        self.tasks = {
            "poll": asyncio.create_task(self._poll_loop()),
            "clocks": asyncio.create_task(self._loop("clocks", self._clocks, None, tick)),
            "outbox-urgent": asyncio.create_task(self._loop("outbox-urgent", self._lane(URGENT), self.wakes[0])),
            "outbox": asyncio.create_task(self._loop("outbox", self._lane(None), self.wakes[1])),
        }
        log.info("workers_started owner=%s workers=%s", self.host.owner, ",".join(self.tasks))

    def wake(self) -> None:
        """Something was queued: the outbox lanes look at once (safe from any thread)."""
        if self.loop.is_closed():
            return
        for event in self.wakes:
            self.loop.call_soon_threadsafe(event.set)

    async def _clocks(self) -> bool:
        if await asyncio.to_thread(self.host.clocks):
            self.wake()
        return False

    def _lane(self, max_priority: int | None) -> Callable[[], Awaitable[bool]]:
        host = self.host

        async def step() -> bool:
            stats = await deliver_batch(
                host.engine,
                config=host.config,
                surfaces=host.surfaces,
                owner=host.owner,
                lease=host.config.service.lease,
                max_priority=max_priority,
                stopping=self.stopping.is_set,
                fan_lock=self.fan_lock,
            )
            return stats.claimed > 0

        return step

    async def _loop(
        self, name: str, step: Callable[[], Awaitable[bool]], wake: asyncio.Event | None, idle_s: float = IDLE_S
    ) -> None:
        """Run `step` until stopped: straight again while it finds work, else when woken or after `idle_s`."""
        while not self.stopping.is_set():
            if wake is not None:
                wake.clear()
            try:
                busy = await step()
            except Exception:
                log.exception("worker_failed worker=%s", name)
                busy = False
            if not busy:
                await self._idle(idle_s, [wake.wait()] if wake is not None else [])

    async def _idle(self, seconds: float, also: list[Awaitable[Any]]) -> None:
        """Wait until stopping, one of `also` finishes, or `seconds` pass."""
        waits = [asyncio.ensure_future(self.stopping.wait()), *(asyncio.ensure_future(a) for a in also)]
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for waiting in waits:
            if not waiting.done():
                waiting.cancel()

    async def _poll_loop(self) -> None:
        """Claim due sources into batches while there are free fetch slots and room to write; a batch
        waiting on a slow feed holds only its own sources, and the next one is claimed meanwhile."""
        budget = self.host.config.service.max_concurrent_polls
        idle_s = min(IDLE_S, self.host.config.service.tick.total_seconds())
        while not self.stopping.is_set():
            self.poll_progress.clear()
            fetching = sum(len(ids) for task, ids in self.polls.items() if task not in self.fetched)
            free = budget - fetching
            room = len(self.fetched) < WRITING
            if room and free > 0 and (free >= max(1, budget // 4) or not fetching):
                try:
                    ids = await asyncio.to_thread(self.host.claim_sources, free)
                except Exception:
                    log.exception("worker_failed worker=poll")
                    ids = []
                if ids and not self.stopping.is_set():
                    task = asyncio.create_task(self._poll_task(ids))
                    self.polls[task] = ids
                    continue
            await self._idle(idle_s, [self.poll_progress.wait()])

    async def _poll_task(self, ids: list[int]) -> None:
        task = asyncio.current_task()
        assert task is not None

        def fetched() -> None:
            if task in self.polls:
                self.fetched.add(task)
                self.poll_progress.set()

        try:
            await self.host.poll_batch(ids, fetched)
        except Exception:
            log.exception("worker_failed worker=poll sources=%d", len(ids))
        finally:
            self.polls.pop(task, None)
            self.fetched.discard(task)
            self.poll_progress.set()

    async def stop(self) -> None:
        """Stop claiming; finish the deliveries and webhook batch in hand (at most STOP_WAIT_S);
        cancel polls in flight; give back every lease this process holds."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.host.webhooks.stopping = True
        polling = [t for t in (self.tasks.pop("poll", None), *self.polls) if t is not None]
        for task in polling:
            task.cancel()
        others = [self.host.webhooks.stop(), *self.tasks.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*others, return_exceptions=True), STOP_WAIT_S)
        except TimeoutError:
            log.warning("stop_timed_out seconds=%d: deliveries still sending are checked on restart", STOP_WAIT_S)
        await asyncio.gather(*polling, return_exceptions=True)
        released = await asyncio.to_thread(retrying, self.host.engine, self._release_all)
        log.info("workers_stopped owner=%s leases_released=%d", self.host.owner, released)

    def _release_all(self, session: Session) -> int:
        """Every lease this process holds, given back. A delivery still `sending` was cut short
        mid-send: it may have gone, so it is looked for before it is sent again."""
        total = 0
        back: list[tuple[Any, dict[str, Any]]] = [
            (Source, {}),
            (WebhookEvent, {}),
            (Delivery, {"status": "pending", "maybe_sent": True}),
        ]
        for model, extra in back:
            result = session.execute(
                update(model)
                .where(col(model.lease_owner) == self.host.owner)
                .values(lease_owner=None, lease_until=None, **extra)
                .execution_options(synchronize_session=False)
            )
            total += int(getattr(result, "rowcount", 0) or 0)
        return total
