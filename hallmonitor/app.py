"""The ASGI app: /healthz, Slack events, Teams messages and platform webhooks, around one service."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from bot.web import web_router
from hallmonitor import __version__
from hallmonitor.edge import BodyLimit
from hallmonitor.service import Service
from hallmonitor.webhooks import webhook_router

log = logging.getLogger(__name__)
HEALTH_TOKEN = "HALLMONITOR_HEALTH_TOKEN"


def _bearer_ok(header: str | None) -> bool:
    """True when the request carries the health token from the environment (never when it is unset)."""
    expected = os.environ.get(HEALTH_TOKEN, "")
    given = (header or "").removeprefix("Bearer ").strip()
    return bool(expected) and hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


NOT_CONFIGURED = {
    "/slack/events": "Slack is not configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET",
    "/api/messages": 'Teams is not configured: set MICROSOFT_APP_ID and MICROSOFT_APP_PASSWORD (or surface = "teams")',
}


def _not_configured(sentence: str) -> Callable[[], Awaitable[JSONResponse]]:
    async def answer() -> JSONResponse:
        return JSONResponse({"error": sentence}, status_code=503)

    return answer


def create_app(service: Service, *, start_scheduler: bool = True, routers: Sequence[APIRouter] = ()) -> FastAPI:
    """Build the web app around a service and the routes of its chat surfaces
    (`hallmonitor.surfaces`); the scheduler runs inside its lifespan."""

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

    webhooks = webhook_router(service, service.webhooks)
    app.state.webhooks = webhooks.processor  # type: ignore[attr-defined]
    app.include_router(webhooks)

    app.include_router(web_router(service))  # read-only; identity from a signed link sent in chat

    for router in routers:
        app.include_router(router)
    served = {getattr(route, "path", None) for route in app.routes}
    for path, sentence in NOT_CONFIGURED.items():
        if path not in served:
            app.add_api_route(path, _not_configured(sentence), methods=["POST"])

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled path=%s", request.url.path)
        return JSONResponse({"error": "Sorry, something went wrong; it has been logged."}, status_code=500)

    return app
