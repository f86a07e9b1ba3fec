"""The webhook HTTP edge: Meta (Facebook and Instagram) at /webhooks/{platform}, and a
generic HMAC-signed webhook at /webhooks/generic/{account} for forms and automation tools.

A bad signature is answered 401 and nothing is stored. A verified delivery is handed to
handlers.webhooks, which stores it raw and processes it in the background; events for
pages we do not watch are still answered 200, because Meta disables webhooks that fail.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from handlers.webhooks import WebhookProcessor, WebhookRuntime

META_PLATFORMS = ("facebook", "instagram")


def _signed(secret: str, body: bytes, header: str | None) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return bool(header) and hmac.compare_digest(expected, header or "")


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
        if query.get("hub.mode") == "subscribe" and hmac.compare_digest(token, expected):
            return PlainTextResponse(query.get("hub.challenge") or "")
        return JSONResponse({"error": "verify token does not match"}, status_code=403)

    @router.post("/webhooks/generic/{account_id}")
    async def generic(account_id: str, request: Request) -> Response:
        body = await request.body()
        try:
            account = service.config.account(account_id)
        except KeyError:
            return JSONResponse({"error": "unknown account"}, status_code=404)
        env = account.credentials.get("secret")
        secret = os.environ.get(env or "")
        if account.platform != "webhook" or not secret:
            return JSONResponse({"error": "this account takes no webhooks, or its secret is not set"}, status_code=503)
        if not _signed(secret, body, request.headers.get("X-Signature-256")):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        return await _accept(platform="webhook", body=body, account_id=account_id)

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
            json.loads(body)
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        assert processor is not None
        event_id = await processor.store(platform=platform, body=body, account_id=account_id)
        if event_id is None:
            return JSONResponse({"ok": True, "duplicate": True})
        return JSONResponse({"ok": True, "queued": event_id})

    return router
