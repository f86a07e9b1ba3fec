"""The engine under failure: a trickling feed, a gzip bomb, a slow Slack, SIGTERM and kill -9
mid-delivery, and two processes on one Postgres. Real SQLite (or Postgres), real HTTP over
loopback, the real service; only Slack and the feeds are local stand-ins."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from core.config import Config
from hallmonitor.app import create_app
from hallmonitor.service import Service
from monitors.registry import load_config
from storage.db import session_scope
from storage.models import Item, Outbox, Source
from tests.conftest import BASE_CONFIG, REPO, account_block
from tests.engine_servers import FeedServer, HistorySlack
from tests.helpers import RecordingSurface, count, poll
from tests.test_service import free_port

SLACK_USERS = (("Amira Khan", "UAMIRA"), ("Ben Okafor", "UBEN"), ("Helen Moore", "UHELEN"), ("Dana Price", "UDANA"))


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    server = FeedServer(items=3)
    yield server
    server.close()


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {seconds:g} s")


def test_a_trickling_feed_holds_one_slot_until_its_deadline_and_nothing_else(
    tmp_path: Path, engine: Engine, feeds: FeedServer
) -> None:
    urls = [f"{feeds.base}/trickle.xml", f"{feeds.base}/feed/1.xml?dsl"]
    urls += [f"{feeds.base}/feed/{n}.xml" for n in (2, 3)]
    text = BASE_CONFIG.format(db=tmp_path / "hm.db").replace('tick = "1s"', 'tick = "1s"\nhttp_timeout = "4s"')
    (tmp_path / "config.toml").write_text(text + account_block("blog", urls))
    config = load_config(tmp_path / "config.toml")
    surface = RecordingSurface()
    service = Service(config=config, engine=engine, surface=surface)

    async def go() -> tuple[float, dict[str, object]]:
        started = time.monotonic()
        service.start()
        try:
            while not any(n.audience == "dsl" for n in surface.notes):
                assert time.monotonic() - started < 15, "the DSL ping waited behind the trickling feed"
                await asyncio.sleep(0.05)
            pinged = time.monotonic() - started
            assert feeds.trickling.is_set()
            while service.health()["failing"] == 0:
                assert time.monotonic() - started < 20, "the trickling feed never failed"
                await asyncio.sleep(0.1)
            return pinged, service.health()
        finally:
            await service.stop()

    pinged, health = asyncio.run(go())
    assert pinged < 4, f"the DSL ping took {pinged:.1f} s: it waited for the trickling feed's deadline"
    assert count(engine, Item) == 3 * 3 + 1  # the other three feeds were all polled
    assert health["status"] == "degraded"
    failing = [s for s in health["sources"] if not s["healthy"]]  # type: ignore[attr-defined]
    assert [s["error_kind"] for s in failing] == ["timeout"] and "trickle" in failing[0]["source"]


def test_a_gzip_bomb_is_refused_with_memory_bounded(write_config: Callable[..., Config], engine: Engine) -> None:
    server = FeedServer(bomb_mb=256)  # 256 MiB decoded from about 250 KB on the wire
    try:
        config = write_config(account_block("blog", [f"{server.base}/bomb.xml", f"{server.base}/feed/1.xml"]))
        tracemalloc.start()
        summary = poll(engine, config, all_sources=True)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        server.close()
    assert summary.failed == 1 and summary.items_stored == 3
    assert "larger than" in summary.errors[0]
    assert peak < 64 * 1024 * 1024, f"peak Python memory {peak / 2**20:.0f} MiB while refusing the bomb"
    with session_scope(engine) as s:
        bomb = s.scalars(select(Source).where(col(Source.location).contains("bomb"))).one()
    assert bomb.last_error_kind == "bad_payload"


def test_a_slow_slack_never_slows_the_webhooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_config: Callable[..., Config], engine: Engine
) -> None:
    from bot.slack import SlackSurface, web_client

    monkeypatch.setenv("FORM_SECRET", "form-secret")
    extra = '\n[[accounts]]\nid = "form"\nplatform = "webhook"\nmoderators = ["amira", "ben"]\n'
    extra += 'credentials = { secret = "FORM_SECRET" }\nchannel = { slack = "CMOD" }\n'
    config = write_config(extra=extra)
    with HistorySlack(delay_s=2.0) as slack:
        surface = SlackSurface(web_client("xoxb-test", slack.url))
        service = Service(config=config, engine=engine, surface=surface)
        app = create_app(service)

        async def go() -> list[float]:
            times = []
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://hm.test") as http:
                    for n in range(12):
                        body = json.dumps([{"id": f"w{n}", "text": f"When is parents evening? ({n})"}]).encode()
                        sig = "sha256=" + hmac.new(b"form-secret", body, hashlib.sha256).hexdigest()
                        t = time.perf_counter()
                        r = await http.post("/webhooks/generic/form", content=body, headers={"X-Signature-256": sig})
                        times.append(time.perf_counter() - t)
                        assert r.status_code == 200, r.text
                        await asyncio.sleep(0.3)  # while the outbox is stuck in 2 s Slack calls
            return times

        times = asyncio.run(go())
        assert len(slack.called("chat.postMessage")) >= 2  # deliveries were in flight throughout
    assert max(times) < 1.0, f"a webhook took {max(times):.2f} s while Slack was slow"
    assert count(engine, Item) == 12


def _slack_config(tmp_path: Path, urls: list[str], *, lease: str = "3s") -> Path:
    text = BASE_CONFIG.format(db=tmp_path / "hm.db").replace('surface = "console"', 'surface = "slack"')
    text = text.replace('tick = "1s"', f'tick = "1s"\nlease = "{lease}"\nhttp_timeout = "5s"')
    for name, user in SLACK_USERS:
        text = text.replace(f'name = "{name}"', f'name = "{name}"\nslack_user = "{user}"')
    text += account_block("blog", urls) + 'channel = { slack = "CMOD" }\n'
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def _run(config: Path, slack: HistorySlack, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_API_URL": slack.url,
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "hallmonitor.cli", "run", "--config", str(config), "--port", str(free_port())]
    return subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env, cwd=REPO)


def _expected(feeds: int, items: int) -> set[str]:
    return {f"Q{f}x{i}" for f in range(feeds) for i in range(items)}


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_stopping_mid_delivery_posts_nothing_twice(tmp_path: Path, how: signal.Signals) -> None:
    server = FeedServer(items=8)
    urls = [f"{server.base}/feed/{n}.xml" for n in range(3)]
    config, log = _slack_config(tmp_path, urls), tmp_path / "run.log"
    with HistorySlack(delay_s=0.4) as slack:
        try:
            first = _run(config, slack, f"sqlite:///{tmp_path / 'hm.db'}", log)
            wait_for(lambda: len(slack.called("chat.postMessage")) >= 4, 60, "the first cards")
            first.send_signal(how)
            assert first.wait(40) is not None
            posted_before = len(slack.called("chat.postMessage"))
            second = _run(config, slack, f"sqlite:///{tmp_path / 'hm.db'}", log)
            tokens = _expected(3, 8)
            wait_for(lambda: tokens <= {t for _c, t in slack.posts()}, 60, "every card after the restart")
            time.sleep(1.5)  # anything else queued goes out too
            second.terminate()
            second.wait(40)
        finally:
            server.close()
        posts = slack.posts()
    output = log.read_text()
    twice = {key: n for key, n in posts.items() if n > 1}
    assert posted_before < len(tokens), "the stop came after every card was posted; nothing was tested"
    assert not twice, f"posted more than once: {twice}"
    assert "Traceback" not in output, output[-3000:]


def test_two_processes_on_one_postgres_share_the_work(tmp_path: Path) -> None:
    server_url = os.environ.get("HALLMONITOR_TEST_DATABASE_URL")
    if not server_url:
        pytest.skip('needs HALLMONITOR_TEST_DATABASE_URL (eval "$(bash .ci/postgres.sh start)")')
    from sqlalchemy import create_engine, text

    from storage.db import database_url, open_database

    admin = create_engine(database_url(server_url), isolation_level="AUTOCOMMIT")
    name = f"hm_two_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = server_url.rsplit("/", 1)[0] + "/" + name
    open_database(database_url(url)).dispose()  # migrate once, before both start
    feeds, items = 40, 3
    server = FeedServer(items=items)
    urls = [f"{server.base}/feed/{n}.xml" for n in range(feeds)]
    config, log = _slack_config(tmp_path, urls, lease="30s"), tmp_path / "run.log"
    try:
        with HistorySlack(delay_s=0.02) as slack:
            workers = [_run(config, slack, url, log) for _ in range(2)]
            tokens = _expected(feeds, items)
            try:
                wait_for(lambda: tokens <= {t for _c, t in slack.posts()}, 120, "every card from two workers")
                time.sleep(2)
            finally:
                for w in workers:
                    w.terminate()
                for w in workers:
                    w.wait(40)
            posts = slack.posts()
        engine = open_database(database_url(url))
        stored, pending = count(engine, Item), count(engine, Outbox, col(Outbox.status) != "sent")
        engine.dispose()
    finally:
        server.close()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
    output = log.read_text()
    assert stored == feeds * items and pending == 0
    assert not {k: n for k, n in posts.items() if n > 1}, "a card was posted twice"
    assert "deadlock" not in output.lower() and "Traceback" not in output, output[-3000:]
