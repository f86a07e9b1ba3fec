"""New item -> stored -> triaged -> reply clock -> notifications queued.

Everything here runs inside the caller's transaction, so an item is never
stored without its triage and its notifications (or none of them are).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlmodel import Session

from core.config import AccountConfig, Config, SchoolConfig
from core.domain import NewItem
from handlers.deadline import reply_by
from handlers.routing import escalation_target
from handlers.triage import Classifier, Verdict, default_classifier
from handlers.verdict import OWN_POST
from storage.models import Escalation, Item, Outbox, Triage
from storage.queries import insert_ignore, insert_ignore_many, known_external_ids, outbox_row

log = logging.getLogger(__name__)

# The school's own posts are stored for context; only what others say is carded.
CARDED_KINDS = frozenset({"comment", "mention", "message"})


@dataclass(slots=True)
class IngestStats:
    seen: int = 0
    stored: int = 0
    escalated: int = 0
    backfilled: int = 0


def clock_start(new: NewItem, *, received: datetime, not_before: datetime | None) -> datetime:
    """When the reply clock starts: when it was posted, but never before we
    could have seen it (the source's first poll) nor after we received it."""
    start = new.created_at or received
    if not_before is not None and start < not_before:
        start = not_before
    return min(start, received)


def _old(new: NewItem, before: datetime | None) -> bool:
    return before is not None and new.created_at is not None and new.created_at < before


def _backfilled(verdict: Verdict) -> dict[str, Any]:
    """A backlog item: no reply clock and closed, unless it is a safeguarding escalation."""
    dsl = verdict.escalate == "dsl"
    return {
        "needs_reply": False,
        "reply_by": None,
        "escalate": "dsl" if dsl else "none",
        "status": "open" if dsl else "closed",
    }


def item_decision(kind: str, verdict: Verdict, *, school: SchoolConfig, start: datetime) -> dict[str, Any]:
    """The item fields a verdict sets: category, reply clock, escalation, status."""
    needs_reply = verdict.needs_reply and kind in CARDED_KINDS
    due = reply_by(start, nation=school.nation.value, zone=school.zone, day_end=school.working_day_end)
    return {
        "category": verdict.category,
        "needs_reply": needs_reply,
        "escalate": verdict.escalate,
        "reply_by": due if needs_reply else None,
        "status": "open" if needs_reply or verdict.escalate != "none" else "closed",
    }


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
    backfill_before: datetime | None = None,
    verdicts: Mapping[str, Verdict] | None = None,
) -> IngestStats:
    """Store new items once (the unique key decides), triage them, queue notes.

    Items posted before `backfill_before` (a first poll's backlog) are stored and triaged but
    get no card and no reply clock; a safeguarding one still escalates to the DSL.

    Set-based: one look-up, one batched triage, and a few multi-row inserts
    per call, however many items arrive. `verdicts` (by external id) are triage done
    beforehand, outside the transaction (the poller triages many feeds at once); an item
    without one is triaged here.
    """
    school = config.school_of(account)
    stats = IngestStats(seen=len(items))
    unique = list({new.external_id: new for new in items}.values())
    known = known_external_ids(session, account_id=account.id, external_ids=[n.external_id for n in unique])
    fresh = [new for new in unique if new.external_id not in known]
    given = verdicts or {}
    found = {n.external_id: given[n.external_id] for n in fresh if n.external_id in given and not n.by_school}
    todo = [n for n in fresh if n.external_id not in found and not n.by_school]
    if todo:
        classifier = classifier or default_classifier()
        classifier.refresh_labels(session)
        found_now = classifier.classify_many([n.text for n in todo], school=school.id)
        found.update(zip((n.external_id for n in todo), found_now, strict=True))
    verdicts = {external_id: _routed(verdict) for external_id, verdict in found.items()}
    verdicts |= {n.external_id: OWN_POST for n in fresh if n.by_school}  # never escalated nor replied to
    rows = [
        {
            "school_id": school.id,
            "account_id": account.id,
            "source_id": source_id,
            "platform": account.platform,
            "external_id": new.external_id,
            "kind": new.kind,
            "author": new.author and new.author[:512],
            "title": new.title,
            "text": new.text,
            "url": new.url and new.url[:2048],
            "created_at": new.created_at,
            "received_at": now,
            # Safeguarding items keep text and link only: never their images or video.
            "media_urls": [] if verdicts[new.external_id].category == "safeguarding" else list(new.media_urls),
            "raw": new.raw,
            **item_decision(
                new.kind,
                verdicts[new.external_id],
                school=school,
                start=clock_start(new, received=now, not_before=not_before),
            ),
            **(_backfilled(verdicts[new.external_id]) if _old(new, backfill_before) else {}),
        }
        for new in fresh
    ]
    backlog = {new.external_id for new in fresh if _old(new, backfill_before)}
    inserted = insert_ignore_many(session, Item, rows, returning=("id", "external_id", "kind"))
    triage, escalations, notes = [], [], []
    for item_id, external_id, kind in inserted:
        verdict = verdicts[external_id]
        stats.stored += 1
        triage.append(
            {
                "item_id": item_id,
                "category": verdict.category,
                "needs_reply": verdict.needs_reply,
                "escalate": verdict.escalate,
                "reasons": verdict.reasons,
                "decided_by": verdict.decided_by,
                "created_at": now,
            }
        )
        if external_id in backlog:
            stats.backfilled += 1
            verdict = replace(verdict, escalate="dsl" if verdict.escalate == "dsl" else "none")
        if external_id not in backlog and (kind in CARDED_KINDS or verdict.escalate != "none"):
            notes.append(
                outbox_row(
                    dedupe_key=f"card:{item_id}",
                    school_id=school.id,
                    kind="card",
                    audience="moderators",
                    item_id=item_id,
                    now=now,
                )
            )
        if verdict.escalate != "none":
            stats.escalated += 1
            row, ping = escalation_rows(
                item_id=item_id,
                target=verdict.escalate,
                reason="; ".join(verdict.reasons),
                school_id=school.id,
                now=now,
            )
            escalations.append(row)
            notes.append(ping)
    insert_ignore_many(session, Triage, triage)
    insert_ignore_many(session, Escalation, escalations)
    insert_ignore_many(session, Outbox, notes)
    return stats


