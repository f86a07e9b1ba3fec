"""The chat-surface interface: console now, Slack and Teams in their own modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bot.cards import Card
from hallmonitor.config import StaffConfig


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a notification (a digest chart, an exported record)."""

    filename: str
    content: bytes
    mime: str = "image/png"
    title: str | None = None


@dataclass(slots=True)
class Notification:
    """One delivery: a card for an audience, resolved to people and a channel."""

    outbox_id: int
    kind: str  # card / escalation / reminder / late / health
    audience: str  # moderators / slt / dsl
    school_id: str
    card: Card
    recipients: list[StaffConfig] = field(default_factory=list)
    channel: str | None = None  # the account's moderators' channel on this surface
    direct_only: bool = False  # never post to a shared channel (safeguarding)
    attachments: list[Attachment] = field(default_factory=list)


class ChatSurface(Protocol):
    """Somewhere cards go and commands come from.

    `deliver` raises on failure; the outbox keeps the notification and retries,
    so a surface never has to remember anything itself.
    """

    name: str

    async def deliver(self, note: Notification) -> None: ...
