"""Shared fixtures: real SQLite files, configs written as TOML, no real tokens."""

from __future__ import annotations

import os
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.config import Config
from monitors.registry import load_config
from storage.db import open_database, session_scope
from storage.queries import sync_config
from tests.engine_servers import FeedServer
from tests.loopback import LoopbackServer

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"
FEEDS = FIXTURES / "feeds"

SECRET_PREFIXES = ("SLACK_", "MICROSOFT_", "META_", "FACEBOOK_", "YOUTUBE_", "X_", "MASTODON_", "BLUESKY_")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see real tokens or a real database URL (bolt-python does the same)."""
    for name in list(os.environ):
        if name.startswith(SECRET_PREFIXES) or name in ("DATABASE_URL", "HALLMONITOR_CONFIG"):
            monkeypatch.delenv(name, raising=False)


BASE_CONFIG = """
[service]
database_url = "sqlite:///{db}"
tick = "1s"

[chat]
surface = "console"
read_commands = false

[[schools]]
id = "northgate"
name = "Northgate Primary"
nation = "england"

[[staff]]
id = "amira"
name = "Amira Khan"
roles = ["moderator"]

[[staff]]
id = "ben"
name = "Ben Okafor"
roles = ["moderator"]

[[staff]]
id = "helen"
name = "Helen Moore"
roles = ["slt"]

[[staff]]
id = "dana"
name = "Dana Price"
roles = ["dsl"]

[[staff]]
id = "sam"
name = "Sam Teacher"
roles = ["staff"]
"""


def account_block(account_id: str, urls: list[str], kind: str = "comment", poll_every: str = "5m") -> str:
    watch = ", ".join(f'{{ url = "{u}", kind = "{kind}" }}' for u in urls)
    return textwrap.dedent(
        f"""
        [[accounts]]
        id = "{account_id}"
        platform = "rss"
        moderators = ["amira", "ben"]
        poll_every = "{poll_every}"
        watch = [{watch}]
        """
    )


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Config]:
    def write(*accounts: str, extra: str = "") -> Config:
        path = tmp_path / "config.toml"
        path.write_text(BASE_CONFIG.format(db=tmp_path / "hm.db") + extra + "".join(accounts), encoding="utf-8")
        return load_config(path)

    return write


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    """Loopback feeds for the engine tests (tests/engine_servers.py), three entries each."""
    server = FeedServer(items=3)
    yield server
    server.close()


@pytest.fixture
def synced_config(write_config: Callable[..., Config], engine: Engine) -> Config:
    """The base school and staff, console surface, no accounts; written to the engine's database."""
    written = write_config()
    with session_scope(engine) as s:
        sync_config(s, config=written)
    return written


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A real SQLite file; or, with HALLMONITOR_TEST_DATABASE_URL=postgresql://..., a fresh
    Postgres database per test (dropped afterwards)."""
    server = os.environ.get("HALLMONITOR_TEST_DATABASE_URL")
    if not server:
        eng = open_database(f"sqlite:///{tmp_path / 'hm.db'}")
        yield eng
        eng.dispose()
        return
    from sqlalchemy import create_engine, text

    from storage.db import database_url

    admin = create_engine(database_url(server), isolation_level="AUTOCOMMIT")
    name = f"hm_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    eng = open_database(database_url(server.rsplit("/", 1)[0] + "/" + name))
    try:
        yield eng
    finally:
        eng.dispose()
        with admin.connect() as conn:  # FORCE: a command run in-process may still hold a connection
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


class Trickle(BaseHTTPRequestHandler):
    """Headers at once, then a byte every 0.3 s: every read is quick, the whole answer never is."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(1000):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.3)
        except OSError:
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def trickle_url() -> Iterator[str]:
    """A loopback feed address that trickles its answer (a download that never finishes in time)."""
    server = LoopbackServer(Trickle).start()
    yield f"{server.base}/feed"
    server.close()
