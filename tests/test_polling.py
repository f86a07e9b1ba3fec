"""One polling pass, as the engine runs it: exactly the sources asked for (or every due one,
however many), quiet results recorded together without reading the rows back, triage batched
across feeds, skipped entries counted and logged, undeclared encodings read right, and a source
that runs past its deadline or sends a broken body counted as failing."""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import Engine, event
from sqlmodel import Session, col, select

from core.domain import NewItem
from hallmonitor.service import Service
from handlers.polling import Connectors, Due, _write
from handlers.triage import default_classifier
from monitors.base import FetchResult, SourceState
from monitors.registry import load_config
from storage.db import session_scope
from storage.models import Item, Source
from tests.conftest import account_block
from tests.helpers import RecordingSurface, count, hm, poll
from tests.loopback import LoopbackServer

SAT = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
BASE = "https://feeds.example"


def rss(*items: str, declaration: str = '<?xml version="1.0"?>') -> str:
    return f'{declaration}<rss version="2.0"><channel><title>c</title>{"".join(items)}</channel></rss>'


def item(guid: str, text: str) -> str:
    return f"<item><guid>{guid}</guid><description>{text}</description></item>"


def sources(engine: Engine) -> dict[str, Source]:
    with session_scope(engine) as s:
        rows = list(s.scalars(select(Source)))
        s.expunge_all()
    return {r.location.rsplit("/", 1)[-1]: r for r in rows}


