"""The HTTP edge in front of every route: a request body limit and a body read timeout.

A request that declares a Content-Length over the limit is answered 413 before any of its
body is read; a chunked one is cut off (413) as soon as it passes the limit, so a 20 MB post
never sits in memory or in a log. A client that stops sending half way through its body is
answered 408 after `read_timeout` seconds instead of holding a worker. Bodies are never
logged here.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_LIMIT = 1_000_000  # bytes: Slack, Teams and Meta deliveries are a few kB
DEFAULT_READ_TIMEOUT = 10.0  # seconds to receive each part of a body


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


class BodyLimit:
    """ASGI middleware: 413 over `limit` bytes, 408 when the body stalls for `read_timeout` s."""

    def __init__(self, app: ASGIApp, *, limit: int = DEFAULT_LIMIT, read_timeout: float = DEFAULT_READ_TIMEOUT):
        self.app, self.limit, self.read_timeout = app, limit, read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            log.warning("request_refused reason=too_large path=%s declared_bytes=%d", scope.get("path"), declared)
            await _answer(send, 413, f"request body over the {self.limit} byte limit")
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, self._receiver(scope, receive), tracked_send)
        except _Refused as refused:
            log.warning("request_refused reason=%s path=%s", refused.message, scope.get("path"))
            if not started:
                await _answer(send, refused.status, refused.message)

    def _receiver(self, scope: Scope, receive: Receive) -> Receive:
        seen, done = 0, False

        async def receiver() -> Message:
            nonlocal seen, done
            if done:  # after the body: waiting for a disconnect is not a read, so no timeout
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout)
            except TimeoutError:
                raise _Refused(408, f"request body not received within {self.read_timeout:g} s") from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                done = not message.get("more_body", False)
                if seen > self.limit:
                    raise _Refused(413, f"request body over the {self.limit} byte limit")
            return message

        return receiver


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def read_json(body: bytes) -> Any:
    """Parsed JSON, or ValueError for text that is not JSON or nests too deeply to parse."""
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def slack_headers_ok(request: Request) -> bool:
    """Slack's signature headers in the shape Slack sends (digits; v0= and hex), checked before bolt
    so a malformed one is a 401, never a crash inside the verifier."""
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    hexdigits = set("0123456789abcdef")
    return (
        timestamp.isascii() and timestamp.isdigit() and signature.startswith("v0=") and set(signature[3:]) <= hexdigits
    )
