"""The test servers clean up after themselves: a client that resets a connection prints no
traceback, and closing a server leaves none of its threads behind (a leftover thread printing
a traceback made a later test's `ast.parse` fail on CPython 3.11.7; see tests/loopback.py)."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from tests.engine_servers import FeedServer


def _ask(server: FeedServer) -> socket.socket:
    """A keep-alive request for one feed, its answer left unread."""
    conn = socket.create_connection(("127.0.0.1", int(server.base.rsplit(":", 1)[1])))
    conn.sendall(b"GET /feed/1.xml HTTP/1.1\r\nHost: x\r\n\r\n")
    conn.recv(1)
    return conn


def _handlers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "process_request_thread" in t.name and t.is_alive()]


def test_a_client_that_resets_its_connection_prints_no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    server = FeedServer()
    try:
        conn = _ask(server)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        conn.close()
        for thread in _handlers():
            thread.join(timeout=5)
    finally:
        server.close()
    assert "Traceback" not in capfd.readouterr().err


def test_closing_a_server_ends_the_connections_left_open_and_their_threads() -> None:
    before = set(_handlers())
    server = FeedServer()
    conn = _ask(server)  # a keep-alive connection the client never closes
    try:
        assert set(_handlers()) - before
        server.close()
        assert set(_handlers()) - before == set()
    finally:
        conn.close()
