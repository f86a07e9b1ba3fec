"""`hallmonitor backup` (SQLite's online backup API, safe while the service writes) and `restore`."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from hallmonitor.cli import main
from storage.db import open_database, session_scope
from storage.queries import sync_config
from tests.conftest import account_block


def _items(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM item").fetchone()[0])
    finally:
        conn.close()


def _add(engine: Engine, n: int, start: int = 0) -> None:
    with engine.begin() as conn:
        for i in range(start, start + n):
            conn.execute(
                text(
                    "INSERT INTO item (school_id, account_id, platform, external_id, kind, text, received_at, "
                    "status, needs_reply, escalate, media_urls, raw, legal_hold) VALUES ('northgate', 'blog', "
                    "'rss', :e, 'comment', 'hello', '2026-11-20 10:00:00', 'open', 0, 'none', '[]', '{}', 0)"
                ),
                {"e": f"x{i}"},
            )


def test_backup_while_writing_then_restore(
    tmp_path: Path, write_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(account_block("blog", ["a.xml"]))
    engine = open_database(config.database())
    with session_scope(engine) as session:
        sync_config(session, config=config)
    _add(engine, 50)
    writer = threading.Thread(target=_add, args=(engine, 500, 1000))
    writer.start()  # the service keeps writing while the backup runs (WAL mode)
    assert main(["backup", "--config", str(config.path), "--to", str(tmp_path / "nightly")]) == 0
    writer.join()
    out = capsys.readouterr().out
    made = Path(out.strip().rsplit(" ", 1)[-1])
    assert made.parent == tmp_path / "nightly" and 50 <= _items(made) <= 550
    in_backup = _items(made)
    _add(engine, 5, 5000)
    engine.dispose()
    assert main(["restore", str(made), "--config", str(config.path)]) == 2
    assert "add --yes" in capsys.readouterr().err
    assert main(["restore", str(made), "--yes", "--config", str(config.path)]) == 0
    kept = Path(capsys.readouterr().out.strip().rsplit(" ", 1)[-1])
    assert _items(tmp_path / "hm.db") == in_backup and _items(kept) == 555


def test_restore_refuses_a_file_that_is_not_a_backup(
    tmp_path: Path, write_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(account_block("blog", ["a.xml"]))
    bogus = tmp_path / "notes.db"
    bogus.write_text("not a database at all, just text")
    assert main(["restore", str(bogus), "--yes", "--config", str(config.path)]) == 2
    err = capsys.readouterr().err
    assert "not a SQLite database" in err and "Traceback" not in err


def test_postgres_is_pointed_at_pg_dump(
    write_config: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(account_block("blog", ["a.xml"]))
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@localhost/hm")
    assert main(["backup", "--config", str(config.path)]) == 2
    assert "pg_dump" in capsys.readouterr().err
