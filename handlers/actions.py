"""The one function every chat surface calls to act on an item.

It checks the actor's role on the server (a hidden button is not security),
snapshots evidence before anything destructive, performs the action and
writes the audit row, for successes, refusals and failures alike.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import httpx
from sqlmodel import Session, select

from core.config import AccountConfig, Config, Watch
from core.domain import Action, Audience, Capability, Escalate, Status
from core.errors import HallMonitorError, PlatformError
from handlers.deadline import reply_by
from handlers.pipeline import escalate
from handlers.routing import escalation_target, may_acknowledge
from handlers.triage import CATEGORIES, verdict_for
from handlers.visibility import DSL_ROLES, ever_safeguarding_ids
from monitors import registry
from monitors.base import ActRequest, Source
from monitors.http import USER_AGENT
from storage.models import Escalation, Evidence, Item, Triage
from storage.models import Source as SourceRow
from storage.queries import enqueue, open_escalations, write_audit

log = logging.getLogger(__name__)
DESTRUCTIVE = {"hide": Capability.HIDE, "delete": Capability.DELETE, "block": Capability.BLOCK}
PLATFORM_ACTIONS = {
    **DESTRUCTIVE,
    "reply": Capability.REPLY,
    "unhide": Capability.UNHIDE,
    "mute": Capability.MUTE,
    "report": Capability.REPORT,
}
SNAPSHOT_BEFORE = frozenset(DESTRUCTIVE) | {"report"}  # reported posts often vanish: keep what was reported
STATUS_AFTER = {"hide": "hidden", "delete": "deleted", "reply": "replied"}


class Outcome(StrEnum):
    OK = "ok"
    REFUSED = "refused"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """One person asking to do one thing to one item, from one surface.

    `actor` is a staff id, or `<surface>:<chat user id>` for someone not on the staff list;
    `item_id` is None when the surface could not read one (refused and audited)."""

    actor: str
    action: str
    item_id: int | None
    surface: str
    text: str | None = None  # reply: the words to post
    reason: str | None = None  # delete: why (told to the audience when tell_audience)
    tell_audience: bool = False
    category: str | None = None  # recategorise
    target: str | None = None  # escalate: slt / dsl / head

    def detail(self) -> dict[str, object]:
        fields = {"text": self.text, "reason": self.reason, "category": self.category, "target": self.target}
        return {k: v for k, v in fields.items() if v is not None} | (
            {"tell_audience": True} if self.tell_audience else {}
        )


@dataclass(frozen=True, slots=True)
class ActionResult:
    outcome: Outcome
    message: str  # a sentence for the person

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


class Refused(HallMonitorError):
    """An action handler's refusal; its message is the sentence the person sees."""


PlatformCall = Callable[[Source, ActRequest], str]


def snapshot(session: Session, *, item: Item, reason: str) -> Evidence:
    """Evidence kept before any hide/delete/block: text, author, link, times, raw payload.
    Media is never fetched; only its links are recorded, and not for safeguarding items."""
    evidence = Evidence(
        item_id=item.id or 0,
        reason=reason,
        snapshot={
            "platform": item.platform,
            "account_id": item.account_id,
            "external_id": item.external_id,
            "author": item.author,
            "text": item.text,
            "title": item.title,
            "url": item.url,
            "created_at": item.created_at.isoformat() if item.created_at else None,
            "received_at": item.received_at.isoformat(),
            "media_links": [] if item.category == "safeguarding" else list(item.media_urls or []),
            "raw": item.raw,
        },
    )
    session.add(evidence)
    session.flush()
    return evidence


Audit = Callable[..., ActionResult]


def audit_request(
    session: Session, request: ActionRequest, outcome: Outcome, message: str, *, school_id: str | None, **detail: object
) -> ActionResult:
    """Write the audit row for a request (any outcome) and return its result."""
    write_audit(
        session,
        actor=request.actor,
        action=request.action,
        outcome=outcome.value,
        school_id=school_id,
        item_id=request.item_id,
        surface=request.surface,
        detail={"message": message, **request.detail(), **detail},
    )
    return ActionResult(outcome, message)


