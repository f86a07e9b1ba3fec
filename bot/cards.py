"""The card builder: what the card for an item contains (text, buttons, clocks). Renderers
(console, Slack Block Kit, Teams Adaptive Cards) draw cards; they never decide what is on them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from core.chat import Button, Card
from core.config import AccountConfig, Config, SchoolConfig
from core.domain import Capability
from monitors.registry import capabilities
from storage.models import Item, Triage

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


def triage_card(
    item: Item,
    *,
    school: SchoolConfig,
    account: AccountConfig,
    capabilities: frozenset[Capability],
    now: datetime,
    reasons: list[str] | None = None,
    kind: str = "card",
    headline: str | None = None,
    withhold_text: bool = False,
) -> Card:
    """The card for one item. Safeguarding items never carry media; in shared
    channels their text is withheld (it went to the DSL directly)."""
    label = CATEGORY_LABEL.get(item.category or "other", "Other")
    safeguarding = item.category == "safeguarding"
    status = item.status if not item.acknowledged_by else f"{item.status} by {item.acknowledged_by}"
    return Card(
        item_id=item.id,
        kind=kind,
        headline=headline or f"{label} on {account.name or account.id}",
        text=(
            "Safeguarding concern passed to the DSL; text withheld from this channel." if withhold_text else item.text
        ),
        author=item.author,
        platform=item.platform,
        account=account.name or account.id,
        url=item.url,
        category=item.category,
        reasons=list(reasons or []),
        reply_by=format_local(item.reply_by, school) if item.needs_reply else None,
        countdown=countdown(item.reply_by, now) if item.needs_reply else None,
        status=status,
        buttons=buttons_for(item, capabilities),
        media_urls=[] if safeguarding else list(item.media_urls or []),
    )


def item_card(
    session: Session,
    *,
    config: Config,
    item: Item,
    now: datetime,
    kind: str = "card",
    headline: str | None = None,
    withhold_text: bool,
) -> Card:
    """The card for a stored item, with its latest triage reasons and its platform's buttons:
    the one builder for cards delivered from the outbox and cards refreshed after an action."""
    account = config.account(item.account_id)
    latest = session.scalars(
        select(Triage).where(col(Triage.item_id) == item.id).order_by(col(Triage.id).desc()).limit(1)
    ).first()
    return triage_card(
        item,
        school=config.school_of(account),
        account=account,
        capabilities=capabilities(account.platform),
        now=now,
        reasons=latest.reasons if latest else [],
        kind=kind,
        headline=headline,
        withhold_text=withhold_text,
    )


def queue_line(item: Item, now: datetime) -> str:
    """One open item in a queue listing; a safeguarding item's text is never listed."""
    clock = countdown(item.reply_by, now) or f"{item.escalate} escalation"
    text = "(text withheld: safeguarding)" if item.category == "safeguarding" else item.text[:80]
    return f"#{item.id} {item.category} · {clock} · {text}"
