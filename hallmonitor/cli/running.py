"""`hallmonitor run` (the web app, the workers and the chat surfaces) and `hallmonitor poll` (one
polling pass)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import threading
from typing import Any

import uvicorn
from sqlalchemy import Engine

from bot.console import ConsoleCommands
from core.config import Config
from hallmonitor.app import create_app
from hallmonitor.cli.common import config_of, open_db, with_config
from hallmonitor.service import Service
from hallmonitor.surfaces import Kit, Options, build_kits, wanted
from handlers.polling import PollSummary

log = logging.getLogger("hallmonitor")


def service_for(config: Config, engine: Engine, *, web: bool, options: Options) -> tuple[Service, list[Kit]]:
    """The service with every chat surface it runs (`hallmonitor.surfaces`). Teams needs the web
    app to receive installs, so a one-off command leaves its deliveries waiting for `run`."""
    names = wanted(config, web=web)
    kits = build_kits([n for n in names if web or n != "teams"], options)
    service = Service(config=config, engine=engine, surfaces={kit.name: kit.surface(engine) for kit in kits})
    return service, kits


def cmd_run(args: argparse.Namespace) -> int:
    config = config_of(args)
    options = Options(teams_without_auth=args.teams_local_testing_without_auth)
    host = args.host
    if options.teams_without_auth and "teams" in wanted(config, web=True) and not os.environ.get("MICROSOFT_APP_ID"):
        host = "127.0.0.1"  # the opt-in never reaches beyond this machine
        log.warning(
            "teams_authentication_off: Teams requests are NOT verified (--teams-local-testing-without-auth); "
            "listening on 127.0.0.1 only. Never use this in production."
        )
    engine = open_db(config)
    service, kits = service_for(config, engine, web=True, options=options)
    routers = [r for r in (kit.router(service) for kit in kits) if r is not None]
    app = create_app(service, routers=routers)
    if "console" in service.surfaces and config.chat.read_commands and not args.no_commands:
        commands = ConsoleCommands(service)
        threading.Thread(target=commands.loop, name="console-commands", daemon=True).start()
        print(
            f"Hall Monitor is watching {len(config.accounts)} account(s). Type `help` for commands; "
            f"health at http://{host}:{args.port}/healthz",
            flush=True,
        )
    # idle keep-alive connections are closed after 5 s; bodies have their own read timeout (hallmonitor.edge)
    uvicorn.run(app, host=host, port=args.port, log_level="warning", timeout_keep_alive=5)
    return 0


def cmd_poll(args: argparse.Namespace) -> int:
    config = config_of(args)
    service, _ = service_for(config, open_db(config), web=False, options=Options())

    async def once() -> PollSummary:
        try:
            return await service.tick(all_sources=True)
        finally:
            await service.stop()

    summary = asyncio.run(once())
    print(summary.line())
    for error in summary.errors:
        print(f"  failed: {error}")
    return 1 if summary.errors else 0


def add_commands(sub: Any) -> None:
    p = with_config(sub.add_parser("run", help="web app + scheduler"))
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")), help="port (default $PORT or 8000)")
    p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"), help="address (default $HOST or 127.0.0.1)")
    p.add_argument("--no-commands", action="store_true", help="do not read console commands from stdin")
    p.add_argument(
        "--teams-local-testing-without-auth",
        action="store_true",
        help="LOCAL TESTING ONLY: serve Teams without MICROSOFT_APP_ID (requests unverified); binds 127.0.0.1",
    )
    p.set_defaults(func=cmd_run, default_level="INFO")
    with_config(sub.add_parser("poll", help="one polling pass, then print a summary")).set_defaults(func=cmd_poll)
