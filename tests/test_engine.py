"""The engine's claims and loops: leases, priority, an interrupted send looked for before it is
sent again, a trickling feed, a slow Slack. Real SQLite (or Postgres), real HTTP over loopback,
the real service; only Slack and the feeds are local stand-ins. The real-process failure tests
(SIGTERM, kill -9, two processes on one Postgres) are in tests/test_engine_processes.py."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from bot.outbox import deliver_pending
from bot.slack import SlackSurface, web_client
from core.chat import Notification, Posted
from core.config import Config
from hallmonitor.app import create_app
from hallmonitor.service import Service
from monitors.registry import load_config
from storage.db import session_scope
from storage.leases import claim_deliveries
from storage.models import Delivery, Item, Source, WebhookEvent
from storage.queries import enqueue
from storage.types import utcnow
from tests.conftest import BASE_CONFIG, account_block
from tests.engine_servers import FeedServer
from tests.helpers import RecordingSurface, count
from tests.mock_slack import MockSlack

SLACK_USERS = (("Amira Khan", "UAMIRA"), ("Ben Okafor", "UBEN"), ("Helen Moore", "UHELEN"), ("Dana Price", "UDANA"))


GUARD_S = 30.0  # only so a broken engine fails instead of hanging: nothing here is timed


async def until(done: Callable[[], bool], failure: str) -> None:
    """Wait for `done()`; fail with `failure` if it has not happened within GUARD_S."""
    deadline = time.monotonic() + GUARD_S
    while not done():
        assert time.monotonic() < deadline, failure
        await asyncio.sleep(0.02)


class GatedSurface(RecordingSurface):
    """The console surface (the base config's); every card waits at `gate` until the test opens it,
    anything else goes at once."""

    def __init__(self) -> None:
        super().__init__("console")
        self.gate = asyncio.Event()
        self.held = 0  # cards waiting at the gate now

    async def deliver(self, note: Notification) -> Posted | None:
        if note.kind == "card":
            self.held += 1
            try:
                await asyncio.wait_for(self.gate.wait(), GUARD_S)
            finally:
                self.held -= 1
        return await super().deliver(note)


def _queue(engine: Engine, kind: str, audience: str, n: int, tag: str) -> None:
    with session_scope(engine) as s:
        for i in range(n):
            payload = {"headline": f"{tag} {i}", "text": f"{tag} {i}"}
            enqueue(s, dedupe_key=f"{tag}:{i}", school_id="northgate", kind=kind, audience=audience, payload=payload)


@pytest.fixture
def config(synced_config: Config) -> Config:
    """The base school and staff, console surface, no accounts; written to the engine's database."""
    return synced_config


def test_a_claim_is_exclusive_escalations_first_and_a_dead_workers_claim_comes_back_as_maybe_sent(
    config: Config, engine: Engine
) -> None:
    from bot.notify import fan_out

    _queue(engine, "card", "moderators", 6, "card")
    _queue(engine, "health", "moderators", 2, "health")
    _queue(engine, "escalation", "slt", 1, "slt")
    _queue(engine, "escalation", "dsl", 1, "dsl")
    now, lease = utcnow(), timedelta(seconds=30)
    with session_scope(engine) as s:
        fan_out(s, config=config, now=now)
    with session_scope(engine) as s:
        first = claim_deliveries(s, owner="a", now=now, lease=lease, limit=3, surfaces=["console"])
    with session_scope(engine) as s:
        rest = claim_deliveries(s, owner="b", now=now, lease=lease, limit=100, surfaces=["console"])
    assert [d.priority for d in first] == [0, 1, 2]  # the DSL ping, the SLT ping, then cards
    assert {d.id for d in first}.isdisjoint({d.id for d in rest})
    assert all(d.status == "sending" and not d.maybe_sent for d in first + rest)
    assert [d.priority for d in rest][-2:] == [4, 4]  # health alerts last
    with session_scope(engine) as s:  # nobody else can take them while the leases hold
        assert claim_deliveries(s, owner="c", now=now + lease / 2, lease=lease, limit=100, surfaces=["console"]) == []
    with session_scope(engine) as s:  # worker "a" died: its claims come back, flagged
        again = claim_deliveries(s, owner="c", now=now + lease * 2, lease=lease, limit=100, surfaces=["console"])
    assert len(again) == len(first) + len(rest) and all(d.maybe_sent for d in again)


def test_an_interrupted_slack_send_is_found_by_its_metadata_not_posted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    from bot.notify import build_note, fan_out

    (tmp_path / "config.toml").write_text(_slack_text(tmp_path))
    config = load_config(tmp_path / "config.toml")
    _queue(engine, "escalation", "dsl", 2, "dsl")  # two DSL pings: one went out before the crash, one did not
    with MockSlack() as slack:
        surface = SlackSurface(web_client("xoxb-test", slack.url))
        now = utcnow()

        async def crash_after_first_send() -> None:
            with session_scope(engine) as s:
                fan_out(s, config=config, now=now)
            with session_scope(engine) as s:
                claimed = claim_deliveries(
                    s, owner="dead", now=now, lease=timedelta(seconds=5), limit=9, surfaces=["slack"]
                )
                note = build_note(s, config=config, delivery=claimed[0], now=now)
            assert note is not None and len(claimed) == 2
            await surface.deliver(note)  # posted; then the process died before recording it

        asyncio.run(crash_after_first_send())
        assert len(slack.called("chat.postMessage")) == 1
        stats = asyncio.run(deliver_pending(engine, config=config, surfaces=surface, now=now + timedelta(minutes=5)))
        posts = slack.called("chat.postMessage")
    assert stats.sent == 2 and len(posts) == 2  # the first was found, not posted again; the second went once
    assert sorted(p["text"] for p in posts) == ["dsl 0", "dsl 1"]
    metadata = [p["metadata"] if isinstance(p["metadata"], dict) else json.loads(p["metadata"]) for p in posts]
    assert all(m["event_type"] == "hallmonitor_delivery" for m in metadata)
    assert len(slack.called("conversations.history")) == 1  # both looked for (either may have gone) in one scan
    with session_scope(engine) as s:
        rows = list(s.scalars(select(Delivery)))
    assert all(d.status == "sent" and d.reference and d.reference.startswith("DUDANA ") for d in rows)
    assert all(d.lease_owner is None for d in rows)


def test_a_surface_that_cannot_look_sends_again_and_says_so(
    config: Config, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.notify import fan_out

    _queue(engine, "escalation", "dsl", 1, "dsl")
    now = utcnow()
    with session_scope(engine) as s:
        fan_out(s, config=config, now=now)
        assert claim_deliveries(s, owner="dead", now=now, lease=timedelta(seconds=5), limit=9, surfaces=["console"])
    surface = RecordingSurface("console")  # like Teams: no way to look a message up
    with caplog.at_level(logging.WARNING):
        stats = asyncio.run(deliver_pending(engine, config=config, surfaces=surface, now=now + timedelta(minutes=1)))
    assert stats.sent == 1 and len(surface.notes) == 1
    assert "delivery_resent_unverifiable" in caplog.text


def test_a_burst_of_cards_does_not_delay_a_dsl_ping(config: Config, engine: Engine) -> None:
    """The DSL ping goes while a card send is still stuck: it never queues behind the cards."""
    surface = GatedSurface()
    service = Service(config=config, engine=engine, surface=surface)
    _queue(engine, "card", "moderators", 40, "card")  # 80 direct messages (no channel)

    async def go() -> tuple[int, int]:
        service.start()
        try:
            await until(lambda: surface.held > 0, "no card was being sent")
            _queue(engine, "escalation", "dsl", 1, "dsl")
            service.wake_outbox()
            await until(lambda: any(n.kind == "escalation" for n in surface.notes), "the DSL ping never went")
            return surface.held, sum(1 for n in surface.notes if n.kind == "card")
        finally:
            surface.gate.set()
            await service.stop()

    held, cards_sent = asyncio.run(go())
    assert held >= 1 and cards_sent == 0, "the DSL ping went only after the card in flight"


def _slack_text(tmp_path: Path) -> str:
    text = BASE_CONFIG.format(db=tmp_path / "hm.db").replace('surface = "console"', 'surface = "slack"')
    for name, user in SLACK_USERS:
        text = text.replace(f'name = "{name}"', f'name = "{name}"\nslack_user = "{user}"')
    return text


def test_a_slow_slack_never_slows_the_webhooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine) -> None:
    """Every webhook is answered while Slack is still holding its answer to a card it was sent."""
    monkeypatch.setenv("FORM_SECRET", "form-secret")
    extra = '\n[[accounts]]\nid = "form"\nplatform = "webhook"\nmoderators = ["amira", "ben"]\n'
    extra += 'credentials = { secret = "FORM_SECRET" }\nchannel = { slack = "CMOD" }\n'
    (tmp_path / "config.toml").write_text(_slack_text(tmp_path) + extra)
    config = load_config(tmp_path / "config.toml")
    with MockSlack() as slack:
        gate = slack.gate = threading.Event()  # Slack answers no post until the test is done
        service = Service(config=config, engine=engine, surface=SlackSurface(web_client("xoxb-test", slack.url)))
        app = create_app(service)

        async def go() -> tuple[list[int], int]:
            statuses, held = [], 0
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://hm.test") as http:
                    try:
                        for n in range(16):
                            body = json.dumps([{"id": f"w{n}", "text": f"When is parents evening? ({n})"}]).encode()
                            sig = "sha256=" + hmac.new(b"form-secret", body, hashlib.sha256).hexdigest()
                            post = http.post("/webhooks/generic/form", content=body, headers={"X-Signature-256": sig})
                            statuses.append((await asyncio.wait_for(post, GUARD_S)).status_code)
                            if n == 0:  # the first comment's card is now stuck in Slack
                                await until(lambda: slack.held > 0, "no card was sent to Slack")
                        held = slack.held
                    finally:
                        gate.set()
            return statuses, held

        statuses, held = asyncio.run(go())
    assert statuses == [200] * 16
    assert held >= 1, "Slack answered before the last webhook was answered: nothing was tested"
    assert count(engine, WebhookEvent) == 16  # every one kept; the last may wait for the next start
    assert count(engine, Item) + count(engine, WebhookEvent, col(WebhookEvent.status) == "pending") == 16
    with session_scope(engine) as s:  # the stop gave back every claim
        assert not list(s.scalars(select(Delivery).where(col(Delivery.lease_owner).is_not(None))))


def _trickle_service(
    tmp_path: Path, engine: Engine, feeds: FeedServer, timeout: str = "4s"
) -> tuple[Service, RecordingSurface]:
    urls = [f"{feeds.base}/trickle.xml", f"{feeds.base}/feed/1.xml?dsl"]
    urls += [f"{feeds.base}/feed/{n}.xml" for n in (2, 3)]
    text = BASE_CONFIG.format(db=tmp_path / "hm.db").replace('tick = "1s"', f'tick = "1s"\nhttp_timeout = "{timeout}"')
    (tmp_path / "config.toml").write_text(text + account_block("blog", urls))
    config = load_config(tmp_path / "config.toml")
    surface = RecordingSurface("console")
    return Service(config=config, engine=engine, surface=surface), surface


def test_a_trickling_feed_holds_back_neither_other_sources_nor_the_dsl_ping(
    tmp_path: Path, engine: Engine, feeds: FeedServer
) -> None:
    """The DSL ping goes, and the other feeds are polled, while the trickling feed is still being
    read (its deadline is far off, and it trickles until the test lets it end)."""
    service, surface = _trickle_service(tmp_path, engine, feeds, timeout="120s")

    async def go() -> bool:
        service.start()
        try:
            await until(lambda: any(n.audience == "dsl" for n in surface.notes), "the DSL ping never went")
            await until(lambda: count(engine, Item) == 3 * 3 + 1, "the other feeds were not all polled")
            return feeds.trickling.is_set() and not feeds.trickle_ended.is_set()
        finally:
            feeds.release.set()
            await service.stop()

    assert asyncio.run(go()), "the trickling feed was no longer being read: nothing was tested"


def test_a_trickling_feed_fails_at_its_deadline_and_shows_failing(
    tmp_path: Path, engine: Engine, feeds: FeedServer
) -> None:
    service, _surface = _trickle_service(tmp_path, engine, feeds)

    async def go() -> dict[str, object]:
        started = time.monotonic()
        service.start()
        try:
            while service.health()["failing"] == 0:
                assert time.monotonic() - started < 20, "the trickling feed never failed"
                await asyncio.sleep(0.1)
            return service.health()
        finally:
            await service.stop()

    health = asyncio.run(go())
    assert health["status"] == "degraded"
    failing = [s for s in health["sources"] if not s["healthy"]]  # type: ignore[attr-defined]
    assert [s["error_kind"] for s in failing] == ["timeout"] and "trickle" in failing[0]["source"]


def test_a_full_pass_claims_page_by_page_and_polls_each_source_once(
    tmp_path: Path, engine: Engine, feeds: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hallmonitor.service

    monkeypatch.setattr(hallmonitor.service, "CLAIM_ALL", 2)  # five sources: three pages
    urls = [f"{feeds.base}/feed/{n}.xml" for n in range(5)]
    (tmp_path / "config.toml").write_text(BASE_CONFIG.format(db=tmp_path / "hm.db") + account_block("blog", urls))
    service = Service(config=load_config(tmp_path / "config.toml"), engine=engine, surface=RecordingSurface("console"))
    first = asyncio.run(service.tick(all_sources=True))
    again = asyncio.run(service.tick(all_sources=True))  # every source again, though none is due
    due = asyncio.run(service.tick())  # nothing is due
    assert (first.sources, first.items_stored) == (5, 15)
    assert (again.sources, again.not_modified, again.items_stored) == (5, 0, 0)
    assert due.sources == 0
    with session_scope(engine) as s:
        assert not list(s.scalars(select(Source).where(col(Source.lease_owner).is_not(None))))
