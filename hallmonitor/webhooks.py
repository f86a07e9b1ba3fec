"""The webhook HTTP edge: Meta (Facebook and Instagram) at /webhooks/{platform}, and a
generic HMAC-signed webhook at /webhooks/generic/{account} for forms and automation tools.

A bad signature is answered 401 and nothing is stored. A verified delivery is handed to
handlers.webhooks, which stores it raw and processes it in the background; events for
pages we do not watch are still answered 200, because Meta disables webhooks that fail.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from hallmonitor.edge import read_json
from handlers.webhooks import WebhookProcessor, WebhookRuntime

log = logging.getLogger(__name__)
META_PLATFORMS = ("facebook", "instagram")
UNVERIFIED = {"error": "bad signature"}  # one answer for an unknown account, an unset secret and a bad signature
_OPTIONAL_TEXT = ("id", "author", "url", "created_at")


def _signed(secret: str, body: bytes, header: str | None) -> bool:
    """HMAC-SHA256 check that compares bytes, so a header with non-ASCII characters is just wrong."""
    expected = b"sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    return bool(header) and hmac.compare_digest(expected, (header or "").encode("utf-8", "replace"))


def generic_body_problem(payload: Any) -> tuple[str, str] | None:
    """(field, sentence) for the first thing wrong with a generic webhook body, or None.

    The body is one submission or a list of them; each is an object with a non-empty string
    `text` and optional strings `id`, `author`, `url` and `created_at` (ISO 8601 with an offset)."""
    rows = payload if isinstance(payload, list) else [payload]
    if not rows:
        return "text", 'the list is empty; send at least one submission with a "text" field'
    for n, row in enumerate(rows):
        where = f"[{n}]." if isinstance(payload, list) else ""
        if not isinstance(row, dict):
            return where.rstrip(".") or "(body)", "each submission must be a JSON object"
        if "text" not in row:
            return f"{where}text", f'{where}text is missing: each submission needs a "text" field'
        if not isinstance(row["text"], str) or not row["text"].strip():
            return f"{where}text", f"{where}text must be a non-empty string"
        for key in _OPTIONAL_TEXT:
            if key in row and not isinstance(row[key], str | None):
                return f"{where}{key}", f"{where}{key} must be a string"
        if isinstance(row.get("created_at"), str) and not _iso_with_offset(row["created_at"]):
            return f"{where}created_at", f"{where}created_at must be ISO 8601 with an offset, like 2026-03-28T10:00Z"
    return None


def _iso_with_offset(value: str) -> bool:
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def webhook_router(service: WebhookRuntime, processor: WebhookProcessor | None = None) -> APIRouter:
    router = APIRouter()
    processor = processor or WebhookProcessor(service)
    router.processor = processor  # type: ignore[attr-defined]

    @router.get("/webhooks/{platform}")
    async def meta_handshake(platform: str, request: Request) -> Response:
        if platform not in META_PLATFORMS:
            return JSONResponse({"error": f"no webhook handshake for {platform}"}, status_code=404)
        expected = os.environ.get("META_VERIFY_TOKEN")
        if not expected:
            return JSONResponse({"error": "META_VERIFY_TOKEN is not set"}, status_code=503)
        query = request.query_params
        token = query.get("hub.verify_token") or ""
        if query.get("hub.mode") == "subscribe" and hmac.compare_digest(token.encode(), expected.encode()):
            return PlainTextResponse(query.get("hub.challenge") or "")
        return JSONResponse({"error": "verify token does not match"}, status_code=403)

    @router.post("/webhooks/generic/{account_id}")
    async def generic(account_id: str, request: Request) -> Response:
        """401 alike for an unknown account, one without a secret and a bad signature, so the
        answers never tell anyone which account ids exist; the log says which it was."""
        body = await request.body()
        secret = _generic_secret(account_id)
        if not _signed(secret or "unset", body, request.headers.get("X-Signature-256")) or not secret:
            log.warning("webhook_refused platform=webhook account=%s known_with_secret=%s", account_id, bool(secret))
            return JSONResponse(UNVERIFIED, status_code=401)
        try:
            payload = read_json(body)
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        problem = generic_body_problem(payload)
        if problem is not None:
            return JSONResponse({"error": problem[1], "field": problem[0]}, status_code=400)
        return await _accept(platform="webhook", body=body, account_id=account_id)

    def _generic_secret(account_id: str) -> str | None:
        account = next((a for a in service.config.accounts if a.id == account_id), None)
        if account is None or account.platform != "webhook":
            return None
        return os.environ.get(account.credentials.get("secret") or "") or None

    @router.post("/webhooks/{platform}")
    async def meta_event(platform: str, request: Request) -> Response:
        body = await request.body()
        if platform not in META_PLATFORMS:
            return JSONResponse({"error": f"no webhooks for {platform}"}, status_code=404)
        secret = os.environ.get("META_APP_SECRET")
        if not secret:
            return JSONResponse({"error": "META_APP_SECRET is not set"}, status_code=503)
        if not _signed(secret, body, request.headers.get("X-Hub-Signature-256")):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        return await _accept(platform=platform, body=body, account_id=None)

    async def _accept(*, platform: str, body: bytes, account_id: str | None) -> Response:
        try:
            read_json(body)
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        assert processor is not None
        event_id = await processor.store(platform=platform, body=body, account_id=account_id)
        if event_id is None:
            return JSONResponse({"ok": True, "duplicate": True})
        return JSONResponse({"ok": True, "queued": event_id})

    return router