class Statements:
    """The SQL a block of code sends, with whether each went as one executemany."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.seen = engine, []  # type: ignore[var-annotated]

    def __enter__(self) -> list[tuple[str, bool]]:
        event.listen(self.engine, "before_cursor_execute", self.hear)
        return self.seen

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self.hear)

    def hear(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        self.seen.append((" ".join(statement.split()), executemany))


@respx.mock
def test_many_304s_are_recorded_by_one_statement_and_each_source_keeps_its_own_state(write_config, engine) -> None:  # type: ignore[no-untyped-def]
    names = [f"f{i}" for i in range(6)]
    config = write_config(account_block("blog", [f"{BASE}/{n}" for n in names]))
    for i, name in enumerate(names):
        respx.get(f"{BASE}/{name}").mock(return_value=httpx.Response(200, text=rss(), headers={"ETag": f'"v{i}"'}))
    respx.get(f"{BASE}/f5").mock(return_value=httpx.Response(503))  # f5 starts failing
    poll(engine, config, now=SAT)
    for name in names[:5]:
        respx.get(f"{BASE}/{name}").mock(return_value=httpx.Response(304))
    respx.get(f"{BASE}/f4").mock(return_value=httpx.Response(200, text=rss(), headers={"ETag": '"v4b"'}))
    respx.get(f"{BASE}/f5").mock(return_value=httpx.Response(304))  # f5 recovers: it is not quiet
    later = SAT + timedelta(minutes=6)
    with Statements(engine) as sent:
        summary = poll(engine, config, now=later)
    assert (summary.sources, summary.not_modified, summary.failed) == (6, 5, 0)
    updates = [(sql, many) for sql, many in sent if sql.startswith("UPDATE source")]
    assert len([u for u in updates if u[1]]) == 1  # f0..f4 together, as one executemany
    assert not [sql for sql, _many in sent if sql.startswith("SELECT") and "FROM source WHERE source.id =" in sql][1:]
    rows = sources(engine)
    for i, name in enumerate(names[:4]):
        row = rows[name]
        assert row.etag == f'"v{i}"' and row.first_polled_at == SAT
        assert row.last_polled_at == row.last_success_at == later and row.next_check_at == later + timedelta(minutes=5)
    assert rows["f4"].etag == '"v4b"'  # a new validator is kept by the same statement
    assert rows["f5"].consecutive_errors == 0 and rows["f5"].last_error is None
    assert rows["f5"].last_success_at == later and rows["f5"].first_polled_at == SAT


@respx.mock
def test_source_ids_polls_exactly_those_due_or_not(write_config, engine) -> None:  # type: ignore[no-untyped-def]
    config = write_config(account_block("blog", [f"{BASE}/a", f"{BASE}/b", f"{BASE}/c"]))
    respx.get(url__startswith=BASE).mock(return_value=httpx.Response(200, text=rss()))
    poll(engine, config, now=SAT)
    b = sources(engine)["b"].id
    assert b is not None
    summary = poll(engine, config, now=SAT + timedelta(minutes=1), source_ids=[b])  # nothing is due yet
    assert summary.sources == 1
    polled = {name: row.last_polled_at for name, row in sources(engine).items()}
    assert polled == {"a": SAT, "b": SAT + timedelta(minutes=1), "c": SAT}
    assert poll(engine, config, now=SAT + timedelta(minutes=1)).sources == 0
    assert poll(engine, config, now=SAT, source_ids=[]).sources == 0


@respx.mock
def test_a_pass_covers_every_source_beyond_a_thousand(  # type: ignore[no-untyped-def]
    write_config, engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the command works on the test's own database (a Postgres one in CI's second pass), not the config's file
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    urls = [f"{BASE}/feed/{i}" for i in range(1_005)]
    config = write_config(account_block("many", urls))
    respx.get(url__startswith=BASE).mock(return_value=httpx.Response(304))
    assert poll(engine, config, now=SAT).sources == 1_005
    assert count(engine, Source, col(Source.last_polled_at) == SAT) == 1_005
    result = hm("poll", "--config", str(config.path))  # `hallmonitor poll`: every source, due or not
    assert result.returncode == 0, result.stdout + result.stderr
    assert "poll sources=1005 not_modified=1005 failed=0" in result.stdout
    assert count(engine, Source, col(Source.last_polled_at) > SAT) == 1_005


@respx.mock
def test_skipped_entries_are_counted_and_logged(write_config, engine, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    config = write_config(account_block("blog", [f"{BASE}/photos"]))
    image_only = '<item><enclosure url="https://cdn.example/p.jpg" type="image/jpeg" length="1"/></item>'
    respx.get(f"{BASE}/photos").mock(return_value=httpx.Response(200, text=rss(item("c1", "Lovely!"), image_only)))
    with caplog.at_level(logging.INFO, logger="handlers.polling"):
        summary = poll(engine, config, now=SAT)
    assert (summary.items_stored, summary.skipped) == (1, 1) and "skipped=1" in summary.line()
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("entries_skipped")]
    assert len(logged) == 1 and f"source={BASE}/photos" in logged[0] and "skipped=1" in logged[0]
    assert "image-only" in logged[0]


@respx.mock
@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("iso-8859-2", "Dziękuję bardzo, świetna szkoła! Kiedy jest zebranie dla rodziców?"),
        ("windows-1251", "Спасибо учителям, когда начинается ярмарка в субботу?"),
    ],
)
def test_a_feed_in_an_undeclared_encoding_is_read_right(write_config, engine, encoding: str, text: str) -> None:  # type: ignore[no-untyped-def]
    config = write_config(account_block("blog", [f"{BASE}/parents"]))
    body = rss(item("c1", text)).encode(encoding)  # no encoding="..." and no charset: feedparser must guess
    respx.get(f"{BASE}/parents").mock(
        return_value=httpx.Response(200, content=body, headers={"Content-Type": "application/rss+xml"})
    )
    assert poll(engine, config, now=SAT).items_stored == 1
    with session_scope(engine) as s:
        assert s.scalars(select(Item.text)).one() == text


class CountingClassifier:
    """The shipped classifier, counting each classify_many and the texts it was given."""

    def __init__(self) -> None:
        self.inner, self.calls = default_classifier(), []  # type: ignore[var-annotated]

    def classify_many(self, texts: Sequence[str], *, school: str | None = None) -> Any:
        self.calls.append(list(texts))
        return self.inner.classify_many(texts, school=school)

    def refresh_labels(self, session: Session) -> None:
        self.inner.refresh_labels(session)

    def classify(self, text: str, *, school: str | None = None) -> Any:
        return self.classify_many([text], school=school)[0]


@respx.mock
def test_triage_is_one_batch_across_the_feeds_of_a_write(write_config, engine) -> None:  # type: ignore[no-untyped-def]
    config = write_config(account_block("blog", [f"{BASE}/a", f"{BASE}/b"]))
    respx.get(f"{BASE}/a").mock(return_value=httpx.Response(200, text=rss(item("a1", "What time is pick up?"))))
    respx.get(f"{BASE}/b").mock(return_value=httpx.Response(304))
    poll(engine, config, now=SAT)  # a1 is stored now
    rows = sources(engine)
    connectors, counting = Connectors(config), CountingClassifier()
    outcomes = []
    for name, texts in (("a", ["What time is pick up?", "Is the fair on Saturday?"]), ("b", ["Thank you all!"])):
        row = rows[name]
        due = Due(row.id, row.account_id, row.location, row.kind, row.label, None, None, None, 0, False, None)  # type: ignore[arg-type]
        result = FetchResult(items=[_new(f"{name}{i + 1}", t) for i, t in enumerate(texts)])
        outcomes.append((due, result, SourceState()))
    assert connectors.get(outcomes[0][0]) is connectors.get(outcomes[0][0])  # built once per pass
    summary = _write(engine, config, counting, outcomes, SAT + timedelta(minutes=6))  # type: ignore[arg-type]
    assert counting.calls == [["Is the fair on Saturday?", "Thank you all!"]]  # one call; a1 was known
    assert summary.items_stored == 2 and count(engine, Item) == 3


def _new(external_id: str, text: str) -> NewItem:
    return NewItem(external_id=external_id, kind="comment", text=text)


def test_a_source_past_its_deadline_is_failing_in_health_and_the_others_poll(  # type: ignore[no-untyped-def]
    write_config, engine, tmp_path: Path, trickle_url: str
) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_text(rss(item("c1", "What time does the fair start?")))
    written = write_config(account_block("blog", [trickle_url, str(feed)]))
    written.path.write_text(written.path.read_text().replace('tick = "1s"', 'tick = "1s"\nhttp_timeout = "1s"'))
    config = load_config(written.path)
    service = Service(config=config, engine=engine, surface=RecordingSurface("console"))

    async def go() -> Any:
        try:
            return await service.tick()
        finally:
            await service.stop()

    summary = asyncio.run(go())
    assert (summary.sources, summary.failed, summary.items_stored) == (2, 1, 1)
    assert "no complete answer within 1 s" in summary.errors[0]
    health = service.health()
    assert health["status"] == "degraded" and health["failing"] == 1
    slow = next(r for r in health["sources"] if r["source"] == trickle_url)
    assert slow["error_kind"] == "timeout" and not slow["healthy"]


class Broken(BaseHTTPRequestHandler):
    """A gzip body cut off half way (the connection closes cleanly after what was declared)."""

    def do_GET(self) -> None:
        whole = gzip.compress(rss(*(item(f"c{i}", f"Comment number {i}") for i in range(200))).encode())
        body = whole[: len(whole) // 2]
        self.send_response(200)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_broken_gzip_body_is_a_bad_payload_and_stores_nothing_half_read(write_config, engine) -> None:  # type: ignore[no-untyped-def]
    server = LoopbackServer(Broken).start()
    try:
        summary = poll(engine, write_config(account_block("blog", [f"{server.base}/feed"])), now=SAT)
    finally:
        server.close()
    assert summary.failed == 1 and "truncated" in summary.errors[0]
    assert count(engine, Item) == 0
    with session_scope(engine) as s:
        assert s.scalars(select(Source.last_error_kind)).one() == "bad_payload"
