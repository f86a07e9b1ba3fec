"""The console chat surface: prints cards, reads simple commands.

For `make run` with no chat tokens, and for school IT to try the product.
Commands go through the same shared action function as Slack and Teams.
"""

from __future__ import annotations

import shlex
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TextIO

from sqlalchemy import Engine

from bot.cards import queue_line
from core.chat import Card, Notification
from core.config import Config
from handlers.actions import PlatformCall, perform
from storage.db import session_scope
from storage.queries import open_items
from storage.types import utcnow

COMMANDS = {
    "ack": "acknowledge",
    "replied": "mark_replied",
    "close": "close",
    "escalate": "escalate",
    "recat": "recategorise",
    "notabuse": "not_abuse",
    "seen": "ack_escalation",
}
HELP = """commands:
  queue                      open items, soonest reply-by first
  ack N | replied N | close N | escalate N [dsl] | recat N CATEGORY | notabuse N
  seen N                     acknowledge an escalation (SLT / DSL)
  as STAFF_ID                act as another staff member (console only)
  whoami | help"""


def render(card: Card, *, to: str) -> str:
    bar = "─" * 72
    lines = [bar, f"[{card.kind}] #{card.item_id if card.item_id is not None else '-'}  {card.headline}   → {to}"]
    if card.text and card.item_id is None:  # a digest, a link: the whole message
        lines += [f"  {line}" for line in card.text.splitlines()]
    elif card.text:
        lines.append(f"  “{card.text[:500]}”")
    meta = " · ".join(x for x in (card.author and f"by {card.author}", card.platform, card.url) if x)
    if meta:
        lines.append(f"  {meta}")
    if card.category:
        lines.append(f"  {card.category.upper()}: {'; '.join(card.reasons) or 'no reason given'}")
    if card.reply_by:
        lines.append(f"  Reply by {card.reply_by} ({card.countdown})")
    if card.media_urls:
        lines.append(f"  media: {len(card.media_urls)} link(s)")
    if card.buttons and card.item_id is not None:
        lines.append("  actions: " + " | ".join(b.action for b in card.buttons))
    return "\n".join(lines)


class ConsoleSurface:
    name = "console"

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self._lock = threading.Lock()

    async def deliver(self, note: Notification) -> None:
        names = ", ".join(p.name for p in note.recipients) or "nobody configured"
        where = (
            f"DM to {names}"
            if note.direct_only or (note.channel is None and note.audience != "moderators")
            else (f"{note.channel or '#moderators'} ({names})")
        )
        with self._lock:
            print(render(note.card, to=where), file=self.out, flush=True)
            for file in note.attachments:
                print(
                    f"  attached: {file.filename} ({file.mime}, {len(file.content)} bytes)", file=self.out, flush=True
                )


class ConsoleCommands:
    """Reads commands line by line and acts as one staff member at a time."""

    def __init__(
        self,
        *,
        engine: Engine,
        config: Config,
        out: TextIO | None = None,
        clock: Callable[[], datetime] = utcnow,
        platform: PlatformCall | None = None,
    ) -> None:
        self.engine, self.config, self.out, self.clock = engine, config, out or sys.stdout, clock
        self.platform = platform
        moderators = [s.id for s in config.staff if "moderator" in s.roles]
        self.actor = moderators[0] if moderators else (config.staff[0].id if config.staff else "console")

    def handle(self, line: str) -> str:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            return f"could not read that: {exc}"
        if not words:
            return ""
        verb, args = words[0].lower(), words[1:]
        if verb in ("help", "?"):
            return HELP
        if verb == "whoami":
            return f"acting as {self.actor}"
        if verb == "as":
            if not args or self.config.staff_by_id(args[0]) is None:
                return "say which staff id, e.g. `as dana` (see [[staff]] in the config)"
            self.actor = args[0]
            return f"acting as {self.actor}"
        if verb == "queue":
            return self.queue()
        if verb in COMMANDS:
            if not args or not args[0].isdigit():
                return f"say which item: `{verb} 12`"
            with session_scope(self.engine) as session:
                result = perform(
                    session,
                    config=self.config,
                    actor=self.actor,
                    action=COMMANDS[verb],
                    item_id=int(args[0]),
                    surface="console",
                    now=self.clock(),
                    argument=" ".join(args[1:]) or None,
                    platform=self.platform,
                )
            return ("ok: " if result.ok else "refused: ") + result.message
        return f"unknown command {verb!r}; type help"

    def queue(self) -> str:
        now = self.clock()
        with session_scope(self.engine) as session:
            rows = [queue_line(i, now) for i in open_items(session)]
        return "\n".join(rows) if rows else "nothing open"

    def loop(self, stream: TextIO | None = None) -> None:
        stream = stream or sys.stdin
        for line in stream:
            answer = self.handle(line.strip())
            if answer:
                print(answer, file=self.out, flush=True)
