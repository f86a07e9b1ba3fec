"""A local feed server for the polling benches (its own process, loopback only): N RSS feeds of
realistic comments (bench/comments.py), an ETag per feed and 304 for a matching If-None-Match,
every answer held back `rtt_s` (a simulated network round trip). aiohttp, so a thousand slow
answers at once cost no threads.

Feed i lives at /feed/<i>.xml; its items' guids are f<i>-i<n>, and each link ends #f<i>-i<n>.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import threading
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parent))

from comments import comment

BASE_TIME = 1_796_000_000  # late 2026
SERVED: dict[int, float] = {}  # feed -> first full answer, for start_thread


def feed_xml(feed: int, items: int, port: int) -> bytes:
    entries = "".join(
        f'<item><guid isPermaLink="false">f{feed}-i{n}</guid>'
        f"<link>http://127.0.0.1:{port}/post/{feed}#f{feed}-i{n}</link>"
        f"<author>parent{n}@example.org (Parent {n})</author>"
        f"<description>{escape(comment(feed, n))}</description>"
        f"<pubDate>{formatdate(BASE_TIME + n * 60, usegmt=True)}</pubDate></item>"
        for n in range(items)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Post {feed} comments</title>'
        f"<link>http://127.0.0.1:{port}/post/{feed}</link>{entries}</channel></rss>"
    ).encode()


def make_app(port: int, items: int, rtt_s: float, served: dict[int, float] | None = None) -> Any:
    """The aiohttp app; `served` (feed -> time.time() of its first full answer) when given."""
    from aiohttp import web

    cache: dict[int, bytes] = {}

    async def handle(request: web.Request) -> web.Response:
        if rtt_s:
            await asyncio.sleep(rtt_s)
        feed = int(request.match_info["feed"])
        etag = f'"feed-{feed}-v1"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        body = cache.get(feed) or cache.setdefault(feed, feed_xml(feed, items, port))
        if served is not None:
            served.setdefault(feed, time.time())
        return web.Response(body=body, headers={"ETag": etag, "Content-Type": "application/rss+xml; charset=utf-8"})

    app = web.Application()
    app.router.add_get("/feed/{feed:\\d+}.xml", handle)
    return app


async def _listen(app: Any, port: int) -> Any:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    return runner


def serve(port: int, items: int, rtt_s: float, ready: Any) -> None:
    """Run the server until the process is terminated; `ready` (an Event) is set once it listens."""

    async def main() -> None:
        await _listen(make_app(port, items, rtt_s), port)
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def start_thread(port: int, items: int, rtt_s: float, served: dict[int, float]) -> None:
    """The server on a daemon thread of this process, recording when each feed was first served."""
    ready = threading.Event()

    def run() -> None:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(_listen(make_app(port, items, rtt_s, served), port))
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, name="feed-server", daemon=True).start()
    if not ready.wait(30):
        raise SystemExit("bench: the feed server did not start within 30 s")


def start(port: int, items: int, rtt_s: float) -> multiprocessing.Process:
    """The server in a daemon process, listening when this returns."""
    ready = multiprocessing.Event()
    process = multiprocessing.Process(target=serve, args=(port, items, rtt_s, ready), daemon=True)
    process.start()
    if not ready.wait(30):
        process.terminate()
        raise SystemExit("bench: the feed server did not start within 30 s")
    return process
