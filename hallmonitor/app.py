"""The ASGI app: /healthz, Slack events, Teams messages and platform webhooks, around one service."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from botbuilder.integration.aiohttp import CloudAdapter
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp

from bot.teams import HallMonitorTeamsBot, handle_request
from bot.web import web_router
from hallmonitor import __version__, teams_keys
from hallmonitor.edge import BodyLimit, read_json
from hallmonitor.service import Service
from hallmonitor.webhooks import webhook_router

log = logging.getLogger(__name__)
HEALTH_TOKEN = "HALLMONITOR_HEALTH_TOKEN"


def _bearer_ok(header: str | None) -> bool:
    """True when the request carries the health token from the environment (never when it is unset)."""
    expected = os.environ.get(HEALTH_TOKEN, "")
    given = (header or "").removeprefix("Bearer ").strip()
    return bool(expected) and hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def _slack_headers_ok(request: Request) -> bool:
    """Slack's signature headers in the shape Slack sends (digits; v0= and hex), checked before bolt
    so a malformed one is a 401, never a crash inside the verifier."""
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    hexdigits = set("0123456789abcdef")
    return (
        timestamp.isascii() and timestamp.isdigit() and signature.startswith("v0=") and set(signature[3:]) <= hexdigits
    )


def create_app(
    service: Service,
    *,
    start_scheduler: bool = True,
    slack: AsyncApp | None = None,
    teams: tuple[CloudAdapter, HallMonitorTeamsBot] | None = None,
) -> FastAPI:
    """Build the web app around a service; the scheduler runs inside its lifespan."""
    if teams is not None:
        teams_keys.install()  # Bot Framework signing keys fetched off the event loop, with a timeout

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.loop = asyncio.get_running_loop()  # platform actions run here, on the shared client
        if start_scheduler:
            service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="Hall Monitor",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.service = service
    app.add_middleware(
        BodyLimit,
        limit=service.config.service.max_request_bytes,
        read_timeout=service.config.service.request_read_timeout.total_seconds(),
    )

    @app.get("/healthz")
    def healthz(request: Request) -> dict[str, Any]:
        """Always 200 while the process lives. Anyone sees the status; the sources and their errors
        only with `Authorization: Bearer $HALLMONITOR_HEALTH_TOKEN`."""
        health = service.health()
        if _bearer_ok(request.headers.get("Authorization")):
            return {"version": __version__, **health}
        return {"status": health["status"]}

    webhooks = webhook_router(service)
    app.state.webhooks = webhooks.processor  # type: ignore[attr-defined]
    app.include_router(webhooks)

    app.include_router(web_router(service))  # read-only; identity from a signed link sent in chat

    if slack is not None:
        slack_handler = AsyncSlackRequestHandler(slack)

        @app.post("/slack/events")
        async def slack_events(request: Request) -> Any:
            """Events, interactivity and slash commands; bolt verifies the signature (401 if bad)."""
            if not _slack_headers_ok(request):
                return JSONResponse({"error": "invalid request signature"}, status_code=401)
            return await slack_handler.handle(request)
    else:

        @app.post("/slack/events")
        async def slack_not_configured() -> JSONResponse:
            return JSONResponse(
                {"error": "Slack is not configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET"}, status_code=503
            )

    @app.post("/api/messages")
    async def teams_messages(request: Request) -> Any:
        """Bot Framework activities from Teams (authenticated; invalid tokens get 401)."""
        if teams is None:
            return JSONResponse(
                {
                    "error": "Teams is not configured: set MICROSOFT_APP_ID and MICROSOFT_APP_PASSWORD "
                    '(or chat.surface = "teams")'
                },
                status_code=503,
            )
        try:
            body = read_json(await request.body())
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body is not a Bot Framework activity (a JSON object)"}, status_code=400)
        authorization = request.headers.get("Authorization", "")
        if not authorization.isascii():
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        adapter, bot = teams
        status, payload = await handle_request(adapter, bot, body, authorization)
        return Response(status_code=status) if payload is None else JSONResponse(payload, status_code=status)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled path=%s", request.url.path)
        return JSONResponse({"error": "Sorry, something went wrong; it has been logged."}, status_code=500)

    return app
