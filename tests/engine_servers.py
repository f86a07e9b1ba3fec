"""Loopback feeds for the engine tests (normal, with a safeguarding entry, trickling, a gzip bomb),
and `posts()`, what the mock Slack was asked to post, counted."""

from __future__ import annotations

import json
import re
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler

from tests.loopback import LoopbackServer
from tests.mock_slack import MockSlack

TOKEN = re.compile(r"Q(\d+)x(\d+)")


def feed_xml(feed: int, items: int, extra: str = "") -> bytes:
    entries = "".join(
        f"<item><guid>f{feed}-i{i}</guid><title>Q{feed}x{i}</title>"
        f"<description>Q{feed}x{i}: what time does the fair start on Saturday?</description></item>"
        for i in range(items)
    )
    channel = f"<channel><title>F{feed}</title>{entries}{extra}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()


def gzip_bomb(decoded_mb: int) -> bytes:
    """`decoded_mb` MiB of zeros, gzip-compressed (about a thousandth of that on the wire)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1 << 20)
    return b"".join(packer.compress(chunk) for _ in range(decoded_mb)) + packer.flush()


class FeedServer:
    """/feed/<n>.xml: feed n with `items` entries (a safeguarding one in /feed/<n>.xml?dsl);
    /trickle.xml: one byte every `trickle_s` seconds until the client gives up or `release` is set
    (then the answer ends, not a feed); /bomb.xml: a gzip bomb. `trickling` is set when a trickle
    starts, `trickle_ended` when one ends, for either reason."""

    def __init__(self, items: int = 3, trickle_s: float = 0.2, bomb_mb: int = 0) -> None:
        self.trickling = threading.Event()
        self.asked: set[int] = set()  # the feed numbers asked for
        self.lock = threading.Lock()
        self.trickle_ended = threading.Event()
        self.release = threading.Event()
        bomb = gzip_bomb(bomb_mb) if bomb_mb else b""
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path.startswith("/trickle"):
                    self._head(200, None)
                    server.trickling.set()
                    try:
                        while not server.release.is_set():
                            self.wfile.write(b" ")
                            self.wfile.flush()
                            time.sleep(trickle_s)
                        self.close_connection = True
                    except OSError:
                        pass
                    finally:
                        server.trickle_ended.set()
                    return
                if self.path.startswith("/bomb"):
                    self._head(200, len(bomb), {"Content-Encoding": "gzip"})
                    self.wfile.write(bomb)
                    return
                feed = int(self.path.split("/")[-1].split(".")[0])
                with server.lock:
                    server.asked.add(feed)
                extra = ""
                if "dsl" in self.path:
                    extra = (
                        "<item><guid>dsl-1</guid><description>A man keeps asking my daughter for photos and "
                        "says not to tell anyone</description></item>"
                    )
                body = feed_xml(feed, items, extra)
                self._head(200, len(body))
                self.wfile.write(body)

            def _head(self, status: int, length: int | None, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                if length is not None:
                    self.send_header("Content-Length", str(length))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = LoopbackServer(Handler).start()
        self.base = self.server.base

    def close(self) -> None:
        self.release.set()
        self.server.close()


def posts(slack: MockSlack) -> Counter[tuple[str, str]]:
    """(channel, card token or headline) -> how many times it was posted to the mock Slack."""
    seen: Counter[tuple[str, str]] = Counter()
    for data in slack.called("chat.postMessage"):
        found = TOKEN.search(json.dumps(data.get("blocks")))
        seen[(str(data.get("channel")), found.group(0) if found else str(data.get("text")))] += 1
    return seen
