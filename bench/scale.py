"""Scale: N feeds (10,000 by default) of realistic comments on a local feed server that holds
every answer back --rtt ms, polled by real `hallmonitor run` processes that post every card to
a local Slack stand-in (tests/mock_slack.py); SQLite with one process, then PostgreSQL with 1,
2 and 4 processes on one database.

    python bench/scale.py [--feeds 10000] [--items 2] [--rtt 100] [--workers 1,2,4]
                          [--skip-sqlite] [--skip-postgres] [--timeout 1800] [--stall 120]

PostgreSQL: $DATABASE_URL (a server URL; a fresh database is made on it for each run), else one
is started on loopback with .ci/postgres.sh (as CI does; needs root and the Debian package).
Several processes share the work only with the engine's leases (issue 12); on a build without
them, more than one process polls and posts twice, and the duplicates column says so.

Per configuration it prints: feeds/s and items/s for the first full pass (every feed fetched,
parsed, stored, triaged and queued), comment-to-card latency p50/p99 (from the feed server's
first answer for a feed to the moderators' channel post of each of its comments), cards posted
of those expected, and duplicates (a comment posted to the channel more than once; must be 0).
It never waits unbounded: progress is read with a short query under a timeout, a run stops when
every card is in, when no card has come for --stall seconds, or at --timeout. Figures, never
assertions; on a shared machine they are noisy.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import feedserver  # noqa: E402
from loopback import free_port  # noqa: E402

MARK = re.compile(r"#f(\d+)-i(\d+)")
CONFIG = """
[service]
tick = "2s"

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

[[staff]]
id = "h"
name = "H"
roles = ["slt", "head"]
slack_user = "UH"

[[staff]]
id = "d"
name = "D"
roles = ["dsl"]
slack_user = "UD"

