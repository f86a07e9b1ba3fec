"""The one function every chat surface calls to act on an item.

It checks the actor's role on the server (a hidden button is not security),
snapshots evidence before anything destructive, performs the action and
writes the audit row, for successes, refusals and failures alike.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import httpx
from sqlmodel import Session

from core.config import AccountConfig, Config, Role, Watch
from core.domain import Action, Capability, Escalate, Status
from core.errors import PlatformError
from handlers.deadline import reply_by
from handlers.pipeline import escalate
from handlers.triage import CATEGORIES, verdict_for
from monitors import registry
from monitors.base import ActRequest, Source
from monitors.http import USER_AGENT
from storage.models import Escalation, Evidence, Item, Triage
from storage.models import Source as SourceRow
from storage.queries import open_escalations, write_audit

log = logging.getLogger(__name__)
DESTRUCTIVE = {Action.HIDE: Capability.HIDE, Action.DELETE: Capability.DELETE, Action.BLOCK: Capability.BLOCK}
PLATFORM_ACTIONS = {
    **DESTRUCTIVE,
    Action.REPLY: Capability.REPLY,
    Action.UNHIDE: Capability.UNHIDE,
    Action.MUTE: Capability.MUTE,
    Action.REPORT: Capability.REPORT,
}
SNAPSHOT_BEFORE = frozenset(DESTRUCTIVE) | {Action.REPORT}  # reported posts often vanish: keep what was reported
STATUS_AFTER = {Action.HIDE: Status.HIDDEN, Action.DELETE: Status.DELETED, Action.REPLY: Status.REPLIED}


@dataclass(frozen=True, slots=True)
class ActionResult:
    ok: bool
    message: str


PlatformCall = Callable[[Source, ActRequest], str]


class Refused(Exception):
    """An action handler's refusal; its message is the sentence the person sees (and is audited)."""


class Audit(Protocol):
    def __call__(self, outcome: str, message: str, **detail: object) -> ActionResult: ...


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


def perform(
    session: Session,
    *,
    config: Config,
    actor: str,
    action: str,
    item_id: int,
    surface: str,
    now: datetime,
    argument: str | None = None,
    platform: PlatformCall | None = None,
) -> ActionResult:
    """Do `action` on an item as `actor` (a staff id); always audited. A platform action runs
    through `platform` (the service's shared loop and client) or, without one, `run_act`."""
    item = session.get(Item, item_id)
    if item is None:
        return ActionResult(False, f"There is no item {item_id}.")
    school_id = item.school_id

    def audit(outcome: str, message: str, **detail: object) -> ActionResult:
        write_audit(
            session,
            actor=actor,
            action=action,
            outcome=outcome,
            school_id=school_id,
            item_id=item_id,
            surface=surface,
            detail={"message": message, "argument": argument, **detail},
        )
        return ActionResult(outcome == "ok", message)

    refusal = _refusal(config, actor=actor, action=action, item=item, session=session)
    if refusal:
        return audit("refused", refusal)
    account = config.account(item.account_id)
    capabilities = registry.capabilities(account.platform)
    if action in PLATFORM_ACTIONS:
        needed = PLATFORM_ACTIONS[Action(action)]
        if needed not in capabilities:
            return audit("refused", f"{account.platform} does not let us {action} from here; do it on the platform.")
        return _platform_action(
            session,
            config=config,
            item=item,
            action=Action(action),
            argument=argument,
            now=now,
            audit=audit,
            platform=platform or run_act,
        )
    handler = _HANDLERS.get(action)
    if handler is None:
        return audit("refused", f"Unknown action {action!r}.")
    try:
        message = handler(session, config=config, item=item, actor=actor, now=now, argument=argument)
    except Refused as exc:
        return audit("refused", str(exc))
    session.add(item)
    return audit("ok", message)


