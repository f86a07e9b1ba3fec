"""Webhook throughput: signed Facebook comment deliveries over loopback HTTP to
the running app (uvicorn), SQLite, hybrid triage.

1. paced at --rate deliveries/s for --n deliveries: p50/p99 from delivery to
   triaged item (processing happens after the 200), and whether anything was lost;
2. unpaced with --concurrency clients: sustained deliveries/s accepted and stored;
3. every DSL ping of both (one in five comments is a safeguarding one): from its
   item being stored to the outbox worker delivering it, while the burst goes on.

    python bench/webhooks.py [--n 1000] [--rate 200] [--concurrency 16]

Figures, never assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from loopback import serve_in_thread  # noqa: E402

SECRET = "bench-secret"
PAGE = "100200300"
TEXTS = [
    "When is the nativity?",
    "Thank you for a lovely assembly!",
    "The head is a clueless idiot",
    "Still no reply about the trip refund",
    "A man keeps asking my daughter for photos",
]


def event(i: int) -> bytes:
    return json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": PAGE,
                    "time": 1763718000,
                    "changes": [
                        {
                            "field": "feed",
                            "value": {
                                "item": "comment",
                                "verb": "add",
                                "comment_id": f"{PAGE}_1_{i}",
                                "post_id": f"{PAGE}_1",
                                "message": f"{TEXTS[i % len(TEXTS)]} ({i})",
                                "created_time": 1763718000,
                                "from": {"id": str(i), "name": f"Parent {i}"},
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()


def _load(url: str, n: int, offset: int, rate: float, concurrency: int, out: object) -> None:
    """The sender, in its own process (as Meta would be): send times and HTTP latencies."""
    import httpx

    async def go() -> tuple[dict[str, float], list[float], list[int], float]:
        sent: dict[str, float] = {}
        times: list[float] = []
        codes: list[int] = []
        gate = asyncio.Semaphore(concurrency if rate <= 0 else 10_000)
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=400)) as http:

            async def one(i: int) -> None:
                body = event(offset + i)
                sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                async with gate:
                    sent[f"{PAGE}_1_{offset + i}"] = time.time()
                    t = time.perf_counter()
                    r = await http.post(url, content=body, headers={"X-Hub-Signature-256": sig})
                    times.append((time.perf_counter() - t) * 1000)
                    codes.append(r.status_code)

            t0 = time.perf_counter()
            tasks = []
            for i in range(n):
                if rate > 0:
                    delay = t0 + i / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
            return sent, times, codes, time.perf_counter() - t0

    out.put(asyncio.run(go()))  # type: ignore[attr-defined]


def dsl_latency(engine: object, surface: object) -> None:
    """Every DSL ping: item stored (received_at) -> delivered by the outbox worker."""
    from sqlalchemy import select

    from storage.db import session_scope
    from storage.models import Item

    with session_scope(engine) as s:  # type: ignore[arg-type]
        stored = {
            i: at.timestamp() for i, at in s.execute(select(Item.id, Item.received_at).where(Item.escalate == "dsl"))
        }
    waited = time.perf_counter()
    while len(surface.dsl) < len(stored) and time.perf_counter() - waited < 60:  # type: ignore[attr-defined]
        time.sleep(0.1)
    lat = sorted(surface.dsl[i] - at for i, at in stored.items() if i in surface.dsl)  # type: ignore[attr-defined]
    if lat:
        print(
            f"  DSL pings: {len(lat)}/{len(stored)} delivered; stored->delivered p50 {statistics.median(lat):.2f} s, "
            f"p99 {lat[int(0.99 * (len(lat) - 1))]:.2f} s, max {lat[-1]:.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    from sqlalchemy import func, select

    from hallmonitor.app import create_app
    from hallmonitor.service import Service
    from monitors.registry import parse_config
    from storage.db import open_database, session_scope
    from storage.models import Item

    class TimingSurface:
        """Accepts every notification and notes when each DSL ping arrived."""

        name = "none"

        def __init__(self) -> None:
            self.dsl: dict[int, float] = {}  # item id -> delivered at (epoch s)

        async def deliver(self, note: Any) -> None:
            if note.kind == "escalation" and note.audience == "dsl":
                self.dsl[note.card.item_id] = time.time()

    os.environ.update(META_APP_SECRET=SECRET, BENCH_FB_TOKEN="x")
    tmp = tempfile.mkdtemp(prefix="hm-webhook-bench-")
    config = parse_config(
        {
            "schools": [{"id": "s", "name": "Bench Primary"}],
            "staff": [
                {"id": "a", "name": "A", "roles": ["moderator"]},
                {"id": "b", "name": "B", "roles": ["moderator"]},
            ],
            "accounts": [
                {
                    "id": "fb",
                    "platform": "facebook",
                    "moderators": ["a", "b"],
                    "watch": [PAGE],
                    "credentials": {"page_token": "BENCH_FB_TOKEN"},
                }
            ],
        }
    )
    engine = open_database(f"sqlite:///{tmp}/bench.db")
    started = time.perf_counter()
    surface = TimingSurface()
    service = Service(config=config, engine=engine, surface=surface)
    start_s = time.perf_counter() - started
    print(f"bench/webhooks.py: loopback HTTP (uvicorn), SQLite, hybrid triage (service start {start_s:.1f} s)")
    app = create_app(service)  # the worker loops run: the outbox delivers while the burst arrives
    server, port = serve_in_thread(app)
    url = f"http://127.0.0.1:{port}/webhooks/facebook"

    import multiprocessing

    def run_load(offset: int, rate: float) -> tuple[dict[str, float], list[float], list[int], float]:
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        proc = ctx.Process(target=_load, args=(url, args.n, offset, rate, args.concurrency, out))
        proc.start()
        result = out.get()
        proc.join()
        return result  # type: ignore[no-any-return]

    def stored() -> int:
        with session_scope(engine) as s:
            return int(s.scalar(select(func.count()).select_from(Item)) or 0)

    def triage_latencies(sent: dict[str, float]) -> list[float]:
        """Delivery (send) to triaged item (received_at is stamped when the item is ingested)."""
        with session_scope(engine) as s:
            rows = s.execute(select(Item.external_id, Item.received_at)).all()
        return sorted((at.timestamp() - sent[eid]) * 1000 for eid, at in rows if eid in sent)

    for label, rate, offset in (
        (f"paced at {args.rate:.0f}/s", args.rate, 0),
        (f"unpaced, {args.concurrency} clients", 0.0, args.n),
    ):
        before = stored()
        sent, times, codes, seconds = run_load(offset, rate)
        waited = time.perf_counter()
        while stored() - before < args.n and time.perf_counter() - waited < 120:
            time.sleep(0.05)
        total = seconds + (time.perf_counter() - waited)
        times.sort()
        ok = sum(c == 200 for c in codes)
        new = stored() - before
        lat = triage_latencies(sent)
        print(
            f"  {label:<20} {ok}/{args.n} accepted (HTTP 200 p99 {times[int(0.99 * (len(times) - 1))]:.0f} ms); "
            f"{new} triaged in {total:.1f} s = {new / total:.0f}/s; delivery->triaged p50 "
            f"{statistics.median(lat):.0f} ms, p99 {lat[int(0.99 * (len(lat) - 1))]:.0f} ms; lost {args.n - new}"
        )
    dsl_latency(engine, surface)
    server.should_exit = True
    time.sleep(0.5)
    os._exit(0)  # skip interpreter teardown while the server thread and webhook worker wind down


if __name__ == "__main__":
    main()
