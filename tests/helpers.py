"""Small helpers for tests: a recording chat surface, polling, webhook and acting shortcuts, and `hm()`,
the one way tests run the `hallmonitor` command (in-process unless a real process is asked for)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select
from sqlmodel import SQLModel

from bot.outbox import deliver_pending
from core.chat import Notification, Posted
from core.config import Config
from hallmonitor.app import create_app
from hallmonitor.cli import main
from hallmonitor.service import Service
from handlers.actions import ActionRequest, ActionResult, perform, run_act
from handlers.polling import PollSummary, poll_once
from storage.db import session_scope
from storage.queries import sync_config


class RecordingSurface:
    """A ChatSurface that keeps what it was given (or fails on demand, for everyone or for
    named staff ids), and says where each message went so copies can be updated. It stands
    for a private chat surface ("slack") unless named "console" (a shared place)."""

    def __init__(self, name: str = "slack") -> None:
        self.name = name
        self.notes: list[Notification] = []
        self.fail = False
        self.fail_for: set[str] = set()

    async def deliver(self, note: Notification) -> Posted | None:
        if self.fail or (note.recipient is not None and note.recipient.id in self.fail_for):
            raise ConnectionError("chat service down")
        self.notes.append(note)
        if note.copy is not None:
            return None
        where = note.channel or f"D-{note.recipient.id if note.recipient else '?'}"
        return Posted(where, f"m{len(self.notes)}")


@dataclass
class LocalRuntime:
    """The `Runtime` a chat core needs, without the scheduler (console tests)."""

    config: Config
    engine: Engine
    surfaces: dict[str, Any] = field(default_factory=dict)

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "sources": [], "failing": 0, "outbox_pending": 0}

    async def deliver_updates(self, item_id: int | None) -> None:
        return None

    def platform_call(self, connector: Any, request: Any) -> str:
        return run_act(connector, request)


def post_and_drain(config: Config, engine: Engine, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST one webhook body to the real app (in-process over ASGI, no scheduler) and wait until the
    processing it queued is done; the app's answer."""
    app = create_app(Service(config=config, engine=engine, surface=RecordingSurface()), start_scheduler=False)

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hm.test") as c:
            response = await c.post(path, content=body, headers=headers)
            await app.state.webhooks.drain()
            return response

    return asyncio.run(go())


def poll(engine: Engine, config: Config, now: datetime | None = None, **kw: Any) -> PollSummary:
    with session_scope(engine) as session:
        sync_config(session, config=config)

    async def go() -> PollSummary:
        async with httpx.AsyncClient() as client:
            return await poll_once(engine, config=config, client=client, now=now, **kw)

    return asyncio.run(go())


def deliver(engine: Engine, config: Config, surface: Any, now: datetime) -> Any:
    async def go() -> Any:
        return await deliver_pending(engine, config=config, surfaces=surface, now=now)

    return asyncio.run(go())


def count(engine: Engine, model: type[SQLModel], *where: Any) -> int:
    with session_scope(engine) as session:
        stmt = select(func.count()).select_from(model)
        for clause in where:
            stmt = stmt.where(clause)
        return int(session.scalar(stmt) or 0)


def request(action: str, item_id: int | None, argument: str | None = None, *, actor: str = "amira") -> ActionRequest:
    """A typed request from the old one-string argument: the reply text, the delete reason (or
    the delete modal's JSON), the category, or the escalation target."""
    base = ActionRequest(actor=actor, action=action, item_id=item_id, surface="test")
    if action == "delete":
        try:
            details = json.loads(argument or "")
            return ActionRequest(
                actor, action, item_id, "test", reason=details.get("reason"), tell_audience=details.get("tell_audience")
            )
        except (ValueError, AttributeError):
            return ActionRequest(actor, action, item_id, "test", reason=argument)
    if action in ("recategorise", "not_abuse"):
        return ActionRequest(actor, action, item_id, "test", category=argument)
    if action == "escalate":
        return ActionRequest(actor, action, item_id, "test", target=argument)
    return ActionRequest(actor, action, item_id, "test", text=argument) if argument is not None else base


def act(
    engine: Engine,
    config: Config,
    action: str,
    item_id: int,
    argument: str | None = None,
    *,
    actor: str = "amira",
    now: datetime | None = None,
) -> ActionResult:
    """Run one action through the shared action function, as a moderator by default."""
    with session_scope(engine) as session:
        return perform(
            session,
            config=config,
            request=request(action, item_id, argument, actor=actor),
            now=now or datetime(2026, 11, 21, 10, 0, tzinfo=UTC),
        )


def hm(
    *args: str, stdin: str | None = None, cwd: Path | None = None, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run `hallmonitor ARGS`. In-process by default (a new process per call re-imports everything and
    re-encodes the training set); `process=True` for the one real-process smoke test per command."""
    if process:
        return subprocess.run(
            [sys.executable, "-m", "hallmonitor.cli", *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=120,
        )
    out, err = io.StringIO(), io.StringIO()
    saved_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin or "")
    try:
        with contextlib.chdir(cwd or os.getcwd()), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        sys.stdin = saved_stdin
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
