"""Scale-out: N feeds on a local feed server with a simulated round trip, polled by real
`hallmonitor run` processes that post every card to a local Slack stand-in; SQLite with one
process, then Postgres with 1, 2 and 4 processes on one database.

    python bench/scale.py [--feeds 10000] [--items 2] [--rtt 100] [--workers 1,2,4] [--skip-sqlite]

Postgres: $DATABASE_URL (a server URL; a fresh database is made on it per run), else one is
started on loopback with .ci/postgres.sh (the Debian package; installed when missing).
Prints, per configuration: feeds/s and items/s for the first full pass (every feed fetched,
parsed, stored, triaged and queued), comment-to-card latency p50/p99 (item stored -> card
posted to Slack), and duplicates (cards posted more than once; must be 0). Figures, never
assertions.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from loopback import free_port  # noqa: E402
from poll import serve  # noqa: E402

COMMENT = re.compile(r"Comment \d+ on post \d+")
CONFIG = """
[service]
tick = "2s"
http_timeout = "20s"

[chat]
surface = "slack"

[[schools]]
id = "bench"
name = "Bench Primary"

[[staff]]
id = "a"
name = "A"
roles = ["moderator"]
slack_user = "UA"

[[staff]]
id = "b"
name = "B"
roles = ["moderator"]
slack_user = "UB"

[[accounts]]
id = "feeds"
platform = "rss"
moderators = ["a", "b"]
poll_every = "1h"
channel = {{ slack = "CMOD" }}
watch = [{watch}]
"""


def run_config(label: str, url: str, workers: int, feeds: int, items: int, port: int, tmp: Path) -> None:
    from sqlalchemy import func, select
    from sqlmodel import col

    from storage.db import database_url, open_database, session_scope
    from storage.models import Item, Source
    from tests.mock_slack import MockSlack

    engine = open_database(database_url(url))  # migrate once, before the workers start
    watch = ", ".join(f'"http://127.0.0.1:{port}/feed/{i}.xml"' for i in range(feeds))
    config = tmp / f"scale-{uuid.uuid4().hex[:6]}.toml"
    config.write_text(CONFIG.format(watch=watch))
    posted: dict[str, list[float]] = {}

    class Slack(MockSlack):
        def answer(self, method: str, data: dict[str, object]) -> dict[str, object]:
            if method == "chat.postMessage":
                found = COMMENT.search(str(data.get("blocks")))
                if found:
                    with self._lock:
                        posted.setdefault(found.group(0), []).append(time.time())
            return super().answer(method, data)

    with Slack() as slack:
        env = {**os.environ, "DATABASE_URL": url, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": "s"}
        env["SLACK_API_URL"] = slack.url
        log = (tmp / "scale.log").open("ab")
        started = time.time()
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "hallmonitor.cli", "run", "--config", str(config), "--port", str(free_port())],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
            for _ in range(workers)
        ]

        def polled() -> int:
            with session_scope(engine) as s:
                done = select(func.count()).select_from(Source).where(col(Source.last_polled_at).is_not(None))
                return int(s.scalar(done) or 0)

        while polled() < feeds and time.time() - started < 3600:
            time.sleep(0.5)
        pass_s = time.time() - started
        want = feeds * items
        while len(posted) < want and time.time() - started < 3600:
            time.sleep(0.5)
            if int(time.time() - started) % 15 == 0:
                print(f"    ... {len(posted)}/{want} cards posted", file=sys.stderr, flush=True)
        time.sleep(3)
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
    with session_scope(engine) as s:
        rows = s.execute(select(Item.text, Item.received_at)).all()
    stored = {m.group(0): at.timestamp() for t, at in rows if (m := COMMENT.search(t))}
    engine.dispose()
    lat = sorted(min(v) - stored[k] for k, v in posted.items() if k in stored)
    dupes = sum(n - 1 for n in Counter({k: len(v) for k, v in posted.items()}).values() if n > 1)
    p99 = lat[int(0.99 * (len(lat) - 1))] if lat else float("nan")
    print(
        f"  {label:<22} {feeds / pass_s:7.1f} feeds/s  {len(stored) / pass_s:7.1f} items/s (first pass "
        f"{pass_s:.0f} s)  comment->card p50 {statistics.median(lat) if lat else float('nan'):.1f} s, "
        f"p99 {p99:.1f} s  cards {len(posted)}/{want}  duplicates {dupes}",
        flush=True,
    )


def postgres_server() -> str:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    env = {**os.environ, "HM_PG_DIR": "/tmp/hallmonitor-scale-pg", "HM_PG_PORT": "55452"}
    out = subprocess.run(["bash", str(REPO / ".ci" / "postgres.sh"), "start"], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"could not start Postgres: {out.stderr[-500:]}")
    return out.stdout.strip().split("=", 1)[1]


def fresh_database(server: str) -> str:
    from sqlalchemy import create_engine, text

    from storage.db import database_url

    admin = create_engine(database_url(server), isolation_level="AUTOCOMMIT")
    name = f"hm_scale_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=2)
    parser.add_argument("--rtt", type=float, default=100, help="simulated round trip, ms")
    parser.add_argument("--workers", default="1,2,4", help="Postgres process counts")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()

    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(port, args.items, ready, args.rtt / 1000), daemon=True)
    server.start()
    ready.wait(10)
    print(
        f"bench/scale.py: {args.feeds} feeds x {args.items} comments, {args.rtt:.0f} ms simulated RTT, "
        f"default settings, hybrid triage, cards to a loopback Slack",
        flush=True,
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if not args.skip_sqlite:
                url = f"sqlite:///{tmp}/scale.db"
                run_config("SQLite, 1 process", url, 1, args.feeds, args.items, port, Path(tmp))
            if not args.skip_postgres:
                pg = postgres_server()
                for n in (int(w) for w in args.workers.split(",")):
                    label = f"Postgres, {n} process{'es' if n > 1 else ''}"
                    run_config(label, fresh_database(pg), n, args.feeds, args.items, port, Path(tmp))
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
