"""Small helpers for tests: a recording chat surface, polling and acting shortcuts, and `hm()`,
the one way tests run the `hallmonitor` command (in-process unless a real process is asked for)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select
from sqlmodel import SQLModel

from bot.notify import deliver_pending
from core.chat import Notification
from core.config import Config
from hallmonitor.cli import main
from handlers.poller import poll_once
from handlers.polling import PollSummary
from storage.db import session_scope
from storage.queries import sync_config


class RecordingSurface:
    """A ChatSurface that keeps what it was given (or fails on demand)."""

    name = "console"

    def __init__(self) -> None:
        self.notes: list[Notification] = []
        self.fail = False

    async def deliver(self, note: Notification) -> None:
        if self.fail:
            raise ConnectionError("chat service down")
        self.notes.append(note)


def poll(engine: Engine, config: Config, now: datetime | None = None, **kw: Any) -> PollSummary:
    with session_scope(engine) as session:
        sync_config(session, config=config)

    async def go() -> PollSummary:
        async with httpx.AsyncClient() as client:
            return await poll_once(engine, config=config, client=client, now=now, **kw)

    return asyncio.run(go())


def deliver(engine: Engine, config: Config, surface: RecordingSurface, now: datetime) -> Any:
    async def go() -> Any:
        return await deliver_pending(engine, config=config, surface=surface, now=now)

    return asyncio.run(go())


def count(engine: Engine, model: type[SQLModel], *where: Any) -> int:
    with session_scope(engine) as session:
        stmt = select(func.count()).select_from(model)
        for clause in where:
            stmt = stmt.where(clause)
        return int(session.scalar(stmt) or 0)


def act(
    engine: Engine,
    config: Config,
    action: str,
    item_id: int,
    argument: str | None = None,
    *,
    actor: str = "amira",
    now: datetime | None = None,
) -> Any:
    """Run one action through the shared action function, as a moderator by default."""
    from handlers.actions import perform

    with session_scope(engine) as session:
        return perform(
            session,
            config=config,
            actor=actor,
            action=action,
            item_id=item_id,
            surface="test",
            now=now or datetime(2026, 11, 21, 10, 0, tzinfo=UTC),
            argument=argument,
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
