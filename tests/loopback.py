"""The loopback HTTP server every test server runs on (feeds, the mock Slack Web API, the mock
Bot Connector, trickling and broken answers).

It serves from a thread on 127.0.0.1 with a free port. A client that resets or abandons a
connection is normal in these tests (a fetch that hits its deadline or byte cap gives up on
purpose), so it is dropped without a traceback. `close` ends every connection still open and
waits for their threads, so nothing a test server started outlives its test. Both matter
beyond tidiness: on CPython 3.11.7 printing a traceback calls `ast.parse` (for the ^^^ marks),
and the AST builder's recursion counter is shared by all threads (CPython gh-106905, fixed in
3.11.8), so a leftover handler thread printing one while another test parses source made that
test fail with "AST constructor recursion depth mismatch".
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackServer(ThreadingHTTPServer):
    """A threading HTTP server on 127.0.0.1 that cleans up after itself (see the module docstring)."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self._open: dict[Any, threading.Thread] = {}  # connection -> the thread serving it
        self._open_lock = threading.Lock()
        self._serving = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        """http://127.0.0.1:<port>, without a trailing slash."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> LoopbackServer:
        self._serving.start()
        return self

    def close(self) -> None:
        """Stop serving, end the connections still open and wait (a few seconds at most) for their threads."""
        if self._serving.is_alive():
            self.shutdown()
        self.server_close()
        with self._open_lock:
            still_open = list(self._open.items())
        for connection, _ in still_open:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for _, thread in still_open:
            thread.join(timeout=5)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open[request] = threading.current_thread()
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # the client gave up or reset: expected here
            return
        super().handle_error(request, client_address)
