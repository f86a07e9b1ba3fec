"""The config's watch targets mirrored into source rows: removed ones disabled (their items stay),
re-added ones enabled again, and thousands of targets synced with a handful of statements (every
`hallmonitor run` syncs at start)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, event
from sqlmodel import col, select

from core.config import Config
from storage.db import session_scope
from storage.models import Source
from storage.queries import sync_config
from tests.conftest import account_block


def _sync(engine: Engine, config: Config) -> dict[str, bool]:
    with session_scope(engine) as session:
        sync_config(session, config=config)
    with session_scope(engine) as session:
        return {s.location: s.enabled for s in session.scalars(select(Source).order_by(col(Source.id)))}


def test_removed_targets_are_disabled_and_come_back_enabled(
    engine: Engine, write_config: Callable[..., Config]
) -> None:
    a, b, c = (f"https://school.example/{n}.xml" for n in "abc")
    assert _sync(engine, write_config(account_block("blog", [a, b]))) == {a: True, b: True}
    assert _sync(engine, write_config(account_block("blog", [b, c, c]))) == {a: False, b: True, c: True}
    assert _sync(engine, write_config(account_block("blog", [a, b, c]))) == {a: True, b: True, c: True}


def test_thousands_of_targets_sync_without_a_query_per_target(
    engine: Engine, write_config: Callable[..., Config]
) -> None:
    urls = [f"https://school.example/feed/{n}.xml" for n in range(2000)]
    config = write_config(account_block("blog", urls))
    assert sum(_sync(engine, config).values()) == 2000
    statements: list[str] = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        with session_scope(engine) as session:
            sync_config(session, config=config)  # as at every start: nothing changed
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert len(statements) < 20, f"{len(statements)} statements to sync 2,000 unchanged targets"
