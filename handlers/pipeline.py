"""New item -> stored -> triaged -> reply clock -> notifications queued.

Everything here runs inside the caller's transaction, so an item is never
stored without its triage and its notifications (or none of them are).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from core.config import AccountConfig, Config, SchoolConfig
from core.domain import NewItem
from handlers.deadline import reply_by
from handlers.triage import Classifier, Verdict, default_classifier
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


def clock_start(new: NewItem, *, received: datetime, not_before: datetime | None) -> datetime:
    """When the reply clock starts: when it was posted, but never before we
    could have seen it (the source's first poll) nor after we received it."""
    start = new.created_at or received
    if not_before is not None and start < not_before:
        start = not_before
    return min(start, received)


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
    verdicts: Mapping[str, Verdict] | None = None,
) -> IngestStats:
    """Store new items once (the unique key decides), triage them, queue notes.

    Set-based: one look-up, one batched triage, and a few multi-row inserts
    per call, however many items arrive. `verdicts` (by external id) are triage
    done beforehand, outside the transaction (the poller triages a whole batch
    of feeds at once); items without one are triaged here.
    """
    school = config.school_of(account)
    stats = IngestStats(seen=len(items))
    unique = list({new.external_id: new for new in items}.values())
    known = known_external_ids(session, account_id=account.id, external_ids=[n.external_id for n in unique])
    fresh = [new for new in unique if new.external_id not in known]
    given = verdicts or {}
    verdicts = {n.external_id: given[n.external_id] for n in fresh if n.external_id in given}
    todo = [n for n in fresh if n.external_id not in verdicts]
    if todo:
        classifier = classifier or default_classifier()
        classifier.refresh_labels(session)
        found = classifier.classify_many([n.text for n in todo], school=school.id)
        verdicts.update(zip((n.external_id for n in todo), found, strict=True))
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
        }
        for new in fresh
    ]
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
        if kind in CARDED_KINDS or verdict.escalate != "none":
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


def escalate(session: Session, *, item: Item, target: str, reason: str, school_id: str) -> None:
    """Open an escalation (once per item and target) and queue its ping."""
    assert item.id is not None
    row, ping = escalation_rows(
        item_id=item.id, target=target, reason=reason, school_id=school_id, now=item.received_at
    )
    insert_ignore(session, Escalation, row)
    insert_ignore(session, Outbox, ping)
