"""Loopback plumbing shared by the bench scripts: a free port, and the app served by uvicorn
in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_in_thread(app: Any) -> tuple[Any, int]:
    """Start uvicorn on a free loopback port in a daemon thread; once it listens, return the server
    (set `should_exit` to stop it) and its port."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, port