def _routed(verdict: Verdict) -> Verdict:
    """The verdict with its escalation routed (a media enquiry goes to the head)."""
    target = escalation_target(verdict.category, verdict.escalate)
    return verdict if target == verdict.escalate else replace(verdict, escalate=target)


def escalation_key(item_id: int, target: str, round_: int = 0) -> str:
    """The outbox key of an escalation ping: one first ping, then one per re-ping round."""
    return f"escalation:{item_id}:{target}:{round_}"


def escalation_rows(
    *, item_id: int, target: str, reason: str, school_id: str, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An escalation's row and its first ping's outbox row, for ingest (in bulk) and `escalate`."""
    log.info("escalated item=%s target=%s reason=%r", item_id, target, reason)
    row = {"item_id": item_id, "target": target, "reason": reason, "created_at": now}
    ping = outbox_row(
        dedupe_key=escalation_key(item_id, target),
        school_id=school_id,
        kind="escalation",
        audience=target,
        item_id=item_id,
        now=now,
        payload={"reason": reason},
    )
    return row, ping


def escalate(session: Session, *, item: Item, target: str, reason: str, now: datetime) -> None:
    """Open an escalation (once per item and target) and queue its ping. Its re-ping clock
    starts now, when it was raised, not when the item arrived."""
    assert item.id is not None
    row, ping = escalation_rows(item_id=item.id, target=target, reason=reason, school_id=item.school_id, now=now)
    insert_ignore(session, Escalation, row)
    insert_ignore(session, Outbox, ping)
