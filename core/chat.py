"""What the chat core hands a surface: platform-neutral cards and deliveries, and the
interface every surface (console, Slack, Teams) implements. Renderers draw these; they
never decide what a card contains."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from core.config import StaffConfig


@dataclass(frozen=True, slots=True)
class Button:
    action: str
    label: str
    danger: bool = False


@dataclass(slots=True)
class Card:
    item_id: int | None
    kind: str
    headline: str
    text: str | None = None
    author: str | None = None
    platform: str | None = None
    account: str | None = None
    url: str | None = None
    category: str | None = None
    reasons: list[str] = field(default_factory=list)
    reply_by: str | None = None  # school-local, for people
    countdown: str | None = None
    status: str | None = None
    buttons: list[Button] = field(default_factory=list)
    media_urls: list[str] = field(default_factory=list)  # always empty for safeguarding items


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
    audience: str  # moderators / slt / dsl / leaders
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
