"""What the chat core hands a surface: platform-neutral views and deliveries, and the
interface every surface (console, Slack, Teams) implements. `bot.chat.view` decides what a
card contains for who is looking and where; renderers draw only that."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from core.config import StaffConfig


class Place(StrEnum):
    """Where a view is drawn. Only DIRECT (a person's own chat with the bot, a Teams refresh
    there, their ephemeral queue and App Home) is private to the viewer; a channel and the
    console (a terminal anyone can stand at, where `as` switches person) are shared."""

    CHANNEL = "channel"
    DIRECT = "direct"
    QUEUE = "queue"
    HOME = "home"
    CONSOLE = "console"


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
    url: str | None = None  # a safe http(s) link (bot.safe.safe_url), else None
    url_text: str | None = None  # a link that is not safe to render as one: shown as plain text only
    category: str | None = None
    reasons: list[str] = field(default_factory=list)
    reply_by: str | None = None  # school-local, for people
    countdown: str | None = None
    status: str | None = None
    buttons: list[Button] = field(default_factory=list)
    media_urls: list[str] = field(default_factory=list)  # always empty for safeguarding items
    notice: str | None = None  # what is withheld and why, said to the viewer
    done: str | None = None  # the outcome of the action just taken, shown once


@dataclass(frozen=True, slots=True)
class CopyRef:
    """A posted card: Slack channel + ts, or Teams conversation + activity id."""

    copy_id: int
    conversation: str
    message_id: str


@dataclass(frozen=True, slots=True)
class Posted:
    """Where a surface put a new message, so it can be updated later."""

    conversation: str
    message_id: str


@dataclass(frozen=True, slots=True)
class Found:
    """A message an interrupted send had already posted, and the names of the files seen uploaded
    with it (after it, and before the next delivery's message in that conversation)."""

    posted: Posted
    files: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a notification (a digest chart, an exported record)."""

    filename: str
    content: bytes
    mime: str = "image/png"
    title: str | None = None


@dataclass(slots=True)
class Notification:
    """One delivery: one card, already decided for its one recipient and place.

    A direct message has `recipient`; a channel post has `channel` (and `recipient` None);
    an update of a posted card has `copy` as well."""

    delivery_id: int
    kind: str  # card / escalation / reminder / late / health / update
    audience: str
    school_id: str
    card: Card
    place: Place
    recipient: StaffConfig | None = None
    channel: str | None = None
    copy: CopyRef | None = None
    attachments: list[Attachment] = field(default_factory=list)  # direct messages only

    @property
    def to(self) -> str:
        if self.recipient is not None:
            return f"DM to {self.recipient.name}"
        return self.channel or "#moderators"


class ChatSurface(Protocol):
    """Somewhere cards go and commands come from.

    `deliver` posts one notification (or updates `note.copy`) and says where it went; it
    raises on failure (`core.errors.Unreachable` when retrying cannot help), and the outbox
    keeps the delivery and retries, so a surface never has to remember anything itself.
    """

    name: str

    async def deliver(self, note: Notification) -> Posted | None: ...