def _platform_action(
    session: Session,
    *,
    config: Config,
    item: Item,
    action: Action,
    argument: str | None,
    now: datetime,
    audit: Audit,
    platform: PlatformCall,
) -> ActionResult:
    """Evidence first (committed, so a failed call keeps it), then the platform call, then the audit."""
    text, tell = argument, False
    if action == "delete" and argument and argument.lstrip().startswith("{"):
        try:
            details = json.loads(argument)
            text, tell = str(details.get("reason") or ""), bool(details.get("tell_audience"))
        except (ValueError, AttributeError):
            text, tell = argument, False  # not the modal's JSON: take it as the reason
    if action == "reply" and not (text or "").strip():
        return audit("refused", "Say what to reply.")
    evidence = snapshot(session, item=item, reason=action) if action in SNAPSHOT_BEFORE else None
    session.commit()
    account = config.account(item.account_id)
    connector = registry.SOURCES[account.platform](account, _watch_of(session, item, account))
    try:
        if action == Action.DELETE and tell and text:
            note = f"We have removed a comment because {text.rstrip('.')}."
            platform(connector, ActRequest(Action.REPLY, item.external_id, item.raw, note))
        message = platform(connector, ActRequest(action, item.external_id, item.raw, text))
    except PlatformError as exc:
        return audit("failed", str(exc), error_kind=exc.kind.value, evidence_id=evidence.id if evidence else None)
    except Exception as exc:  # a bug or an odd answer: still audited, and the person gets a sentence
        log.exception("platform_action_crashed platform=%s action=%s item=%s", account.platform, action, item.id)
        return audit(
            "failed",
            f"Sorry, {account.platform} did not answer as expected; it has been logged.",
            error=repr(exc)[:500],
            evidence_id=evidence.id if evidence else None,
        )
    if action in STATUS_AFTER:
        item.status = STATUS_AFTER[action]
    if action == "reply":
        item.replied_at = now
    if action == "unhide":
        item.status = Status.OPEN if item.needs_reply and not item.replied_at else Status.CLOSED
    session.add(item)
    return audit("ok", message, evidence_id=evidence.id if evidence else None, told_audience=tell)


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
    if action == "ack_escalation":
        targets = {e.target for e in open_escalations(session, item_id=item.id)}
        roles = {Role.SLT: "slt", Role.DSL: "dsl"}
        if not any(roles.get(r) in targets for r in staff.roles) or config.school_of(staff).id != item.school_id:
            return "Only the SLT or DSL this escalation went to can acknowledge it."
        return None
    # Default deny: every other action, known or not, is for the account's designated moderators.
    if actor not in config.account(item.account_id).moderators:
        return "Only this account's designated moderators can do that."
    return None


def _acknowledge(session: Session, *, item: Item, actor: str, now: datetime, **_: object) -> str:
    if item.acknowledged_by:
        return f"Already acknowledged by {item.acknowledged_by}."
    item.status, item.acknowledged_by, item.acknowledged_at = Status.ACKNOWLEDGED, actor, now
    return f"Acknowledged by {actor}."


def _mark_replied(session: Session, *, item: Item, actor: str, now: datetime, **_: object) -> str:
    item.status, item.replied_at = Status.REPLIED, now
    return f"Marked replied by {actor}; the reply clock has stopped."


def _close(session: Session, *, item: Item, actor: str, **_: object) -> str:
    item.status = Status.CLOSED
    return f"Closed by {actor}: no reply needed."


def _recategorise(
    session: Session, *, config: Config, item: Item, actor: str, now: datetime, argument: str | None = None, **_: object
) -> str:
    category = (argument or "").strip().lower()
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
    item.category, item.needs_reply, item.escalate = category, verdict.needs_reply, verdict.escalate
    school = config.school(item.school_id)
    if item.needs_reply and item.reply_by is None:
        item.reply_by = reply_by(
            item.received_at, nation=school.nation.value, zone=school.zone, day_end=school.working_day_end
        )
    if verdict.escalate != "none":
        escalate(
            session,
            item=item,
            target=verdict.escalate,
            reason=f"re-categorised as {category} by {actor}",
            school_id=item.school_id,
        )
    if item.status == Status.CLOSED and (item.needs_reply or verdict.escalate != Escalate.NONE):
        item.status = Status.OPEN
    return f"Re-categorised as {category} by {actor}."


def _not_abuse(session: Session, *, item: Item, actor: str, now: datetime, **kw: object) -> str:
    if item.category != "abuse":
        raise Refused("Only items triaged as abuse can be marked not abuse.")
    for esc in open_escalations(session, item_id=item.id):
        if esc.target == "slt":
            esc.acknowledged_at, esc.acknowledged_by = now, actor
            session.add(esc)
    kw.pop("argument", None)
    message = _recategorise(session, item=item, actor=actor, now=now, argument="other", **kw)  # type: ignore[arg-type]
    return "Marked not abuse. " + message


def _escalate(session: Session, *, item: Item, actor: str, argument: str | None = None, **_: object) -> str:
    target = "dsl" if (argument or "").strip().lower() == "dsl" else "slt"
    escalate(session, item=item, target=target, reason=f"escalated by {actor}", school_id=item.school_id)
    return f"Escalated to {target.upper()} by {actor}."


def _ack_escalation(session: Session, *, config: Config, item: Item, actor: str, now: datetime, **_: object) -> str:
    staff = config.staff_by_id(actor)
    mine = {"slt" if r == Role.SLT else "dsl" for r in (staff.roles if staff else []) if r in (Role.SLT, Role.DSL)}
    done: list[Escalation] = []
    for esc in open_escalations(session, item_id=item.id):
        if esc.target in mine:
            esc.acknowledged_at, esc.acknowledged_by = now, actor
            session.add(esc)
            done.append(esc)
    if not done:
        raise Refused("Nothing to acknowledge.")
    return f"Escalation acknowledged by {actor}."


_HANDLERS = {
    "acknowledge": _acknowledge,
    "mark_replied": _mark_replied,
    "close": _close,
    "recategorise": _recategorise,
    "not_abuse": _not_abuse,
    "escalate": _escalate,
    "ack_escalation": _ack_escalation,
}
