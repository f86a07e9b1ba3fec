"""The domain's words as enums, and the item a monitor hands on.

Every value is a `StrEnum`, so it compares equal to the plain string stored in
the database and written in audit rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Category(StrEnum):
    """What triage decided an item is."""

    QUESTION = "question"
    COMPLAINT = "complaint"
    PRAISE = "praise"
    ABUSE = "abuse"
    SAFEGUARDING = "safeguarding"
    SPAM = "spam"
    MEDIA = "media"
    OTHER = "other"


class Escalate(StrEnum):
    """Who an item goes to beyond its moderators."""

    NONE = "none"
    SLT = "slt"
    DSL = "dsl"
    HEAD = "head"


class Status(StrEnum):
    """Where an item is in its life."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    REPLIED = "replied"
    HIDDEN = "hidden"
    DELETED = "deleted"
    CLOSED = "closed"


class Audience(StrEnum):
    """Who a notification is for (see `handlers.routing`). `dsl` is the DSL and deputy DSLs;
    `head` the headteacher (SLT when none is named); `leaders` the widened circle for an
    unacknowledged SLT or head escalation: every SLT member and the head, never the DSL's items;
    `copies` every posted copy of an item's card (an update)."""

    MODERATORS = "moderators"
    SLT = "slt"
    DSL = "dsl"
    HEAD = "head"
    LEADERS = "leaders"
    COPIES = "copies"


class Action(StrEnum):
    """What a member of staff can do to an item from a chat surface."""

    ACKNOWLEDGE = "acknowledge"
    MARK_REPLIED = "mark_replied"
    CLOSE = "close"
    RECATEGORISE = "recategorise"
    NOT_ABUSE = "not_abuse"
    ESCALATE = "escalate"
    ACK_ESCALATION = "ack_escalation"
    REPLY = "reply"
    HIDE = "hide"
    UNHIDE = "unhide"
    DELETE = "delete"
    BLOCK = "block"
    MUTE = "mute"
    REPORT = "report"
    LIFT_PROTECTION = "lift_protection"  # a DSL releases an ever-safeguarding item to normal view


class Capability(StrEnum):
    """Moderation actions a platform may allow; chat buttons come from these."""

    REPLY = "reply"
    HIDE = "hide"
    UNHIDE = "unhide"
    DELETE = "delete"
    BLOCK = "block"
    MUTE = "mute"
    REPORT = "report"


@dataclass(frozen=True, slots=True)
class NewItem:
    """An item as a monitor found it, before storage."""

    external_id: str
    kind: str  # comment / mention / post / message
    text: str
    author: str | None = None
    url: str | None = None
    created_at: datetime | None = None  # timezone-aware UTC
    title: str | None = None
    media_urls: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)
    own: bool = False  # posted by the school's own account (a monitor that can tell says so)

    @property
    def by_school(self) -> bool:
        """The school's own post: marked `own` by its monitor, or from a watch of the school's
        own posts (kind "post", e.g. its YouTube uploads or its blog's feed)."""
        return self.own or self.kind == "post"
