"""SQLite backups that are safe while the service runs, and restore.

`backup` uses SQLite's online backup API (`sqlite3.Connection.backup`): it copies a
consistent snapshot page by page, WAL contents included, while the service keeps writing,
which copying the .db file (without its -wal file) does not. `restore` checks the backup,
keeps the current database beside it, then copies the backup in with the same API.
Postgres deployments use `pg_dump` / `pg_restore` instead.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from core.errors import HallMonitorError

PREFIX = "sqlite:///"


def sqlite_file(url: str) -> Path:
    """The database file of a SQLite URL, or a sentence saying what to use instead."""
    if not url.startswith(PREFIX) or url.endswith(":memory:"):
        raise HallMonitorError(
            "backup and restore work on the SQLite file; for PostgreSQL use pg_dump and pg_restore "
            "(README: Deployment, Backups)"
        )
    return Path(url.removeprefix(PREFIX))


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def _copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst, pages=1024)
    finally:
        src.close()
        dst.close()


def check(path: Path) -> None:
    """A readable, intact Hall Monitor database, or a sentence saying what is wrong with it."""
    if not path.is_file():
        raise HallMonitorError(f"{path}: no such file")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise HallMonitorError(f"{path}: not a SQLite database ({exc})") from None
    if ok != "ok":
        raise HallMonitorError(f"{path}: the database is damaged ({ok})")
    if not {"alembic_version", "item"} <= tables:
        raise HallMonitorError(f"{path}: not a Hall Monitor database (no item table)")


def backup(database: Path, *, to: Path | None = None) -> Path:
    """Copy the live database to `to` (a file name with a suffix such as .db, or else a folder, where
    the copy gets a time-stamped name; default backups/ beside the database); checked after."""
    if not database.is_file():
        raise HallMonitorError(f"{database}: no database there yet; nothing to back up")
    target = to or database.parent / "backups"
    if target.is_dir() or not target.suffix:
        target.mkdir(parents=True, exist_ok=True)
        target = target / f"{database.stem}-{_stamp()}.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        raise HallMonitorError(f"{target}: already exists; choose another name")
    _copy(database, target)
    check(target)
    return target


def restore(backup_file: Path, database: Path) -> Path | None:
    """Replace the database with a checked backup; the database it replaced is kept and returned."""
    check(backup_file)
    kept = None
    if database.is_file():
        kept = database.with_name(f"{database.stem}-before-restore-{_stamp()}.db")
        _copy(database, kept)
    database.parent.mkdir(parents=True, exist_ok=True)
    _copy(backup_file, database)
    return kept
