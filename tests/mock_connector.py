"""A local stand-in for the Bot Framework Connector (the Teams service URL), on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.loopback import LoopbackServer


class MockConnector:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with mock._lock:
                    mock.calls.append((self.command, self.path, body))
                    n = len(mock.calls)
                raw = json.dumps({"id": f"activity-{n}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_POST = do_PUT = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.server = LoopbackServer(Handler)
        self.url = self.server.base + "/"

    def sent(self) -> list[tuple[str, str, dict[str, Any]]]:
        with self._lock:
            return list(self.calls)

    def __enter__(self) -> MockConnector:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()
