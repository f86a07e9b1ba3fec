"""Polling throughput: N feeds served from a local HTTP server (another process,
loopback only) that waits --rtt ms before each answer (a simulated round trip), one
polling pass cold and one answered with 304s, side by side with a reference poller
(httpx async, 50 connections, conditional GET, feedparser, storing nothing).

    python bench/poll.py [--feeds 1000] [--items 10] [--rtt 100] [--concurrency N]

The project runs with its default settings unless --concurrency is given. Prints
feeds/s and items/s for each pass and the ratio to the reference. Figures, never
assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from loopback import free_port  # noqa: E402


def feed_xml(feed: int, items: int) -> bytes:
    entries = "".join(
        f"<item><guid>f{feed}-i{i}</guid><title>Comment {i}</title>"
        f"<description>Comment {i} on post {feed}: what time does the fair start on Saturday?</description>"
        f"<pubDate>{formatdate(1_763_700_000 + i * 60, usegmt=True)}</pubDate></item>"
        for i in range(items)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {feed}</title>{entries}</channel></rss>'
    ).encode()


def serve(port: int, items: int, ready: multiprocessing.synchronize.Event, rtt_s: float = 0.0) -> None:  # type: ignore[name-defined]
    cache: dict[int, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if rtt_s:
                time.sleep(rtt_s)
            feed = int(self.path.strip("/").split("/")[-1].split(".")[0])
            etag = f'"feed-{feed}-v1"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = cache.setdefault(feed, feed_xml(feed, items))
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer.request_queue_size = 1024
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    ready.set()
    server.serve_forever()


async def reference_pass(urls: list[str], etags: dict[str, str]) -> tuple[float, int, int]:
    """The reference: httpx async with 50 connections, conditional GET, feedparser, storing nothing."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--rtt", type=float, default=100, help="simulated round trip, ms")
    parser.add_argument("--concurrency", type=int, default=None, help="service.max_concurrent_polls (default: ours)")
    args = parser.parse_args()

    from hallmonitor.service import Service
    from handlers.poller import poll_once
    from monitors.registry import parse_config
    from storage.db import open_database

    class NoSurface:
        name = "none"

        async def deliver(self, note: object) -> None:
            return None

    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(port, args.items, ready, args.rtt / 1000), daemon=True)
    server.start()
    ready.wait(10)
    urls = [f"http://127.0.0.1:{port}/feed/{i}.xml" for i in range(args.feeds)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            service_conf: dict[str, object] = {"database_url": f"sqlite:///{tmp}/bench.db"}
            if args.concurrency:
                service_conf["max_concurrent_polls"] = args.concurrency
            config = parse_config(
                {
                    "service": service_conf,
                    "schools": [{"id": "bench", "name": "Bench Primary"}],
                    "staff": [
                        {"id": "a", "name": "A", "roles": ["moderator"]},
                        {"id": "b", "name": "B", "roles": ["moderator"]},
                    ],
                    "accounts": [{"id": "feeds", "platform": "rss", "moderators": ["a", "b"], "watch": urls}],
                }
            )
            engine = open_database(config.service.database_url)
            service = Service(config=config, engine=engine, surface=NoSurface())  # loads the triage model once

            async def one_pass() -> tuple[float, object]:
                started = time.perf_counter()
                summary = await poll_once(
                    engine, config=config, client=service.http_client(), all_sources=True, classifier=service.classifier
                )
                return time.perf_counter() - started, summary

            async def run_all() -> None:
                etags: dict[str, str] = {}
                print(
                    f"bench/poll.py: {args.feeds} feeds x {args.items} items, {args.rtt:.0f} ms simulated RTT, "
                    f"max_concurrent_polls {config.service.max_concurrent_polls}, SQLite, loopback HTTP"
                )
                for label in ("cold (200: parse, store, triage, queue)", "warm (304 Not Modified)"):
                    ref_s, entries, ref_304 = await reference_pass(urls, etags)
                    seconds, summary = await one_pass()
                    s = summary  # type: ignore[assignment]
                    print(
                        f"  {label:<40} reference {args.feeds / ref_s:7.1f} feeds/s ({entries} entries parsed, "
                        f"{ref_304} x 304)  |  hallmonitor {args.feeds / seconds:7.1f} feeds/s, "
                        f"{s.items_stored / seconds:7.1f} items/s stored (not_modified={s.not_modified}, "  # type: ignore[attr-defined]
                        f"failed={s.failed}, new={s.items_stored})  |  ratio {ref_s / seconds:.2f}x"  # type: ignore[attr-defined]
                    )
                await service.stop()

            asyncio.run(run_all())
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
