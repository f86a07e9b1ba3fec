"""Health notes: one helper queues them for every path (failing source, given-up webhook,
unreachable person, files refused), never linked to an item and never with more than a
headline, a sentence and an account id."""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import Engine, select
from sqlmodel import col

from core.config import Config
from handlers.health_notes import HealthNote, tell_moderators
from storage.db import session_scope
from storage.models import Outbox
from storage.types import utcnow

REPO = Path(__file__).resolve().parents[1]


def test_a_note_is_queued_once_per_key_for_the_moderators_and_carries_no_item(
    synced_config: Config, engine: Engine
) -> None:
    note = HealthNote(headline="A monitored source is failing", text="Feed 3: timed out", account="acct")
    with session_scope(engine) as s:
        assert tell_moderators(s, school_id="northgate", key="health:3:t", note=note, now=utcnow())
        assert not tell_moderators(s, school_id="northgate", key="health:3:t", note=note, now=utcnow())
    with session_scope(engine) as s:
        rows = list(s.scalars(select(Outbox).where(col(Outbox.kind) == "health")))
    assert len(rows) == 1
    row = rows[0]
    assert (row.school_id, row.audience, row.item_id) == ("northgate", "moderators", None)
    assert row.payload == {"headline": "A monitored source is failing", "text": "Feed 3: timed out", "account": "acct"}


def test_every_health_note_in_the_code_goes_through_the_one_helper() -> None:
    """No module but handlers/health_notes.py queues an outbox row of kind "health" itself."""
    offenders = []
    for path in sorted(
        p
        for top in ("core", "storage", "monitors", "handlers", "bot", "hallmonitor")
        for p in (REPO / top).rglob("*.py")
    ):
        if path.name == "health_notes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and any(
                k.arg == "kind" and isinstance(k.value, ast.Constant) and k.value.value == "health"
                for k in node.keywords
            ):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []
