"""Records and evidence: one item's self-contained record, as JSON or PDF.

An item's record is for the moderators and DSLs of its own school; a safeguarding
record only for that school's DSL and deputy DSLs (decided by `handlers.visibility`),
and it never includes media links or the raw payload (which may hold them).
Every export, and every refusal, is written to the audit.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from core.config import Config, Role
from core.errors import HallMonitorError
from handlers.reports.pdf import Document
from handlers.visibility import Sight, ever_safeguarding_ids, item_view
from storage.models import Audit, Escalation, Evidence, Item, Triage
from storage.queries import write_audit

EXPORT_ROLES = frozenset({Role.MODERATOR, Role.DSL, Role.DEPUTY_DSL})
MEDIA_KEYS = frozenset({"media_links", "media_urls", "media", "attachments", "images", "image", "picture"})


class RecordError(HallMonitorError):
    """An export that is refused; the message says why and who can have it."""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def item_record(
    session: Session, *, config: Config, item_id: int, viewer_id: str, surface: str, now: datetime
) -> dict[str, Any]:
    """The full record of one item as `viewer_id` may have it; refusals raise RecordError (and are audited)."""
    viewer = config.staff_by_id(viewer_id)
    item = session.get(Item, item_id)
    if item is None or viewer is None:
        raise RecordError(
            f"There is no item {item_id} you can export."
            if item is None
            else f"{viewer_id!r} is not on the staff list."
        )
    safeguarding = bool(ever_safeguarding_ids(session, [item_id]))
    view = item_view(config, viewer=viewer, item=item, ever_safeguarding=safeguarding)
    if view.sight is Sight.NONE:
        raise RecordError(f"There is no item {item_id} you can export.")  # another school's: do not confirm it exists
    if view.sight is not Sight.FULL or not set(viewer.roles) & EXPORT_ROLES:
        school = config.school(item.school_id).name
        message = (
            f"Item {item_id} is a safeguarding record: only {school}'s DSL and deputy DSLs can export it."
            if safeguarding
            else f"Only {school}'s moderators and DSLs can export item records."
        )
        write_audit(
            session,
            actor=viewer.id,
            action="export_item",
            outcome="refused",
            school_id=item.school_id,
            item_id=item_id,
            surface=surface,
            detail={"message": message},
        )
        session.commit()
        raise RecordError(message)
    record = build_record(session, config=config, item=item, safeguarding=safeguarding, media=view.media)
    record["exported"] = {"by": viewer.id, "at": now.isoformat(timespec="seconds"), "rule": view.why}
    write_audit(
        session,
        actor=viewer.id,
        action="export_item",
        outcome="ok",
        school_id=item.school_id,
        item_id=item_id,
        surface=surface,
        detail={"safeguarding": safeguarding},
    )
    return record


def build_record(session: Session, *, config: Config, item: Item, safeguarding: bool, media: bool) -> dict[str, Any]:
    """The record's content, for a caller that has already applied `item_view` (`media`: its media rule)."""
    assert item.id is not None
    school = config.school(item.school_id)
    triage = session.scalars(select(Triage).where(col(Triage.item_id) == item.id).order_by(col(Triage.id)))
    escalations = session.scalars(
        select(Escalation).where(col(Escalation.item_id) == item.id).order_by(col(Escalation.id))
    )
    evidence = session.scalars(select(Evidence).where(col(Evidence.item_id) == item.id).order_by(col(Evidence.id)))
    audit = session.scalars(select(Audit).where(col(Audit.item_id) == item.id).order_by(col(Audit.id)))
    return {
        "item": {
            "id": item.id,
            "school": school.name,
            "account": item.account_id,
            "platform": item.platform,
            "kind": item.kind,
            "address": item.url,
            "external_id": item.external_id,
            "author": item.author,
            "title": item.title,
            "text": item.text,
            "posted_at": _iso(item.created_at),
            "received_at": _iso(item.received_at),
            "reply_by": _iso(item.reply_by),
            "replied_at": _iso(item.replied_at),
            "status": item.status,
            "category": item.category,
            "safeguarding": safeguarding,
            "legal_hold": item.legal_hold,
            "anonymised_at": _iso(item.anonymised_at),
            **({"media_links": list(item.media_urls or [])} if media else {}),
            **({"raw": item.raw} if media else {}),
        },
        "triage": [
            {
                "at": _iso(t.created_at),
                "by": t.decided_by,
                "category": t.category,
                "needs_reply": t.needs_reply,
                "escalate": t.escalate,
                "reasons": list(t.reasons),
            }
            for t in triage
        ],
        "escalations": [
            {
                "target": e.target,
                "raised_at": _iso(e.created_at),
                "reason": e.reason,
                "acknowledged_at": _iso(e.acknowledged_at),
                "acknowledged_by": e.acknowledged_by,
            }
            for e in escalations
        ],
        "actions": [
            {
                "at": _iso(a.at),
                "by": a.actor,
                "surface": a.surface,
                "action": a.action,
                "outcome": a.outcome,
                "message": a.detail.get("message"),
            }
            for a in audit
        ],
        "evidence": [
            {
                "taken_at": _iso(e.taken_at),
                "reason": e.reason,
                "snapshot": e.snapshot
                if media
                else {k: v for k, v in e.snapshot.items() if k not in MEDIA_KEYS | {"raw"}},
            }
            for e in evidence
        ],
    }


def record_json(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, indent=2)


def record_pdf(record: dict[str, Any]) -> bytes:
    """A readable PDF of an item record: the item, then triage, escalations, actions and evidence in order."""
    item = record["item"]
    doc = Document(
        f"Record of item {item['id']}",
        subtitle=f"{item['school']} · exported by {record['exported']['by']} "
        f"at {record['exported']['at']}" + (" · SAFEGUARDING: DSL only, no media" if item["safeguarding"] else ""),
    )
    doc.heading("The item")
    doc.rows(
        [
            (k.replace("_", " "), "" if item.get(k) is None else str(item[k]))
            for k in (
                "platform",
                "account",
                "kind",
                "address",
                "author",
                "posted_at",
                "received_at",
                "reply_by",
                "replied_at",
                "status",
                "category",
                "legal_hold",
            )
        ]
    )
    doc.heading("Text")
    doc.paragraph(item.get("text") or "")
    if item.get("media_links"):
        doc.rows([("media links", "\n".join(item["media_links"]))])
    doc.heading("Triage")
    doc.table(
        ["when", "by", "category", "reasons"],
        [[t["at"] or "", t["by"], t["category"], "; ".join(t["reasons"])] for t in record["triage"]] or [["-"] * 4],
    )
    doc.heading("Escalations")
    doc.table(
        ["target", "raised", "acknowledged", "by"],
        [
            [e["target"], e["raised_at"] or "", e["acknowledged_at"] or "not yet", e["acknowledged_by"] or ""]
            for e in record["escalations"]
        ]
        or [["-"] * 4],
    )
    doc.heading("Actions")
    doc.table(
        ["when", "who", "where", "action", "outcome"],
        [[a["at"] or "", a["by"], a["surface"], a["action"], a["outcome"]] for a in record["actions"]] or [["-"] * 5],
    )
    doc.heading("Evidence snapshots")
    for snap in record["evidence"] or []:
        doc.rows(
            [("taken", f"{snap['taken_at']} (before {snap['reason']})")]
            + [
                (k, json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v)
                for k, v in snap["snapshot"].items()
                if k != "raw"
            ]
        )
    if not record["evidence"]:
        doc.paragraph("No snapshot: nothing was hidden or deleted.", muted=True)
    return doc.output()
