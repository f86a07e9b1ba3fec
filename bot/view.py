"""The one function that decides every view of an item: `view(item, viewer, place)`.

Who is looking (a configured member of staff, or nobody known) and where (a channel, their
own direct message, the queue, App Home, the console) decide what a card holds; the privacy
rule itself is `handlers.visibility.item_view`. Renderers (Slack Block Kit, Teams Adaptive
Cards, console text) draw only what this returns, so no renderer can show more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from bot.cards import CATEGORY_LABEL, buttons_for, countdown, format_local
from bot.safe import clean, safe_url
from core.chat import Button, Card, Place
from core.config import Config, StaffConfig
from core.domain import Escalate
from handlers.routing import may_acknowledge, moderators_of
from handlers.visibility import DSL_ROLES, Sight, ever_safeguarding_ids, item_view
from handlers.visibility import Place as Sight_place
from monitors import registry
from storage.models import Escalation, Item, Triage

PERSONAL = frozenset({Place.DIRECT, Place.QUEUE, Place.HOME})
WITHHELD = "Safeguarding concern passed to the DSL; its details are shown only to the DSLs, in their own messages."
HEADLINES: dict[str, dict[str, str]] = {
    "escalation": {
        "dsl": "Safeguarding concern for the DSL",
        "slt": "Escalation for SLT",
        "head": "Media enquiry for the headteacher",
        "leaders": "Escalation not yet acknowledged: please make sure someone picks this up",
    },
    "reminder": {"": "Reply due soon"},
    "late": {"": "Reply is late"},
}
NOT_FOR_UNSEEN = frozenset({"reply", "recategorise", "not_abuse"})  # nobody answers a text they cannot see


@dataclass(frozen=True, slots=True)
class Viewpoint:
    """Who looks and where; a channel is seen as its account's moderators see it."""

    viewer: StaffConfig | None
    place: Place

    @property
    def personal(self) -> bool:
        return self.place in PERSONAL


def headline_for(kind: str, audience: str, default: str) -> str:
    named = HEADLINES.get(kind, {})
    return named.get(audience) or named.get("") or default


def _onlooker(config: Config, item: Item) -> StaffConfig | None:
    """Whom a shared place is drawn for: the account's moderators (any one stands for all)."""
    people = moderators_of(config, school_id=item.school_id, account_id=item.account_id)
    return people[0] if people else None


def view(
    session: Session,
    config: Config,
    item: Item | None,
    viewer: StaffConfig | None,
    place: Place,
    *,
    now: datetime,
    kind: str = "card",
    audience: str = "moderators",
) -> Card | None:
    """The card `viewer` may see of `item` in `place`, or None when they may see nothing of it.

    For a channel or the console `viewer` may be None: it is drawn as the account's moderators may
    see it in a shared place. Anywhere else None means nobody we know, who sees nothing."""
    if item is None or item.id is None:
        return None
    shared = place in (Place.CHANNEL, Place.CONSOLE)
    looker = viewer if viewer is not None or not shared else _onlooker(config, item)
    where = Sight_place.PERSONAL if place in PERSONAL else Sight_place.SHARED
    ever = bool(ever_safeguarding_ids(session, [item.id]))
    sight = item_view(config, viewer=looker, item=item, ever_safeguarding=ever, place=where)
    if sight.sight is Sight.NONE:
        return None
    account = config.account(item.account_id)
    school = config.school(item.school_id)
    label = CATEGORY_LABEL.get(item.category or "other", "Other")
    card = Card(
        item_id=item.id,
        kind=kind,
        headline=headline_for(kind, audience, f"{label} on {account.name or account.id}"),
        platform=item.platform,
        account=clean(account.name or account.id),
        category=item.category,
        reply_by=format_local(item.reply_by, school) if item.needs_reply else None,
        countdown=countdown(item.reply_by, now) if item.needs_reply else None,
        status=_status(session, item),
    )
    if sight.content:
        card.text, card.author = clean(item.text), clean(item.author)
        card.url = safe_url(item.url)
        card.url_text = clean(item.url) if item.url and card.url is None else None
        card.reasons = [clean(r) or "" for r in _reasons(session, item.id)]
        card.media_urls = list(item.media_urls or []) if sight.media else []
    else:
        card.notice = WITHHELD if (ever or item.category == "safeguarding") else "Details are for moderators."
    card.buttons = _buttons(session, config, item, looker, sight.content, ever, place)
    return card


def _reasons(session: Session, item_id: int) -> list[str]:
    latest = session.scalars(
        select(Triage).where(col(Triage.item_id) == item_id).order_by(col(Triage.id).desc()).limit(1)
    ).first()
    return list(latest.reasons) if latest else []


def _status(session: Session, item: Item) -> str:
    status = item.status if not item.acknowledged_by else f"{item.status} by {item.acknowledged_by}"
    escalations = list(session.scalars(select(Escalation).where(col(Escalation.item_id) == item.id)))
    for esc in sorted(escalations, key=lambda e: e.id or 0):
        who = esc.target.upper() if esc.target != Escalate.HEAD else "the head"
        state = f"acknowledged by {esc.acknowledged_by}" if esc.acknowledged_at else "awaiting acknowledgement"
        status += f" · escalated to {who}: {state}"
    return status


def _buttons(
    session: Session,
    config: Config,
    item: Item,
    viewer: StaffConfig | None,
    content: bool,
    ever: bool,
    place: Place,
) -> list[Button]:
    """Buttons for what this viewer could do here (the server checks again on every click)."""
    if viewer is None or place in (Place.QUEUE, Place.HOME):
        return []
    buttons: list[Button] = []
    open_targets = {
        e.target
        for e in session.scalars(
            select(Escalation).where(col(Escalation.item_id) == item.id, col(Escalation.acknowledged_at).is_(None))
        )
    }
    if place is not Place.CHANNEL and any(may_acknowledge(viewer, t) for t in open_targets):
        buttons.append(Button("ack_escalation", "Acknowledge escalation"))
    if place is Place.CHANNEL or viewer.id in config.account(item.account_id).moderators:
        capabilities = registry.capabilities(config.account(item.account_id).platform)
        buttons += [b for b in buttons_for(item, capabilities) if content or b.action not in NOT_FOR_UNSEEN]
    if ever and content and place is Place.DIRECT and set(viewer.roles) & DSL_ROLES and item.category != "safeguarding":
        buttons.append(Button("lift_protection", "Lift safeguarding protection"))
    return buttons
