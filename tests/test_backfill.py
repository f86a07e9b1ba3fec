"""The backfill setting: a big feed's first poll stores its backlog without carding it (issue 15)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import col, select

from storage.db import session_scope
from storage.models import Escalation, Item, Outbox
from tests.conftest import account_block
from tests.helpers import poll

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _feed(path: Path, entries: list[tuple[str, str, int]]) -> None:
    items = "".join(
        f"<item><guid>{guid}</guid><description>{text}</description>"
        f"<pubDate>{format_datetime(NOW - timedelta(days=age))}</pubDate></item>"
        for guid, text, age in entries
    )
    path.write_text(f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>')


def test_first_poll_stores_the_backlog_without_cards(tmp_path: Path, write_config: Any, engine: Engine) -> None:
    feed = tmp_path / "feed.xml"
    backlog = [
        ("new", "When is parents evening?", 1),
        ("old", "What time does school start?", 60),
        ("old-sg", "A man keeps asking my daughter to send him photos", 60),
    ]
    _feed(feed, backlog)
    config = write_config(account_block("blog", [str(feed)]) + 'backfill = "14d"\n')
    summary = poll(engine, config, now=NOW)
    assert summary.items_stored == 3
    with session_scope(engine) as s:
        items = {i.external_id: (i.status, i.reply_by is not None) for i in s.scalars(select(Item))}
        cards = {n.item_id for n in s.scalars(select(Outbox).where(col(Outbox.kind) == "card"))}
        pings = [(e.target, e.item_id) for e in s.scalars(select(Escalation))]
        ids = {i.external_id: i.id for i in s.scalars(select(Item))}
    assert items == {"new": ("open", True), "old": ("closed", False), "old-sg": ("open", False)}
    assert cards == {ids["new"]}  # the backlog is not carded
    assert pings == [("dsl", ids["old-sg"])]  # but an old safeguarding item still reaches the DSL
    _feed(feed, [*backlog, ("later-old", "Is there a uniform shop?", 40)])
    poll(engine, config, now=NOW + timedelta(hours=1))
    with session_scope(engine) as s:
        later = s.exec(select(Item).where(col(Item.external_id) == "later-old")).one()
        assert s.exec(select(Outbox).where(col(Outbox.item_id) == later.id)).first() is not None  # after: carded


def test_without_the_setting_everything_is_carded(tmp_path: Path, write_config: Any, engine: Engine) -> None:
    feed = tmp_path / "feed.xml"
    _feed(feed, [("old", "What time does school start?", 60)])
    poll(engine, write_config(account_block("blog", [str(feed)])), now=NOW)
    with session_scope(engine) as s:
        assert len(list(s.scalars(select(Outbox).where(col(Outbox.kind) == "card")))) == 1