[[accounts]]
id = "feeds"
platform = "rss"
moderators = ["a", "b"]
poll_every = "1h"
channel = {{ slack = "CMOD" }}
watch = [{watch}]
"""


class Cards:
    """The local Slack: records when each comment's card reached the moderators' channel."""

    def __init__(self) -> None:
        from tests.mock_slack import MockSlack

        posts: dict[tuple[int, int, str], list[float]] = defaultdict(list)
        self.posts = posts

        class Slack(MockSlack):
            def answer(self, method: str, data: dict[str, Any]) -> dict[str, Any]:
                if method == "chat.postMessage":  # the channel card, or a DM (a DSL's sees the link)
                    found = MARK.search(str(data.get("blocks")))
                    if found:
                        key = (int(found.group(1)), int(found.group(2)), str(data.get("channel")))
                        posts[key].append(time.time())  # MockSlack calls answer() with its lock held
                    self.calls.clear()  # keep memory flat over tens of thousands of posts
                return super().answer(method, data)

        self.slack = Slack()

    def count(self) -> int:
        """Comments with a post anywhere."""
        with self.slack._lock:
            return len({(feed, n) for feed, n, _where in self.posts})


def probe(url: str) -> Any:
    """An engine for progress queries that can never hang the bench: short timeouts throughout."""
    from sqlalchemy import create_engine

    from storage.db import database_url

    real = database_url(url)
    if real.startswith("sqlite"):
        return create_engine(real, connect_args={"timeout": 2})
    return create_engine(real, connect_args={"connect_timeout": 5, "options": "-c statement_timeout=2000"})


def polled(engine: Any) -> tuple[int, int] | None:
    """(sources polled at least once, items stored), or None if the database is busy just now."""
    from sqlalchemy import text

    try:
        with engine.connect() as conn:
            done = conn.execute(text("SELECT count(*) FROM source WHERE last_polled_at IS NOT NULL")).scalar()
            items = conn.execute(text("SELECT count(*) FROM item")).scalar()
        return int(done or 0), int(items or 0)
    except Exception:
        return None


def run_config(label: str, url: str, workers: int, args: argparse.Namespace, port: int, tmp: Path) -> None:
    from monitors.registry import load_config
    from storage.db import open_database, session_scope
    from storage.queries import sync_config

    served: dict[int, float] = feedserver.SERVED
    served.clear()
    watch = ", ".join(f'"http://127.0.0.1:{port}/feed/{i}.xml"' for i in range(args.feeds))
    config = tmp / f"scale-{uuid.uuid4().hex[:6]}.toml"
    config.write_text(CONFIG.format(watch=watch))
    # migrate and sync the config once, before the workers start: several processes starting at
    # once on an empty database race to insert the same school row and one of them exits
    engine = open_database(url)
    with session_scope(engine) as session:
        sync_config(session, config=load_config(config))
    engine.dispose()
    cards, want = Cards(), args.feeds * args.items
    with cards.slack as slack:
        env = {**os.environ, "DATABASE_URL": url, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": "s"}
        env |= {"SLACK_API_URL": slack.url, "HALLMONITOR_WEB_SECRET": "b" * 40}
        logs = Path(tempfile.gettempdir()) / "hallmonitor-scale"
        logs.mkdir(exist_ok=True)
        log_path = logs / f"{label.split(',')[0].lower()}-{workers}-{uuid.uuid4().hex[:6]}.log"
        log = log_path.open("ab")
        print(f"    logs: {log_path}", flush=True)
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
        try:
            pass_s, stored = watch_run(url, cards, args, want, started, procs)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
    if pass_s is not None and served:  # from the first feed fetched, not from process start (startup apart)
        startup = min(served.values()) - started
        print(f"    start-up (config, schema sync, model) {startup:.0f} s before the first fetch", flush=True)
        pass_s -= startup
    print_figures(label, args, cards, served, pass_s, stored, want)


def watch_run(
    url: str, cards: Cards, args: argparse.Namespace, want: int, started: float, procs: list[Any]
) -> tuple[float | None, int]:
    """Wait for the first full pass and then the cards, every wait bounded."""
    engine, pass_s, stored, last_count, last_change, shown = probe(url), None, 0, -1, time.time(), 0.0
    try:
        while time.time() - started < args.timeout:
            time.sleep(1)
            if any(p.poll() is not None for p in procs):
                print("    a hallmonitor run process exited; see its log", file=sys.stderr, flush=True)
                break
            progress = polled(engine) if pass_s is None else None
            if progress is not None:
                stored = progress[1]
                if progress[0] >= args.feeds:
                    pass_s, last_change = time.time() - started, time.time()
            got = cards.count()
            if got != last_count:
                last_count, last_change = got, time.time()
            if got >= want or (pass_s is not None and time.time() - last_change > args.stall):
                break
            if time.time() - shown >= 30:
                shown = time.time()
                done = progress[0] if progress else "?"
                print(f"    ... {time.time() - started:5.0f} s: {done} feeds polled, {got}/{want} cards", flush=True)
        time.sleep(2)  # a last look for late duplicates
        final = polled(engine)
        return pass_s, final[1] if final else stored
    finally:
        engine.dispose()


def print_figures(
    label: str,
    args: argparse.Namespace,
    cards: Cards,
    served: dict[int, float],
    pass_s: float | None,
    stored: int,
    want: int,
) -> None:
    with cards.slack._lock:
        posts = {k: list(v) for k, v in cards.posts.items()}
    first: dict[tuple[int, int], float] = {}
    for (feed, n, _where), times in posts.items():
        first[(feed, n)] = min(first.get((feed, n), min(times)), min(times))
    lat = sorted(at - served[feed] for (feed, _n), at in first.items() if feed in served)
    dupes = sum(len(v) - 1 for v in posts.values())  # the same comment twice in one place
    p50 = f"{statistics.median(lat):.1f}" if lat else "n/a"
    p99 = f"{lat[int(0.99 * (len(lat) - 1))]:.1f}" if lat else "n/a"
    rate = (
        f"{args.feeds / pass_s:7.1f} feeds/s {stored / pass_s:7.1f} items/s (first pass {pass_s:.0f} s)"
        if pass_s
        else "first pass not finished"
    )
    print(
        f"  {label:<22} {rate}  comment->card p50 {p50} s, p99 {p99} s  carded {len(first)}/{want} "
        f"(posts {sum(len(v) for v in posts.values())}, DMs included)  duplicates {dupes}",
        flush=True,
    )


def postgres_server() -> str:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    env = {**os.environ, "HM_PG_DIR": "/tmp/hallmonitor-scale-pg", "HM_PG_PORT": "55452"}
    out = subprocess.run(
        ["bash", str(REPO / ".ci" / "postgres.sh"), "start"], env=env, capture_output=True, text=True, timeout=600
    )
    if out.returncode:
        raise SystemExit(f"bench: could not start PostgreSQL: {out.stderr[-500:]}")
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=2)
    parser.add_argument("--rtt", type=float, default=100, help="simulated round trip, ms")
    parser.add_argument("--workers", default="1,2,4", help="PostgreSQL process counts")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per configuration, at most")
    parser.add_argument("--stall", type=float, default=120, help="stop when no card came for this long")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the workers are stopped on the way out

    port = free_port()
    feedserver.start_thread(port, args.items, args.rtt / 1000, feedserver.SERVED)
    print(
        f"bench/scale.py: {args.feeds} feeds x {args.items} comments, {args.rtt:.0f} ms simulated RTT, "
        f"default settings, shipped triage, cards to a loopback Slack",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_sqlite:
            run_config("SQLite, 1 process", f"sqlite:///{tmp}/scale.db", 1, args, port, Path(tmp))
        if not args.skip_postgres:
            server = postgres_server()
            for n in (int(w) for w in args.workers.split(",")):
                label = f"PostgreSQL, {n} process{'es' if n > 1 else ''}"
                run_config(label, fresh_database(server), n, args, port, Path(tmp))


if __name__ == "__main__":
    main()