def authorise(session: Session, *, config: Config, request: ActionRequest) -> ActionResult | None:
    """The refusal for a request (audited), or None when the actor may go ahead. Surfaces call it
    before opening a form (Reply, Delete), so even a form never submitted leaves its refusal."""
    item = session.get(Item, request.item_id) if request.item_id is not None else None
    if item is None:
        what = f"item {request.item_id}" if request.item_id is not None else "an item id in that request"
        return audit_request(session, request, Outcome.REFUSED, f"There is no {what}.", school_id=None)
    refusal = _refusal(config, actor=request.actor, action=request.action, item=item, session=session)
    if refusal:
        return audit_request(session, request, Outcome.REFUSED, refusal, school_id=item.school_id)
    return None


def perform(
    session: Session, *, config: Config, request: ActionRequest, now: datetime, platform: PlatformCall | None = None
) -> ActionResult:
    """Do what `request` asks as its actor; always audited. A change queues an update of every
    posted copy of the item's card, on every surface. A platform action runs through `platform`
    (the service's shared loop and client) or, without one, `run_act`."""
    refused = authorise(session, config=config, request=request)
    if refused is not None:
        return refused
    item = session.get(Item, request.item_id)
    assert item is not None

    def audit(outcome: Outcome, message: str, **detail: object) -> ActionResult:
        if outcome is Outcome.OK:
            _queue_update(session, item=item, now=now)
        return audit_request(session, request, outcome, message, school_id=item.school_id, **detail)

    account = config.account(item.account_id)
    capabilities = registry.capabilities(account.platform)
    if request.action in PLATFORM_ACTIONS:
        if PLATFORM_ACTIONS[request.action] not in capabilities:
            return audit(
                Outcome.REFUSED,
                f"{account.platform} does not let us {request.action} from here; do it on the platform.",
            )
        return _platform_action(
            session, config=config, item=item, request=request, now=now, audit=audit, platform=platform or run_act
        )
    handler = _HANDLERS.get(request.action)
    if handler is None:
        return audit(Outcome.REFUSED, f"Unknown action {request.action!r}.")
    try:
        message = handler(session, config=config, item=item, actor=request.actor, now=now, request=request)
    except Refused as exc:
        return audit(Outcome.REFUSED, str(exc))
    session.add(item)
    return audit(Outcome.OK, message)


def _queue_update(session: Session, *, item: Item, now: datetime) -> None:
    enqueue(
        session,
        dedupe_key=f"update:{item.id}:{uuid.uuid4().hex}",
        school_id=item.school_id,
        kind="update",
        audience=Audience.COPIES,
        item_id=item.id,
        now=now,
    )


def _platform_action(
    session: Session,
    *,
    config: Config,
    item: Item,
    request: ActionRequest,
    now: datetime,
    audit: Audit,
    platform: PlatformCall,
) -> ActionResult:
    """Evidence first (committed, so a failed call keeps it), then the platform call, then the audit."""
    action = request.action
    text = request.reason if action == "delete" else request.text
    tell = request.tell_audience and action == "delete"
    if action == "reply" and not (text or "").strip():
        return audit(Outcome.REFUSED, "Say what to reply.")
    evidence = snapshot(session, item=item, reason=action) if action in SNAPSHOT_BEFORE else None
    session.commit()
    account = config.account(item.account_id)
    connector = registry.SOURCES[account.platform](account, _watch_of(session, item, account))
    action_enum = Action(action)
    try:
        if tell and text:
            note = f"We have removed a comment because {text.rstrip('.')}."
            platform(connector, ActRequest(Action.REPLY, item.external_id, item.raw, note))
        message = platform(connector, ActRequest(action_enum, item.external_id, item.raw, text))
    except PlatformError as exc:
        return audit(Outcome.FAILED, str(exc), error_kind=exc.kind.value, evidence_id=evidence.id if evidence else None)
    except Exception as exc:  # a bug or an odd answer: still audited, and the person gets a sentence
        log.exception("platform_action_crashed platform=%s action=%s item=%s", account.platform, action, item.id)
        return audit(
            Outcome.FAILED,
            f"Sorry, {account.platform} did not answer as expected; it has been logged.",
            error=repr(exc)[:500],
            evidence_id=evidence.id if evidence else None,
        )
    if action in STATUS_AFTER:
        item.status = STATUS_AFTER[action]
    if action == "reply":
        item.replied_at = now
    if action == "unhide":
        item.status = "open" if item.needs_reply and not item.replied_at else "closed"
    session.add(item)
    return audit(Outcome.OK, message, evidence_id=evidence.id if evidence else None, told_audience=tell)


