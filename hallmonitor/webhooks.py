"""The webhook HTTP edge. Each platform with webhooks declares a `WebhookSpec` in its own module;
the routes here come from the registry, with no list of platform names:

- GET  /webhooks/<path>            the subscription handshake, where the platform has one (Meta)
- POST /webhooks/<path>            deliveries signed with an app-wide secret (Meta)
- POST /webhooks/<path>/<account>  deliveries signed with the account's own secret (generic)

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
from monitors.base import WebhookSpec
from monitors.registry import SOURCES


def _signed(secret: str, body: bytes, header: str | None) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return bool(header) and hmac.compare_digest(expected, header or "")


def _specs() -> dict[str, tuple[str, WebhookSpec]]:
    """/webhooks/<path> -> (platform, how its deliveries are verified)."""
    return {spec.path: (name, spec) for name, source in SOURCES.items() if (spec := source.webhook) is not None}


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def webhook_router(service: WebhookRuntime, processor: WebhookProcessor | None = None) -> APIRouter:
    router = APIRouter()
    processor = processor or WebhookProcessor(service)
    router.processor = processor  # type: ignore[attr-defined]
    specs = _specs()

    @router.get("/webhooks/{path}")
    async def handshake(path: str, request: Request) -> Response:
        _, spec = specs.get(path, ("", None))
        if spec is None or spec.verify_token_env is None:
            return _error(f"no webhook handshake for {path}", 404)
        expected = os.environ.get(spec.verify_token_env)
        if not expected:
            return _error(f"{spec.verify_token_env} is not set", 503)
        query = request.query_params
        token = query.get("hub.verify_token") or ""
        if query.get("hub.mode") == "subscribe" and hmac.compare_digest(token, expected):
            return PlainTextResponse(query.get("hub.challenge") or "")
        return _error("verify token does not match", 403)

    @router.post("/webhooks/{path}/{account_id}")
    async def per_account(path: str, account_id: str, request: Request) -> Response:
        body = await request.body()
        platform, spec = specs.get(path, ("", None))
        if spec is None or not spec.per_account:
            return _error(f"no webhooks at /webhooks/{path}/<account>", 404)
        try:
            account = service.config.account(account_id)
        except KeyError:
            return _error("unknown account", 404)
        secret = os.environ.get(account.credentials.get("secret") or "")
        if account.platform != platform or not secret:
            return _error("this account takes no webhooks, or its secret is not set", 503)
        if not _signed(secret, body, request.headers.get(spec.signature_header)):
            return _error("bad signature", 401)
        return await _accept(platform=platform, body=body, account_id=account_id)

    @router.post("/webhooks/{path}")
    async def app_wide(path: str, request: Request) -> Response:
        body = await request.body()
        platform, spec = specs.get(path, ("", None))
        if spec is None or spec.secret_env is None:
            return _error(f"no webhooks for {path}", 404)
        secret = os.environ.get(spec.secret_env)
        if not secret:
            return _error(f"{spec.secret_env} is not set", 503)
        if not _signed(secret, body, request.headers.get(spec.signature_header)):
            return _error("bad signature", 401)
        return await _accept(platform=platform, body=body, account_id=None)

    async def _accept(*, platform: str, body: bytes, account_id: str | None) -> Response:
        try:
            json.loads(body)
        except ValueError:
            return _error("body is not JSON", 400)
        assert processor is not None
        event_id = await processor.store(platform=platform, body=body, account_id=account_id)
        if event_id is None:
            return JSONResponse({"ok": True, "duplicate": True})
        return JSONResponse({"ok": True, "queued": event_id})

    return router
