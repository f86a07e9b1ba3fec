"""The ASGI app: /healthz, Slack events, Teams messages and platform webhooks, around one service."""

from __future__ import annotations

import asyncio
import logging
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
from hallmonitor import __version__
from hallmonitor.service import Service
from hallmonitor.webhooks import webhook_router

log = logging.getLogger(__name__)


def create_app(
    service: Service,
    *,
    start_scheduler: bool = True,
    slack: AsyncApp | None = None,
    teams: tuple[CloudAdapter, HallMonitorTeamsBot] | None = None,
) -> FastAPI:
    """Build the web app around a service; the scheduler runs inside its lifespan."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.loop = asyncio.get_running_loop()  # platform actions run here, on the shared client
        if start_scheduler:
            service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="Hall Monitor", version=__version__, lifespan=lifespan)
    app.state.service = service

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Always 200 while the process lives; the body says what is failing."""
        return {"version": __version__, **service.health()}

    webhooks = webhook_router(service, service.webhooks)
    app.state.webhooks = webhooks.processor  # type: ignore[attr-defined]
    app.include_router(webhooks)

    app.include_router(web_router(service))  # read-only; identity from a signed link sent in chat

    if slack is not None:
        slack_handler = AsyncSlackRequestHandler(slack)

        @app.post("/slack/events")
        async def slack_events(request: Request) -> Any:
            """Events, interactivity and slash commands; bolt verifies the signature (401 if bad)."""
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
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        adapter, bot = teams
        status, payload = await handle_request(adapter, bot, body, request.headers.get("Authorization", ""))
        return Response(status_code=status) if payload is None else JSONResponse(payload, status_code=status)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled path=%s", request.url.path)
        return JSONResponse({"error": "Sorry, something went wrong; it has been logged."}, status_code=500)

    return app
