"""The engine under failure with the real service: `hallmonitor run` processes stopped by SIGTERM
or kill -9 mid-delivery, and two processes on one Postgres. Real SQLite or Postgres, real HTTP;
only Slack (tests.mock_slack, slow on purpose, keeping history with metadata) and the feeds are
local stand-ins."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import col

from storage.models import Delivery, Item
from tests.conftest import BASE_CONFIG, REPO, account_block
from tests.engine_servers import FeedServer, posts
from tests.helpers import count
from tests.mock_slack import MockSlack
from tests.test_service import free_port

SLACK_USERS = (("Amira Khan", "UAMIRA"), ("Ben Okafor", "UBEN"), ("Helen Moore", "UHELEN"), ("Dana Price", "UDANA"))


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {seconds:g} s")


def _slack_config(tmp_path: Path, urls: list[str], *, lease: str = "3s") -> Path:
    text = BASE_CONFIG.format(db=tmp_path / "hm.db").replace('surface = "console"', 'surface = "slack"')
    text = text.replace('tick = "1s"', f'tick = "1s"\nlease = "{lease}"\nhttp_timeout = "5s"')
    for name, user in SLACK_USERS:
        text = text.replace(f'name = "{name}"', f'name = "{name}"\nslack_user = "{user}"')
    text += account_block("blog", urls) + 'channel = { slack = "CMOD" }\n'
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def _run(config: Path, slack: MockSlack, database_url: str, log: Path) -> subprocess.Popen[bytes]:
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
    database = f"sqlite:///{tmp_path / 'hm.db'}"
    tokens = _expected(3, 8)
    with MockSlack() as slack:
        slack.delay_s = 0.4  # each post is in the channel at once, answered 0.4 s later: a kill lands mid-send
        try:
            first = _run(config, slack, database, log)
            wait_for(lambda: len(slack.called("chat.postMessage")) >= 4, 90, "the first cards")
            first.send_signal(how)
            assert first.wait(40) is not None
            posted_before = len(slack.called("chat.postMessage"))
            second = _run(config, slack, database, log)
            wait_for(lambda: tokens <= {t for _c, t in posts(slack)}, 90, "every card after the restart")
            time.sleep(1.5)  # anything else queued goes out too
            second.terminate()
            second.wait(40)
        finally:
            server.close()
        counted = posts(slack)
    output = log.read_text()
    twice = {key: n for key, n in counted.items() if n > 1}
    assert posted_before < len(tokens), "the stop came after every card was posted; nothing was tested"
    assert not twice, f"posted more than once: {twice}"
    assert "Traceback" not in output, output[-3000:]
    if how == signal.SIGTERM:
        assert "workers_stopped" in output  # the graceful path ran: in-flight sends finished, leases given back


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
    urls[7] += "?dsl"  # a safeguarding comment too: its DSL ping must go once
    config, log = _slack_config(tmp_path, urls, lease="30s"), tmp_path / "run.log"
    try:
        with MockSlack() as slack:
            slack.delay_s = 0.02
            workers = [_run(config, slack, url, log) for _ in range(2)]
            tokens = _expected(feeds, items)
            try:
                wait_for(lambda: tokens <= {t for _c, t in posts(slack)}, 150, "every card from two workers")
                wait_for(lambda: any(c == "DUDANA" for c, _t in posts(slack)), 30, "the DSL ping")
                time.sleep(2)
            finally:
                for w in workers:
                    w.terminate()
                for w in workers:
                    w.wait(40)
            counted = posts(slack)
        engine = open_database(database_url(url))
        stored = count(engine, Item)
        unsent = count(engine, Delivery, col(Delivery.status) != "sent")
        engine.dispose()
    finally:
        server.close()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
    output = log.read_text()
    assert stored == feeds * items + 1 and unsent == 0
    assert not {k: n for k, n in counted.items() if n > 1}, "a message was posted twice"
    assert output.count("workers_started") == 2
    assert "deadlock" not in output.lower() and "Traceback" not in output, output[-3000:]
