"""The console chat surface: prints cards, reads simple commands.

For `make run` with no chat tokens, and for school IT to try the product. Commands go
through the same chat core as Slack and Teams. The console is a shared place (anyone at the
terminal reads it, and `as` switches person without a password), so it never shows a
safeguarding item's details, whoever the delivery is for.
"""

from __future__ import annotations

import shlex
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TextIO

from bot import chat
from core.chat import Card, Notification, Place, Posted
from handlers.actions import ActionRequest
from storage.types import utcnow

COMMANDS = {
    "ack": "acknowledge",
    "replied": "mark_replied",
    "close": "close",
    "escalate": "escalate",
    "recat": "recategorise",
    "notabuse": "not_abuse",
    "seen": "ack_escalation",
    "lift": "lift_protection",
}
HELP = """commands:
  queue                      open items, escalations first
  ack N | replied N | close N | escalate N [dsl|head] | recat N CATEGORY | notabuse N
  seen N                     acknowledge an escalation (SLT / head / DSL)
  as STAFF_ID                act as another staff member (console only)
  whoami | help"""


def render(card: Card, *, to: str) -> str:
    bar = "─" * 72
    lines = [bar, f"[{card.kind}] #{card.item_id if card.item_id is not None else '-'}  {card.headline}   → {to}"]
    if card.text:
        lines.append(f"  “{card.text[:500]}”")
    if card.notice:
        lines.append(f"  ({card.notice})")
    meta = " · ".join(x for x in (card.author and f"by {card.author}", card.platform, card.url or card.url_text) if x)
    if meta:
        lines.append(f"  {meta}")
    if card.category:
        lines.append(f"  {card.category.upper()}: {'; '.join(card.reasons) or 'no reason shown'}")
    if card.reply_by:
        lines.append(f"  Reply by {card.reply_by} ({card.countdown})")
    if card.status:
        lines.append(f"  status: {card.status}")
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

    async def deliver(self, note: Notification) -> Posted | None:
        """Print the card; a printed card cannot be updated, so no copy is remembered."""
        with self._lock:
            print(render(note.card, to=note.to), file=self.out, flush=True)
            for file in note.attachments:  # named, never printed
                print(
                    f"  attached: {file.filename} ({file.mime}, {len(file.content)} bytes)", file=self.out, flush=True
                )
        return None


class ConsoleCommands:
    """Reads commands line by line and acts as one staff member at a time."""

    def __init__(
        self, service: chat.ChatRuntime, *, out: TextIO | None = None, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.service, self.config, self.out, self.clock = service, service.config, out or sys.stdout, clock
        moderators = [s.id for s in self.config.staff if "moderator" in s.roles]
        self.actor = moderators[0] if moderators else (self.config.staff[0].id if self.config.staff else "console")

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
            staff = self.config.staff_by_id(self.actor)
            return chat.queue_text(self.service, staff, place=Place.CONSOLE, now=self.clock())
        if verb in COMMANDS:
            if not args or not args[0].isdigit():
                return f"say which item: `{verb} 12`"
            return self.act(COMMANDS[verb], int(args[0]), " ".join(args[1:]) or None)
        return f"unknown command {verb!r}; type help"

    def act(self, action: str, item_id: int, argument: str | None) -> str:
        request = ActionRequest(
            actor=self.actor,
            action=action,
            item_id=item_id,
            surface="console",
            category=argument if action == "recategorise" else None,
            target=argument if action == "escalate" else None,
        )
        outcome = chat.act(self.service, request, place=Place.CONSOLE, now=self.clock())
        return f"{outcome.result.outcome.value}: {outcome.message}"

    def loop(self, stream: TextIO | None = None) -> None:
        stream = stream or sys.stdin
        for line in stream:
            answer = self.handle(line.strip())
            if answer:
                print(answer, file=self.out, flush=True)
