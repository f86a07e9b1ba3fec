"""The outbox sends to several recipients at once (a chat API's round trip is what a send waits
on) and to each recipient in order, each delivery committed on its own. Real SQLite (or Postgres),
the real outbox; the surface is a local stand-in."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from sqlalchemy import Engine
from sqlmodel import col, select

from bot.outbox import deliver_batch
from core.chat import Notification, Posted
from core.config import Config
from storage.db import session_scope
from storage.models import Delivery
from storage.queries import enqueue
from tests.helpers import RecordingSurface


class Overlapping(RecordingSurface):
    """The console surface; each recipient's first message waits until some other recipient's
    send has started (so sending one recipient at a time would never get past it)."""

    def __init__(self) -> None:
        super().__init__("console")
        self.started: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.order: dict[str, list[str]] = defaultdict(list)
        self.waited: list[bool] = []

    async def deliver(self, note: Notification) -> Posted | None:
        me = note.to
        first = not self.order[me]
        self.order[me].append(note.card.headline)
        self.started[me].set()
        if first:
            try:
                await asyncio.wait_for(self._any_other(me), 5)
                self.waited.append(True)
            except TimeoutError:
                self.waited.append(False)
        return await super().deliver(note)

    async def _any_other(self, me: str) -> None:
        while not any(e.is_set() for who, e in self.started.items() if who != me):
            await asyncio.sleep(0.01)


def test_recipients_are_sent_to_at_once_and_each_in_order(synced_config: Config, engine: Engine) -> None:
    config = synced_config
    with session_scope(engine) as s:
        for i in range(3):
            for kind, audience in (("card", "moderators"), ("escalation", "slt")):
                payload = {"headline": f"{kind} {i}", "text": f"{kind} {i}"}
                enqueue(
                    s, dedupe_key=f"{kind}:{i}", school_id="northgate", kind=kind, audience=audience, payload=payload
                )
    surface = Overlapping()
    stats = asyncio.run(deliver_batch(engine, config=config, surfaces=surface, limit=100))
    assert stats.sent == stats.claimed and stats.failed == 0
    assert len(surface.order) >= 2 and all(surface.waited), "one recipient's send waited for another's to finish"
    for headlines in surface.order.values():  # each recipient's in the order they were queued
        kind = headlines[0].split()[0]
        assert headlines == [f"{kind} {i}" for i in range(3)]
    with session_scope(engine) as s:
        assert all(d.status == "sent" for d in s.scalars(select(Delivery).order_by(col(Delivery.id))))