def _watch_of(session: Session, item: Item, account: AccountConfig) -> Watch:
    """The watch target the item came from (its source row); a pushed item has none, so the
    account's first target, which for a webhook platform is the page the delivery named."""
    source = session.get(SourceRow, item.source_id) if item.source_id is not None else None
    if source is not None:
        return Watch.model_validate({"url": source.location, "kind": source.kind, "label": source.label})
    return account.watch[0] if account.watch else Watch(url=account.id)


def run_act(connector: Source, request: ActRequest) -> str:
    """A platform action on a loop and client of its own, for callers with no running service."""

    async def go() -> str:
        async with httpx.AsyncClient(timeout=20, headers={"User-Agent": USER_AGENT}) as client:
            return await connector.act(client, request)

    return asyncio.run(go())


def _refusal(config: Config, *, actor: str, action: str, item: Item, session: Session) -> str | None:
    staff = config.staff_by_id(actor)
    if staff is None:
        return "You are not on this school's staff list, so you cannot act on items."
    if config.school_of(staff).id != item.school_id:
        return "That item belongs to another school."
    if action == "ack_escalation":
        targets = {e.target for e in open_escalations(session, item_id=item.id)}
        if not any(may_acknowledge(staff, t) for t in targets):
            return "Only the SLT, head or DSL this escalation went to can acknowledge it."
        return None
    if action == "lift_protection":
        if not set(staff.roles) & DSL_ROLES:
            return "Only the school's DSL or a deputy DSL can lift safeguarding protection."
        return None
    # Default deny: every other action, known or not, is for the account's designated moderators.
    if actor not in config.account(item.account_id).moderators:
        return "Only this account's designated moderators can do that."
    return None


def _acknowledge(session: Session, *, item: Item, actor: str, now: datetime, **_: object) -> str:
    if item.acknowledged_by:
        return f"Already acknowledged by {item.acknowledged_by}."
    item.status, item.acknowledged_by, item.acknowledged_at = "acknowledged", actor, now
    return f"Acknowledged by {actor}."


def _mark_replied(session: Session, *, item: Item, actor: str, now: datetime, **_: object) -> str:
    if item.replied_at is not None:
        return f"Already marked replied at {item.replied_at:%Y-%m-%d %H:%M} UTC; nothing changed."
    item.status, item.replied_at = Status.REPLIED, now
    return f"Marked replied by {actor}; the reply clock has stopped."


def _close(session: Session, *, item: Item, actor: str, **_: object) -> str:
    item.status = "closed"
    return f"Closed by {actor}: no reply needed."


