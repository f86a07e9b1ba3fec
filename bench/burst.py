"""A webhook burst with the whole engine running: --n signed Facebook comment deliveries over
--seconds (2,000 in 20 s by default) from a separate process, to the app served by uvicorn with
its worker loops, delivering to Slack (the real SlackSurface against the loopback mock Slack of
the tests, each post taking --slack-ms). One comment in five is a safeguarding one, one in five
abusive.

Prints: HTTP 200 latency; for every DSL ping, the delay from its item being stored to its delivery
sent (`Delivery.sent_at`), p50/p99/max, and how many took more than 10 s, measured from when its
batch's ingest began (`Item.received_at`, so the batch's own triage is included) and from when the
batch committed; the same for channel cards; and duplicates (any delivery id posted twice).

    python bench/burst.py [--n 2000] [--seconds 20] [--slack-ms 20] [--database-url postgresql://...]

Figures, never assertions. The sender and the mock Slack run in processes of their own; on a
loaded machine the figures are noisy. `--head-only` triages with the hashed head alone, to see the
engine apart from triage speed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from loopback import serve_in_thread  # noqa: E402
from webhooks import PAGE, SECRET, event  # noqa: E402


def _send(url: str, n: int, seconds: float, out: Any) -> None:
    """The sender, in its own process (as Meta would be): n signed deliveries spread over `seconds`,
    each retried (as Meta retries) when the connection fails; HTTP latencies and final codes."""
    import asyncio
    import hashlib
    import hmac

    import httpx

    async def go() -> tuple[list[float], list[int], int, float]:
        times: list[float] = []
        codes: list[int] = []
        retries = 0
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as http:

            async def one(i: int) -> None:
                nonlocal retries
                body = event(i)
                sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                for attempt in range(5):
                    started = time.perf_counter()
                    try:
                        r = await http.post(url, content=body, headers={"X-Hub-Signature-256": sig})
                    except httpx.HTTPError:
                        retries += 1
                        await asyncio.sleep(0.5 * (attempt + 1))
                        continue
                    times.append((time.perf_counter() - started) * 1000)
                    codes.append(r.status_code)
                    return
                codes.append(0)

            t0 = time.perf_counter()
            tasks = []
            for i in range(n):
                delay = t0 + i * seconds / n - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
            return times, codes, retries, time.perf_counter() - t0

    out.put(asyncio.run(go()))


def _slack(delay_s: float, conn: Any) -> None:
    """The mock Slack of the tests in its own process (Slack is remote: its work must not share the
    service's CPU and GIL). Sends its URL, and when told to stop, the delivery id of every post."""
    from tests.mock_slack import MockSlack

    with MockSlack() as slack:
        slack.delay_s = delay_s
        conn.send(slack.url)
        conn.recv()
        marks = [
            (p.get("metadata") or {}).get("event_payload", {}).get("delivery") for p in slack.called("chat.postMessage")
        ]
        conn.send(marks)


def _config() -> Any:
    from monitors.registry import parse_config

    people = [("a", "A", "moderator", "UA"), ("b", "B", "moderator", "UB"), ("h", "H", "slt", "UH")]
    people.append(("d", "D", "dsl", "UD"))
    return parse_config(
        {
            "chat": {"surface": "slack"},
            "schools": [{"id": "s", "name": "Bench Primary"}],
            "staff": [{"id": i, "name": n, "roles": [r], "slack_user": u} for i, n, r, u in people],
            "accounts": [
                {
                    "id": "fb",
                    "platform": "facebook",
                    "moderators": ["a", "b"],
                    "watch": [PAGE],
                    "credentials": {"page_token": "BENCH_FB_TOKEN"},
                    "channel": {"slack": "CMOD"},
                }
            ],
        }
    )


def _spread(values: list[float]) -> str:
    if not values:
        return "none"
    values = sorted(values)
    p99 = values[int(0.99 * (len(values) - 1))]
    late = sum(v > 10 for v in values)
    p50 = statistics.median(values)
    return f"{len(values)}: p50 {p50:.2f} s, p99 {p99:.2f} s, max {values[-1]:.2f} s, over 10 s {late}"


def _delays(engine: Any, *, committed: bool) -> tuple[list[float], list[float], int]:
    """(DSL ping delays, channel card delays, deliveries not sent) from the item being stored to
    its delivery being sent. Stored: `Item.received_at`, stamped when its batch's ingest began
    (before that batch's triage), or with `committed`, the `processed_at` of the webhook event that
    carried it, stamped just before the batch's commit."""
    import json

    from sqlalchemy import select

    from storage.db import session_scope
    from storage.models import Delivery, Item, Outbox, WebhookEvent

    with session_scope(engine) as s:
        rows = s.execute(
            select(Outbox.kind, Outbox.audience, Delivery.status, Delivery.sent_at, Item.received_at, Item.external_id)
            .join(Delivery, Delivery.outbox_id == Outbox.id)
            .join(Item, Item.id == Outbox.item_id)
        ).all()
        done = {}
        if committed:
            for body, at in s.execute(select(WebhookEvent.body, WebhookEvent.processed_at)):
                for entry in json.loads(body)["entry"]:
                    for change in entry["changes"]:
                        done[change["value"]["comment_id"]] = at
    dsl, cards = [], []
    for kind, audience, status, sent, received, external in rows:
        stored = done.get(external, received) if committed else received
        if status == "sent" and stored is not None:
            delay = (sent - stored).total_seconds()
            if (kind, audience) == ("escalation", "dsl"):
                dsl.append(delay)
            elif kind == "card":
                cards.append(delay)
    return dsl, cards, sum(r[2] != "sent" for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--slack-ms", type=float, default=20)
    parser.add_argument("--database-url", default=None, help="a fresh database (default: SQLite in a temp dir)")
    parser.add_argument("--wait", type=float, default=180, help="how long to wait for every delivery after the burst")
    parser.add_argument(
        "--head-only",
        action="store_true",
        help="triage with the hashed head alone (isolates the engine from triage speed on a loaded machine)",
    )
    args = parser.parse_args()

    from bot.slack import SlackSurface, web_client
    from hallmonitor.app import create_app
    from hallmonitor.service import Service
    from handlers.hybrid import HybridClassifier
    from storage.db import database_url, open_database

    os.environ.update(META_APP_SECRET=SECRET, BENCH_FB_TOKEN="x")
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='hm-burst-')}/bench.db"
    engine = open_database(database_url(url))
    ctx = multiprocessing.get_context("spawn")
    slack_end, here = ctx.Pipe()
    slack = ctx.Process(target=_slack, args=(args.slack_ms / 1000, slack_end), daemon=True)
    slack.start()
    slack_url = here.recv()
    classifier = HybridClassifier(semantic=False) if args.head_only else None
    surface = SlackSurface(web_client("xoxb-bench", slack_url))
    service = Service(config=_config(), engine=engine, surface=surface, classifier=classifier)
    server, port = serve_in_thread(create_app(service))  # the worker loops run inside its lifespan
    triage = "hashed head" if args.head_only else "hybrid triage"
    what = f"{args.n} webhook deliveries in {args.seconds:g} s, {engine.dialect.name}, {triage}"
    what += f", Slack posts {args.slack_ms:g} ms"
    print(f"bench/burst.py: {what}")

    out = ctx.Queue()
    sender = ctx.Process(target=_send, args=(f"http://127.0.0.1:{port}/webhooks/facebook", args.n, args.seconds, out))
    sender.start()
    times, codes, retries, seconds = out.get()
    sender.join()
    times.sort()
    print(
        f"  sent in {seconds:.1f} s: {sum(c == 200 for c in codes)}/{args.n} HTTP 200 ({retries} connection retries), "
        f"p50 {statistics.median(times):.0f} ms, p99 {times[int(0.99 * (len(times) - 1))]:.0f} ms"
    )
    waited = time.perf_counter()
    while time.perf_counter() - waited < args.wait:
        dsl, cards, unsent = _delays(engine, committed=False)
        if len(cards) >= args.n and not unsent:
            break
        time.sleep(1)
    print(f"  everything delivered {time.perf_counter() - waited:.1f} s after the burst ended (unsent {unsent})")
    print(f"  DSL pings, ingest began -> sent: {_spread(dsl)}")
    print(f"  channel cards, ingest began -> sent: {_spread(cards)}")
    dsl, cards, _ = _delays(engine, committed=True)
    print(f"  DSL pings, batch committed -> sent: {_spread(dsl)}")
    print(f"  channel cards, batch committed -> sent: {_spread(cards)}")
    here.send("stop")
    marks = Counter(here.recv())
    print(f"  Slack posts {sum(marks.values())}, duplicates {sum(n - 1 for n in marks.values() if n > 1)}")
    server.should_exit = True
    time.sleep(1.0)
    os._exit(0)  # skip interpreter teardown while the server thread and the workers wind down


if __name__ == "__main__":
    main()
