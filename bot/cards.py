"""Card pieces: category labels, reply-by clocks and the moderator buttons a platform allows.
`bot.view.view` puts them together into the card a viewer may see."""

from __future__ import annotations

from datetime import datetime

from core.chat import Button
from core.config import SchoolConfig
from core.domain import Capability
from storage.models import Item

CATEGORY_LABEL = {
    "question": "Question",
    "complaint": "Complaint",
    "praise": "Praise",
    "abuse": "Abuse",
    "safeguarding": "Safeguarding",
    "spam": "Spam",
    "media": "Media enquiry",
    "other": "Other",
}


def countdown(reply_by: datetime | None, now: datetime) -> str | None:
    """'due in 3h 20m' / 'late by 45m', rounded down to minutes."""
    if reply_by is None:
        return None
    seconds = int((reply_by - now).total_seconds())
    span = abs(seconds) // 60
    days, rest = divmod(span, 1440)
    hours, minutes = divmod(rest, 60)
    text = (f"{days}d " if days else "") + (f"{hours}h " if hours or days else "") + f"{minutes}m"
    return f"due in {text}" if seconds >= 0 else f"late by {text}"


def format_local(when: datetime | None, school: SchoolConfig) -> str | None:
    if when is None:
        return None
    return when.astimezone(school.zone).strftime("%a %d %b %H:%M %Z")


def buttons_for(item: Item, capabilities: frozenset[Capability]) -> list[Button]:
    """Buttons follow what the platform allows; marking replied is always ours."""
    buttons = [Button("acknowledge", "Acknowledge")]
    if Capability.REPLY in capabilities:
        buttons.append(Button("reply", "Reply"))
    else:
        buttons.append(Button("mark_replied", "Mark replied"))
    if Capability.UNHIDE in capabilities and item.status == "hidden":
        buttons.append(Button("unhide", "Unhide"))
    elif Capability.HIDE in capabilities:
        buttons.append(Button("hide", "Hide", danger=True))
    if Capability.DELETE in capabilities:
        buttons.append(Button("delete", "Delete", danger=True))
    if Capability.BLOCK in capabilities:
        buttons.append(Button("block", "Block author", danger=True))
    if Capability.MUTE in capabilities:
        buttons.append(Button("mute", "Mute author"))
    if Capability.REPORT in capabilities:
        buttons.append(Button("report", "Report"))
    buttons.append(Button("escalate", "Escalate"))
    if item.category == "abuse":
        buttons.append(Button("not_abuse", "Not abuse"))
    buttons.append(Button("recategorise", "Re-categorise"))
    buttons.append(Button("close", "No reply needed"))
    return buttons
