"""Polling throughput, side by side with a reference poller in the same run: N feeds of
realistic comments (bench/comments.py) on a local feed server (bench/feedserver.py, its own
process, loopback) that holds every answer back --rtt ms, a simulated network round trip.

    python bench/poll.py [--feeds 1000] [--items 10] [--rtt 100] [--concurrency N] [--profile]

The reference: httpx async with 50 connections, conditional GET, feedparser, storing nothing.
Hall Monitor: one `poll_once` pass with the service's own client and classifier (loaded once,
before timing), DEFAULT settings unless --concurrency is given; cold = fetch, parse, store,
triage and queue every comment; warm = every feed answers 304. Prints feeds/s for both, the
ratios, and where the cold pass's time went (timers around triage and recording, which run in
the writer thread while fetching goes on). --profile adds a cProfile of triage alone on the
cold pass's comments. Figures, never assertions; on a shared machine they are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import io
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import feedserver  # noqa: E402
from comments import comment  # noqa: E402
from loopback import free_port  # noqa: E402

import handlers.polling as polling  # noqa: E402

TIMERS: dict[str, float] = defaultdict(float)
COUNTS: dict[str, int] = defaultdict(int)


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMERS[name] += time.perf_counter() - started
            COUNTS[name] += 1

    return wrapper


async def reference_pass(urls: list[str], etags: dict[str, str]) -> tuple[float, int, int]:
    """httpx async with 50 connections, conditional GET, feedparser, storing nothing."""
    import feedparser
    import httpx

    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    entries = not_modified = 0
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        gate = asyncio.Semaphore(50)

        async def one(url: str) -> None:
            nonlocal entries, not_modified
            async with gate:
                headers = {"If-None-Match": etags[url]} if url in etags else {}
                response = await client.get(url, headers=headers)
            if response.status_code == 304:
                not_modified += 1
                return
            etags[url] = response.headers.get("etag", "")
            entries += len(feedparser.parse(response.content).entries)

        started = time.perf_counter()
        await asyncio.gather(*(one(u) for u in urls))
        return time.perf_counter() - started, entries, not_modified


def bench_config(tmp: str, urls: list[str], concurrency: int | None) -> Any:
    from monitors.registry import parse_config

    service: dict[str, object] = {"database_url": f"sqlite:///{tmp}/bench.db"}
    if concurrency:
        service["max_concurrent_polls"] = concurrency
    return parse_config(
        {
            "service": service,
            "schools": [{"id": "bench", "name": "Bench Primary"}],
            "staff": [
                {"id": "a", "name": "A", "roles": ["moderator"]},
                {"id": "b", "name": "B", "roles": ["moderator"]},
                {"id": "d", "name": "D", "roles": ["dsl"]},
            ],
            "accounts": [{"id": "feeds", "platform": "rss", "moderators": ["a", "b"], "watch": urls}],
        }
    )


class NoSurface:
    name = "console"

    async def deliver(self, note: object) -> None:
        return None


def instrument(classifier: Any) -> None:
    """Timers around the writer thread's steps (the bench's own view; the code is unchanged)."""
    polling._triage = timed("triage (look-up + classify_many)", polling._triage)  # type: ignore[assignment]
    polling._commit = timed("record (one transaction per batch)", polling._commit)  # type: ignore[assignment]
    classifier.classify_many = timed("classify_many", classifier.classify_many)


def report_timers(label: str, wall_s: float, timers: dict[str, float], counts: dict[str, int], items: int) -> None:
    print(f"  {label}: {wall_s:.1f} s wall; the writer thread's steps (they run beside the fetching):")
    for name in ("triage (look-up + classify_many)", "classify_many", "record (one transaction per batch)"):
        print(f"    {name:<36} {timers.get(name, 0.0):7.2f} s in {counts.get(name, 0)} call(s)")
    if timers.get("classify_many"):
        print(f"    triage speed inside the pass: {items / timers['classify_many']:.0f} comments/s")


def profile_triage(classifier: Any, feeds: int, items: int) -> None:
    texts = [comment(f, n) for f in range(feeds) for n in range(items)]
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for start in range(0, len(texts), 1280):
        classifier.classify_many(texts[start : start + 1280], school="bench")
    profiler.disable()
    seconds = time.perf_counter() - started
    print(f"  triage alone, {len(texts)} comments in batches of 1280: {seconds:.1f} s, {len(texts) / seconds:.0f}/s")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(18)
    print("\n".join("    " + line for line in out.getvalue().splitlines()[6:32]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--rtt", type=float, default=100, help="simulated round trip, ms")
    parser.add_argument("--concurrency", type=int, default=None, help="service.max_concurrent_polls (default: ours)")
    parser.add_argument("--profile", action="store_true", help="also profile triage of the cold pass's comments")
    args = parser.parse_args()

    from hallmonitor.service import Service
    from storage.db import open_database

    port = free_port()
    server = feedserver.start(port, args.items, args.rtt / 1000)
    urls = [f"http://127.0.0.1:{port}/feed/{i}.xml" for i in range(args.feeds)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = bench_config(tmp, urls, args.concurrency)
            engine = open_database(config.service.database_url)
            service = Service(config=config, engine=engine, surface=NoSurface())  # the triage model, loaded once
            warm_up = [comment(-1, n) for n in range(64)]  # loads every model part before timing
            service.classifier.classify_many(warm_up, school="bench")  # type: ignore[union-attr]
            instrument(service.classifier)
            asyncio.run(run(args, urls, config, engine, service))
            if args.profile:
                profile_triage(service.classifier, args.feeds, args.items)
    finally:
        server.terminate()


async def run(args: argparse.Namespace, urls: list[str], config: Any, engine: Any, service: Any) -> None:
    print(
        f"bench/poll.py: {args.feeds} feeds x {args.items} comments, {args.rtt:.0f} ms simulated RTT, "
        f"max_concurrent_polls {config.service.max_concurrent_polls}"
        f"{' (default)' if not args.concurrency else ''}, SQLite, loopback HTTP"
    )
    etags: dict[str, str] = {}
    passes: list[tuple[str, float, dict[str, float], dict[str, int]]] = []
    for label in ("cold (store + triage + queue)", "warm (all 304)"):
        ref_s, entries, ref_304 = await reference_pass(urls, etags)
        TIMERS.clear()
        COUNTS.clear()
        started = time.perf_counter()
        s = await polling.poll_once(
            engine, config=config, client=service.http_client(), all_sources=True, classifier=service.classifier
        )
        seconds = time.perf_counter() - started
        passes.append((label, seconds, dict(TIMERS), dict(COUNTS)))
        print(
            f"  {label:<30} reference {args.feeds / ref_s:6.1f} feeds/s ({entries} entries, {ref_304} x 304) | "
            f"hallmonitor {args.feeds / seconds:6.1f} feeds/s, {s.items_stored / seconds:6.1f} items/s stored "
            f"(not_modified={s.not_modified}, failed={s.failed}, new={s.items_stored}) | ratio {ref_s / seconds:.2f}x",
            flush=True,
        )
    await service.stop()
    for label, seconds, timers, counts in passes:
        report_timers(label, seconds, timers, counts, args.feeds * args.items)


if __name__ == "__main__":
    main()
