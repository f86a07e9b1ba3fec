"""The poll worker keeps fetching while an earlier batch is being triaged: a batch past fetching
gives its fetch slots back, so triage (CPU work) and the next batch's round trips overlap. Real
SQLite (or Postgres), the real service and its loops, real HTTP over loopback."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine

from hallmonitor.service import Service
from handlers.rules import RuleClassifier
from handlers.verdict import Verdict
from monitors.registry import load_config
from storage.models import Item
from tests.conftest import BASE_CONFIG, account_block
from tests.engine_servers import FeedServer
from tests.helpers import RecordingSurface, count

FEEDS = 6


class HeldTriage(RuleClassifier):
    """The rules, but every batch waits until `release` is set (a slow triage)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.threads: set[str] = set()

    def classify_many(self, texts: Sequence[str], *, school: str | None = None) -> list[Verdict]:
        self.threads.add(threading.current_thread().name)
        assert self.release.wait(30), "the test never released triage"
        return super().classify_many(texts, school=school)


def test_the_next_batch_is_fetched_while_the_first_is_still_being_triaged(
    tmp_path: Path, engine: Engine, feeds: FeedServer
) -> None:
    urls = [f"{feeds.base}/feed/{n}.xml" for n in range(FEEDS)]
    text = BASE_CONFIG.format(db=tmp_path / "hm.db").replace('tick = "1s"', 'tick = "1s"\nmax_concurrent_polls = 2')
    (tmp_path / "config.toml").write_text(text + account_block("blog", urls))
    triage = HeldTriage()
    service = Service(
        config=load_config(tmp_path / "config.toml"),
        engine=engine,
        surface=RecordingSurface("console"),
        classifier=triage,
    )

    async def go() -> tuple[int, int]:
        service.start()
        try:
            started = time.monotonic()
            while len(feeds.asked) < 4:  # two batches of two fetched, the first still held in triage
                assert time.monotonic() - started < 20, (
                    f"only feeds {sorted(feeds.asked)} were fetched while triage was held"
                )
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # room for two batches past fetching, no more: the rest wait
            held = len(feeds.asked)
            triage.release.set()
            while count(engine, Item) < FEEDS * 3:
                assert time.monotonic() - started < 30, "the polls never finished"
                await asyncio.sleep(0.05)
            return held, len(feeds.asked)
        finally:
            triage.release.set()
            await service.stop()

    held, finally_asked = asyncio.run(go())
    assert held == 4  # two batches triaging at once at most (workers.WRITING): fetching waits, nothing piles up
    assert finally_asked == FEEDS
    # on the poller's own threads: the event loop's shared pool stays free for chat requests and the outbox
    assert triage.threads and all(name.startswith("poll-write") for name in triage.threads)
