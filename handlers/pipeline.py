"""New item -> stored -> triaged -> reply clock -> notifications queued.

Everything here runs inside the caller's transaction, so an item is never
stored without its triage and its notifications (or none of them are).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from hallmonitor.config import AccountConfig, Config
from handlers.deadline import reply_by
from handlers.triage import Classifier, Verdict, default_classifier
from monitors.base import NewItem
from storage.models import Escalation, Item, Triage
from storage.queries import enqueue, insert_ignore

log = logging.getLogger(__name__)

# The school's own posts are stored for context; only what others say is carded.
CARDED_KINDS = frozenset({"comment", "mention", "message"})


@dataclass(slots=True)
class IngestStats:
    seen: int = 0
    stored: int = 0
    duplicates: int = 0
    escalated: int = 0
    new_ids: list[int] = field(default_factory=list)


def clock_start(new: NewItem, *, received: datetime, not_before: datetime | None) -> datetime:
    """When the reply clock starts: when it was posted, but never before we
    could have seen it (the source's first poll) nor after we received it."""
    start = new.created_at or received
    if not_before is not None and start < not_before:
        start = not_before
    return min(start, received)


def ingest(
    session: Session,
    *,
    config: Config,
    account: AccountConfig,
    items: list[NewItem],
    now: datetime,
    source_id: int | None = None,
    not_before: datetime | None = None,
    classifier: Classifier | None = None,
) -> IngestStats:
    """Store new items once (the unique key decides), triage them, queue notes."""
    classifier = classifier or default_classifier()
    school = config.school_of(account)
    stats = IngestStats(seen=len(items))
    for new in items:
        item_id = insert_ignore(
            session,
            Item,
            {
                "school_id": school.id,
                "account_id": account.id,
                "source_id": source_id,
                "platform": account.platform,
                "external_id": new.external_id,
                "kind": new.kind,
                "author": (new.author or None) and new.author[:512],
                "title": new.title,
                "text": new.text,
                "url": new.url and new.url[:2048],
                "created_at": new.created_at,
                "received_at": now,
                "status": "open",
                "needs_reply": False,
                "escalate": "none",
                "media_urls": list(new.media_urls),
                "raw": new.raw,
            },
        )
        if item_id is None:
            stats.duplicates += 1
            continue
        stats.stored += 1
        stats.new_ids.append(item_id)
        item = session.get(Item, item_id)
        assert item is not None
        verdict = classifier.classify(new.text, platform=account.platform, author=new.author)
        start = clock_start(new, received=now, not_before=not_before)
        apply_verdict(session, item=item, verdict=verdict, config=config, start=start)
        if verdict.escalate != "none":
            stats.escalated += 1
    return stats


def apply_verdict(session: Session, *, item: Item, verdict: Verdict, config: Config, start: datetime) -> None:
    """Record a verdict on the item, set its reply clock, queue its card and escalation."""
    account = config.account(item.account_id)
    school = config.school_of(account)
    assert item.id is not None
    session.add(
        Triage(
            item_id=item.id,
            category=verdict.category,
            needs_reply=verdict.needs_reply,
            escalate=verdict.escalate,
            reasons=verdict.reasons,
            decided_by=verdict.decided_by,
        )
    )
    carded = item.kind in CARDED_KINDS
    item.category = verdict.category
    item.needs_reply = verdict.needs_reply and carded
    item.escalate = verdict.escalate
    if item.needs_reply:
        item.reply_by = reply_by(start, nation=school.nation.value, zone=school.zone, day_end=school.working_day_end)
    if not item.needs_reply and verdict.escalate == "none":
        item.status = "closed"
    session.add(item)
    session.flush()
    if carded or verdict.escalate != "none":
        enqueue(
            session,
            dedupe_key=f"card:{item.id}",
            school_id=school.id,
            kind="card",
            audience="moderators",
            item_id=item.id,
            now=item.received_at,
        )
    if verdict.escalate != "none":
        escalate(session, item=item, target=verdict.escalate, reason="; ".join(verdict.reasons), school_id=school.id)


def escalate(session: Session, *, item: Item, target: str, reason: str, school_id: str, round_: int = 0) -> None:
    """Open an escalation (once per item and target) and queue its ping."""
    assert item.id is not None
    insert_ignore(
        session, Escalation, {"item_id": item.id, "target": target, "reason": reason, "created_at": item.received_at}
    )
    enqueue(
        session,
        dedupe_key=f"escalation:{item.id}:{target}:{round_}",
        school_id=school_id,
        kind="escalation",
        audience=target,
        item_id=item.id,
        payload={"reason": reason},
        now=item.received_at,
    )
    log.info("escalated item=%s target=%s reason=%r", item.id, target, reason)
