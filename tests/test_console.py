"""The console surface: cards render, commands go through the shared action function."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import col, select

from bot.console import ConsoleCommands, ConsoleSurface
from storage.db import session_scope
from storage.models import Audit, Item
from tests.conftest import account_block
from tests.helpers import LocalRuntime, deliver, poll

SAT = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>c</title>
<item><guid>q</guid><description>When is the nativity?</description></item>
<item><guid>a</guid><description>Mr Smith is a useless idiot</description></item>
</channel></rss>"""


def test_console_commands_act_through_perform(write_config, engine: Engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    feed = tmp_path / "feed.xml"
    feed.write_text(FEED)
    config = write_config(account_block("blog", [str(feed)]))
    poll(engine, config, now=SAT)
    with session_scope(engine) as s:
        ids = {i.external_id: i.id for i in s.scalars(select(Item))}
    console = ConsoleCommands(LocalRuntime(config, engine), out=io.StringIO(), clock=lambda: SAT)
    assert console.handle("whoami") == "acting as amira"
    assert "When is the nativity?" in console.handle("queue")
    assert console.handle(f"ack {ids['q']}") == "ok: Acknowledged by amira."
    assert console.handle("as nobody").startswith("say which staff id")
    assert console.handle("as sam") == "acting as sam"
    assert console.handle(f"close {ids['q']}").startswith("refused: Only this account's designated moderators")
    console.handle("as helen")
    assert console.handle(f"seen {ids['a']}") == "ok: Escalation acknowledged by helen."
    assert console.handle("ack") == "say which item: `ack 12`"
    assert console.handle("dance").startswith("unknown command")
    with session_scope(engine) as s:
        outcomes = [(a.actor, a.action, a.outcome, a.surface) for a in s.scalars(select(Audit).order_by(col(Audit.id)))]
    assert outcomes == [
        ("amira", "acknowledge", "ok", "console"),
        ("sam", "close", "refused", "console"),
        ("helen", "ack_escalation", "ok", "console"),
    ]


def test_console_surface_prints_cards(write_config, engine: Engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    feed = tmp_path / "feed.xml"
    feed.write_text(FEED)
    config = write_config(account_block("blog", [str(feed)]))
    poll(engine, config, now=SAT)
    out = io.StringIO()
    deliver(engine, config, ConsoleSurface(out), SAT)  # type: ignore[arg-type]
    text = out.getvalue()
    assert "Question on blog" in text and "Reply by Mon 23 Nov 17:00 GMT" in text
    assert "Escalation for SLT   → DM to Helen Moore" in text
