"""Polling throughput: N feeds served from a local HTTP server (another process,
loopback only), one polling pass cold and one answered with 304s.

    python bench/poll.py [--feeds 1000] [--items 10] [--concurrency 8]

Prints feeds/s and items/s for each pass. Figures, never assertions.
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


def serve(port: int, items: int, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    cache: dict[int, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
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

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    ready.set()
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8, help="as config service.max_concurrent_polls")
    args = parser.parse_args()

    import httpx

    from handlers.poller import poll_once
    from monitors.registry import parse_config
    from storage.db import open_database, session_scope
    from storage.queries import sync_config

    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(port, args.items, ready), daemon=True)
    server.start()
    ready.wait(10)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = parse_config(
                {
                    "service": {"database_url": f"sqlite:///{tmp}/bench.db", "max_concurrent_polls": args.concurrency},
                    "schools": [{"id": "bench", "name": "Bench Primary"}],
                    "staff": [
                        {"id": "a", "name": "A", "roles": ["moderator"]},
                        {"id": "b", "name": "B", "roles": ["moderator"]},
                    ],
                    "accounts": [
                        {
                            "id": "feeds",
                            "platform": "rss",
                            "moderators": ["a", "b"],
                            "watch": [f"http://127.0.0.1:{port}/feed/{i}.xml" for i in range(args.feeds)],
                        }
                    ],
                }
            )
            engine = open_database(config.service.database_url)
            with session_scope(engine) as session:
                sync_config(session, config=config)

            async def one_pass() -> tuple[float, object]:
                limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
                async with httpx.AsyncClient(limits=limits, timeout=30) as client:
                    started = time.perf_counter()
                    summary = await poll_once(engine, config=config, client=client, all_sources=True)
                    return time.perf_counter() - started, summary

            print(
                f"bench/poll.py: {args.feeds} feeds x {args.items} items, concurrency {args.concurrency}, "
                f"SQLite, loopback HTTP"
            )
            for label in ("cold (200, parse, store, triage)", "warm (304 Not Modified)"):
                seconds, summary = asyncio.run(one_pass())
                s = summary  # type: ignore[assignment]
                print(
                    f"  {label:<36} {seconds:7.2f} s  {args.feeds / seconds:8.1f} feeds/s  "
                    f"{s.items_stored / seconds:8.1f} items/s stored  "  # type: ignore[attr-defined]
                    f"(not_modified={s.not_modified}, failed={s.failed}, new={s.items_stored})"
                )  # type: ignore[attr-defined]
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
