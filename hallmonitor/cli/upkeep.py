"""`hallmonitor check-config | doctor | backup | restore`: is the setup right, can everything be
reached, and the SQLite database copied and put back."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from bot.console import ConsoleSurface
from bot.slack import SlackSurface, slack_settings, web_client
from bot.teams import TeamsSurface, make_adapter
from core.chat import ChatSurface
from core.config import Config
from core.errors import ConfigError, HallMonitorError
from hallmonitor.checks import readiness_problems
from hallmonitor.cli.common import config_of, open_db, with_config
from hallmonitor.doctor import Finding, config_findings, reach_accounts, send_tests, summary, token_expiry
from monitors.http import USER_AGENT
from storage import backup
from storage.db import database_url
from storage.types import utcnow


def cmd_check_config(args: argparse.Namespace) -> int:
    """The file's own rules and each platform's watch schema (as at start-up), plus each account's
    credentials against its platform's schema; unset environment variables are only noted."""
    config = config_of(args)
    problems = readiness_problems(config)
    if problems:
        raise ConfigError(problems)
    print(
        f"{config.path}: OK: {len(config.schools)} school(s), {len(config.accounts)} account(s), "
        f"{len(config.staff)} staff"
    )
    return 0


async def _doctor_surface(config: Config, engine: Engine) -> tuple[ChatSurface | None, list[Finding]]:
    """The surface the service would deliver with, and what its service says about our token."""
    surface = config.chat.surface
    if surface == "console":
        return ConsoleSurface(), [Finding("ok", "chat", "console: cards are printed by `hallmonitor run`")]
    if surface == "teams":
        try:
            adapter, settings = make_adapter()
        except ConfigError as exc:  # outbound test messages only: say so, and still send them to the connector
            adapter, settings = make_adapter(allow_unauthenticated=True)
            return TeamsSurface(engine, adapter, settings.APP_ID), [Finding("warn", "chat teams", exc.problems[0])]
        return TeamsSurface(engine, adapter, settings.APP_ID), []
    try:
        token, _, api_url = slack_settings()
    except ConfigError as exc:
        return None, [Finding("fail", "chat slack", exc.problems[0])]
    client = web_client(token, api_url)
    try:
        me = await client.auth_test()
    except Exception as exc:  # slack_sdk raises its own errors for a bad token or no network
        return None, [Finding("fail", "chat slack", f"auth.test failed: {exc}")]
    who = f"connected as {me.get('user')} in team {me.get('team_id')}"
    return SlackSurface(client), [Finding("ok", "chat slack", who)]


def cmd_doctor(args: argparse.Namespace) -> int:
    config = config_of(args)
    engine = open_db(config)

    async def go() -> list[Finding]:
        findings = config_findings(config)
        async with httpx.AsyncClient(
            timeout=config.service.http_timeout.total_seconds(), headers={"User-Agent": USER_AGENT}
        ) as client:
            findings += await reach_accounts(config, client)
            findings += await token_expiry(config, client, now=utcnow())
        surface, seen = await _doctor_surface(config, engine)
        findings += seen
        if args.send_test and surface is not None:
            findings += await send_tests(config, surface)
        return findings

    findings = asyncio.run(go())
    for finding in findings:
        print(finding.line())
    line, code = summary(findings)
    print(line)
    return code


def cmd_backup(args: argparse.Namespace) -> int:
    config = config_of(args)
    made = backup.backup(backup.sqlite_file(database_url(config.database())), to=Path(args.to) if args.to else None)
    print(f"backup written and checked: {made}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    config = config_of(args)
    database = backup.sqlite_file(database_url(config.database()))
    if not args.yes:
        raise HallMonitorError(
            f"this replaces the database at {database} with {args.backup}; stop the service first, then add --yes"
        )
    kept = backup.restore(Path(args.backup), database)
    open_db(config).dispose()  # brings a backup from an older version up to this version's schema
    print(f"restored {args.backup} into {database}" + (f"; the database it replaced is kept at {kept}" if kept else ""))
    return 0


def add_commands(sub: Any) -> None:
    with_config(
        sub.add_parser("check-config", help="validate the config file against what would break at run time")
    ).set_defaults(func=cmd_check_config)
    p = with_config(sub.add_parser("doctor", help="reach each platform and chat surface live (read-only)"))
    p.add_argument(
        "--send-test",
        action="store_true",
        help="also send a test card to each moderators' channel and a test DM to each DSL",
    )
    p.set_defaults(func=cmd_doctor)
    p = with_config(sub.add_parser("backup", help="a consistent copy of the SQLite database, safe while running"))
    p.add_argument("--to", help="a file or folder for the copy (default: backups/ beside the database)")
    p.set_defaults(func=cmd_backup)
    p = with_config(sub.add_parser("restore", help="replace the SQLite database with a backup (service stopped)"))
    p.add_argument("backup", help="the backup file to restore")
    p.add_argument("--yes", action="store_true", help="confirm: the current database is kept beside it, then replaced")
    p.set_defaults(func=cmd_restore)
