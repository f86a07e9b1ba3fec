"""The chat surfaces a service can run, by name (a registry, never an if-chain).

Each kit builds its delivery surface and, for Slack and Teams, the route that receives
clicks, commands and messages. Several run in one service at once: one school on Slack,
another on Teams, or both for one school (`schools[].surface`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from sqlalchemy import Engine

from bot.chat import ChatRuntime
from bot.console import ConsoleSurface
from bot.slack import SlackSurface, slack_settings, web_client
from bot.slack_app import build_slack_app
from bot.teams import HallMonitorTeamsBot, TeamsSurface, handle_request, make_adapter
from core.chat import ChatSurface
from core.config import Config
from hallmonitor import teams_keys
from hallmonitor.edge import read_json, slack_headers_ok

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Options:
    teams_without_auth: bool = False  # the documented local-testing opt-in (binds 127.0.0.1 only)


class Kit(Protocol):
    name: str

    def surface(self, engine: Engine) -> ChatSurface: ...

    def router(self, service: ChatRuntime) -> APIRouter | None: ...


class ConsoleKit:
    name = "console"

    def __init__(self, options: Options) -> None:
        self.options = options

    def surface(self, engine: Engine) -> ChatSurface:
        return ConsoleSurface()

    def router(self, service: ChatRuntime) -> APIRouter | None:
        return None


class SlackKit:
    name = "slack"

    def __init__(self, options: Options) -> None:
        self.token, self.secret, api_url = slack_settings()
        self.client = web_client(self.token, api_url)

    def surface(self, engine: Engine) -> ChatSurface:
        return SlackSurface(self.client)

    def router(self, service: ChatRuntime) -> APIRouter:
        handler = AsyncSlackRequestHandler(
            build_slack_app(service, token=self.token, signing_secret=self.secret, client=self.client)
        )
        router = APIRouter()

        @router.post("/slack/events")
        async def slack_events(request: Request) -> Any:
            """Events, interactivity and slash commands; bolt verifies the signature (401 if bad)."""
            if not slack_headers_ok(request):
                return JSONResponse({"error": "invalid request signature"}, status_code=401)
            return await handler.handle(request)

        return router


class TeamsKit:
    name = "teams"

    def __init__(self, options: Options) -> None:
        self.adapter, self.settings = make_adapter(allow_unauthenticated=options.teams_without_auth)

    def surface(self, engine: Engine) -> ChatSurface:
        return TeamsSurface(engine, self.adapter, self.settings.APP_ID)

    def router(self, service: ChatRuntime) -> APIRouter:
        bot = HallMonitorTeamsBot(service)
        teams_keys.install()  # Bot Framework signing keys fetched off the event loop, with a timeout
        router = APIRouter()

        @router.post("/api/messages")
        async def teams_messages(request: Request) -> Any:
            """Bot Framework activities from Teams (authenticated; invalid tokens get 401)."""
            try:
                body = read_json(await request.body())
            except ValueError:
                return JSONResponse({"error": "body is not JSON"}, status_code=400)
            if not isinstance(body, dict):
                return JSONResponse({"error": "body is not a Bot Framework activity (a JSON object)"}, status_code=400)
            authorization = request.headers.get("Authorization", "")
            if not authorization.isascii():
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            status, payload = await handle_request(self.adapter, bot, body, authorization)
            return Response(status_code=status) if payload is None else JSONResponse(payload, status_code=status)

        return router


KITS: dict[str, Callable[[Options], Kit]] = {"console": ConsoleKit, "slack": SlackKit, "teams": TeamsKit}
# Served for answers and actions even when no school's cards go there, if their secrets are set.
BY_ENVIRONMENT = {"slack": "SLACK_SIGNING_SECRET", "teams": "MICROSOFT_APP_ID"}


def wanted(config: Config, *, web: bool) -> list[str]:
    """The surfaces this process runs: every school's, plus (for the web app) any whose secrets are set."""
    names = list(config.surfaces_in_use())
    if web:
        names += [name for name, env in BY_ENVIRONMENT.items() if os.environ.get(env) and name not in names]
    return names


def build_kits(names: list[str], options: Options) -> list[Kit]:
    return [KITS[name](options) for name in names]
