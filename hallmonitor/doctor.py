"""`hallmonitor doctor`: prove the wiring live before a school goes live.

Beyond check-config it reaches each platform with the configured tokens (read-only: one
fetch of each watch target, nothing stored), reads Facebook and Instagram token expiry from
Graph's `debug_token` (a warning 14 days ahead), asks the chat surface who it is, and with
`--send-test` sends a test card to each account's moderators' channel and a test direct
message to each DSL, through the same surface the service uses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx

from core.chat import Card, ChatSurface, Notification, Place
from core.config import AccountConfig, Config, Role
from core.errors import PlatformError
from hallmonitor.checks import readiness_problems, surfaces_of
from monitors.base import SourceState
from monitors.fetch import fetch_one
from monitors.graph import classify_graph, graph_url
from monitors.http import call
from monitors.registry import SOURCES

EXPIRY_WARNING = timedelta(days=14)
GRAPH_PLATFORMS = ("facebook", "instagram")
TOKEN_KEYS = ("page_token", "access_token")


@dataclass(frozen=True, slots=True)
class Finding:
    level: Literal["ok", "warn", "fail"]
    where: str
    message: str

    def line(self) -> str:
        return f"{self.level.upper():<4} {self.where}: {self.message}"


async def reach_accounts(config: Config, client: httpx.AsyncClient) -> list[Finding]:
    """One read-only fetch of every watch target; the polling state is a throwaway."""
    found: list[Finding] = []
    base_dir = str(config.path.parent) if config.path else None
    for account in config.accounts:
        if not SOURCES[account.platform].polls:
            found.append(Finding("ok", f"accounts {account.id}", "receives webhooks; nothing to reach"))
            continue
        for watch in account.watch:
            where = f"accounts {account.id} {watch.label or watch.url}"
            result = await fetch_one(client, account=account, watch=watch, state=SourceState(), base_dir=base_dir)
            if isinstance(result, PlatformError):
                found.append(Finding("fail", where, f"{result} ({result.kind.value})"))
            else:
                found.append(Finding("ok", where, f"reached; {len(result.items)} item(s) readable"))
    return found


async def token_expiry(
    config: Config, client: httpx.AsyncClient, *, now: datetime, env: dict[str, str] | None = None
) -> list[Finding]:
    """Graph `debug_token` for each Facebook/Instagram token: invalid is a failure, expiry within
    14 days a warning, a date further off or `expires_at = 0` (never) fine."""
    environ = dict(os.environ) if env is None else env
    found: list[Finding] = []
    for account in (a for a in config.accounts if a.platform in GRAPH_PLATFORMS):
        key = next((k for k in TOKEN_KEYS if k in account.credentials), None)
        token = environ.get(account.credentials.get(key or "", ""), "")
        if not token:
            continue  # check-config already says the variable is unset
        where = f"accounts {account.id} credentials.{key}"
        try:
            answer = await call(
                client,
                "GET",
                f"{graph_url()}/debug_token",
                what=f"{account.platform} debug_token",
                params={"input_token": token, "access_token": token},
                classify=classify_graph,
            )
            data = answer.json_object().get("data") or {}
        except PlatformError as exc:
            found.append(Finding("fail", where, f"could not check the token: {exc}"))
            continue
        found.append(_expiry_finding(where, data, now))
    return found


def _expiry_finding(where: str, data: dict[str, object], now: datetime) -> Finding:
    if not data.get("is_valid", False):
        return Finding("fail", where, "the token is not valid (expired or revoked); make a new one and set it")
    expires = data.get("expires_at")
    if not isinstance(expires, int) or expires == 0:
        return Finding("ok", where, "valid; does not expire")
    when = datetime.fromtimestamp(expires, UTC)
    days = (when - now).days
    if when - now <= EXPIRY_WARNING:
        return Finding("warn", where, f"expires {when:%Y-%m-%d} (in {max(days, 0)} day(s)); renew it before then")
    return Finding("ok", where, f"valid until {when:%Y-%m-%d}")


def test_notes(config: Config, surface: str) -> list[tuple[str, Notification]]:
    """A test card for each account's moderators' channel and a test DM for each DSL on `surface`."""
    notes: list[tuple[str, Notification]] = []
    for account in config.accounts:
        if surface not in surfaces_of(config, config.school_of(account)):
            continue
        channel = account.channel.get(surface) if surface != "console" else "console"
        notes.append((f"accounts {account.id} channel", _note(config, account, channel)))
    for school in config.schools:
        if surface not in surfaces_of(config, school):
            continue
        for dsl in config.staff_with_role(school.id, Role.DSL):
            card = Card(
                item_id=None,
                kind="test",
                headline=f"Hall Monitor test message for {dsl.name} (DSL, {school.name})",
                text="Safeguarding alerts will reach you here, and only here. Nothing to do.",
            )
            note = Notification(0, "test", "dsl", school.id, card, Place.DIRECT, recipient=dsl)
            notes.append((f"staff {dsl.id} (DSL)", note))
    return notes


def _note(config: Config, account: AccountConfig, channel: str | None) -> Notification:
    card = Card(
        item_id=None,
        kind="test",
        headline=f"Hall Monitor test card for {account.name or account.id}",
        text="If you can read this, cards for this account reach its moderators here. Nothing to do.",
        account=account.name or account.id,
        platform=account.platform,
    )
    school = config.school_of(account)
    return Notification(0, "test", "moderators", school.id, card, Place.CHANNEL, channel=channel)


async def send_tests(config: Config, surface: ChatSurface) -> list[Finding]:
    found = []
    for where, note in test_notes(config, surface.name):
        if note.audience == "moderators" and not note.channel:
            found.append(Finding("fail", where, f"no {surface.name} channel configured; nothing sent"))
            continue
        try:
            await surface.deliver(note)
        except Exception as exc:  # every surface failure is a finding, never a traceback
            found.append(Finding("fail", where, f"test not delivered: {exc}"))
        else:
            found.append(Finding("ok", where, f"test sent by {surface.name}"))
    return found


def config_findings(config: Config) -> list[Finding]:
    problems = readiness_problems(config)
    return [Finding("fail", "config", p) for p in problems] or [Finding("ok", "config", "check-config: nothing to fix")]


def summary(findings: list[Finding]) -> tuple[str, int]:
    """The closing line and the exit code: 1 when anything failed (warnings alone pass)."""
    fails = sum(f.level == "fail" for f in findings)
    warns = sum(f.level == "warn" for f in findings)
    return f"doctor: {len(findings)} check(s), {fails} failed, {warns} warning(s)", (1 if fails else 0)