def _recategorise(
    session: Session, *, config: Config, item: Item, actor: str, now: datetime, request: ActionRequest, **_: object
) -> str:
    category = (request.category or "").strip().lower()
    if category not in CATEGORIES:
        raise Refused(f"Say which category: {', '.join(CATEGORIES)}.")
    verdict = verdict_for(category, [f"re-categorised by {actor}"], decided_by=actor)
    assert item.id is not None
    session.add(
        Triage(
            item_id=item.id,
            category=category,
            needs_reply=verdict.needs_reply,
            escalate=verdict.escalate,
            reasons=verdict.reasons,
            decided_by=actor,
        )
    )
    target = escalation_target(category, verdict.escalate)
    item.category, item.needs_reply, item.escalate = category, verdict.needs_reply, target
    school = config.school(item.school_id)
    if item.needs_reply and item.reply_by is None:
        item.reply_by = reply_by(
            item.received_at, nation=school.nation.value, zone=school.zone, day_end=school.working_day_end
        )
    if target != Escalate.NONE:
        escalate(session, item=item, target=target, reason=f"re-categorised as {category} by {actor}", now=now)
    if item.status == "closed" and (item.needs_reply or target != Escalate.NONE):
        item.status = "open"
    return f"Re-categorised as {category} by {actor}."


def _not_abuse(session: Session, *, item: Item, actor: str, now: datetime, request: ActionRequest, **kw: object) -> str:
    if item.category != "abuse":
        raise Refused("Only items triaged as abuse can be marked not abuse.")
    for esc in open_escalations(session, item_id=item.id):
        if esc.target == Escalate.SLT:
            esc.acknowledged_at, esc.acknowledged_by = now, actor
            session.add(esc)
    relabel = ActionRequest(request.actor, "recategorise", request.item_id, request.surface, category="other")
    message = _recategorise(session, item=item, actor=actor, now=now, request=relabel, **kw)  # type: ignore[arg-type]
    return "Marked not abuse. " + message


def _escalate(session: Session, *, item: Item, actor: str, now: datetime, request: ActionRequest, **_: object) -> str:
    wanted = (request.target or "").strip().lower()
    target = wanted if wanted in (Escalate.DSL, Escalate.HEAD) else Escalate.SLT
    earlier = session.exec(select(Escalation).where(Escalation.item_id == item.id, Escalation.target == target)).first()
    if earlier is not None:
        return f"Already escalated to {target.upper()} at {earlier.created_at:%Y-%m-%d %H:%M} UTC; nothing sent again."
    escalate(session, item=item, target=target, reason=f"escalated by {actor}", now=now)
    if item.escalate != Escalate.DSL:  # safeguarding stays the item's escalation once raised
        item.escalate = target
    if item.status == "closed":
        item.status = "open"
    return f"Escalated to {target.upper()} by {actor}."


def _ack_escalation(session: Session, *, config: Config, item: Item, actor: str, now: datetime, **_: object) -> str:
    staff = config.staff_by_id(actor)
    done: list[Escalation] = []
    for esc in open_escalations(session, item_id=item.id):
        if staff is not None and may_acknowledge(staff, esc.target):
            esc.acknowledged_at, esc.acknowledged_by = now, actor
            session.add(esc)
            done.append(esc)
    if not done:
        raise Refused("Nothing to acknowledge.")
    return f"Escalation acknowledged by {actor}."


def _lift_protection(session: Session, *, item: Item, actor: str, now: datetime, **_: object) -> str:
    assert item.id is not None
    if item.category == "safeguarding":
        raise Refused("Re-categorise it first: an item triaged safeguarding now is always protected.")
    if not ever_safeguarding_ids(session, [item.id]):
        raise Refused("This item is not under safeguarding protection.")
    item.protection_lifted_by, item.protection_lifted_at = actor, now
    return f"Safeguarding protection lifted by {actor}; moderators now see this item in full."


_HANDLERS: dict[str, Callable[..., str]] = {
    "acknowledge": _acknowledge,
    "mark_replied": _mark_replied,
    "close": _close,
    "recategorise": _recategorise,
    "not_abuse": _not_abuse,
    "escalate": _escalate,
    "ack_escalation": _ack_escalation,
    "lift_protection": _lift_protection,
}
