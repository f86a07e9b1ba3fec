"""Subject access (UK GDPR art. 15) and erasure (art. 17) for a named author or platform user id.

Both are made by a member of staff with the SLT or DSL role, for their own school,
and both are audited (with counts, not the person's name: the audit must not
become a second copy of what was erased). A person is matched by the item's
author name (ignoring case) or by a platform user id anywhere in the stored
payload under an id-like key ("id", "user_id", "author_id", "did", ...).

Safeguarding records follow `handlers.visibility`: their content is included only
for the school's DSLs; for anyone else they are counted as withheld. Erasure never
touches an item under legal hold, and only a DSL can erase a safeguarding record.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlmodel import Session, col

from core.config import Config, Role, StaffConfig
from core.errors import HallMonitorError
from handlers.reports.pdf import Document
from handlers.retention import anonymise, purge_permit
from handlers.visibility import Sight, ever_safeguarding_ids, item_view
from storage.models import Audit, Evidence, Item
from storage.queries import write_audit

REQUEST_ROLES = frozenset({Role.SLT, Role.DSL, Role.DEPUTY_DSL})
ID_KEYS = frozenset(
    {
        "id",
        "user_id",
        "userid",
        "author_id",
        "from_id",
        "did",
        "handle",
        "username",
        "screen_name",
        "author_channel_id",
        "channel_id",
        "acct",
    }
)
ERASED = "[erased at the request of the person who wrote it]"


class SubjectAccessError(HallMonitorError):
    """A request that cannot be made by this person."""


def _ids_in(raw: Any, *, parent_key: str = "") -> set[str]:
    found: set[str] = set()
    if isinstance(raw, dict):
        for key, value in raw.items():
            found |= _ids_in(value, parent_key=str(key).lower())
    elif isinstance(raw, list):
        for value in raw:
            found |= _ids_in(value, parent_key=parent_key)
    elif isinstance(raw, str | int) and parent_key in ID_KEYS:
        found.add(str(raw))
    return found


def _requester(config: Config, staff_id: str) -> StaffConfig:
    staff = config.staff_by_id(staff_id)
    if staff is None or not set(staff.roles) & REQUEST_ROLES:
        raise SubjectAccessError(
            "Subject-access requests and erasures are made by the school's SLT or DSL; "
            f"{staff_id!r} is neither (check [[staff]] roles in the config)."
        )
    return staff


def matching_items(session: Session, *, school_id: str, subject: str) -> list[Item]:
    """The school's items written by `subject` (an author name or a platform user id); nested
    payloads are matched by their id-like keys only, not by any string that happens to equal it."""
    wanted = subject.strip().lower()
    items = session.scalars(select(Item).where(col(Item.school_id) == school_id).order_by(col(Item.id)))
    return [i for i in items if (i.author or "").strip().lower() == wanted or subject.strip() in _ids_in(i.raw)]


def _fingerprint(subject: str) -> str:
    return hashlib.sha256(subject.strip().lower().encode()).hexdigest()[:16]


def subject_access(session: Session, *, config: Config, subject: str, staff_id: str, now: datetime) -> dict[str, Any]:
    """Everything held about `subject` at the requester's school, as JSON-ready data."""
    staff = _requester(config, staff_id)
    school = config.school_of(staff)
    items = matching_items(session, school_id=school.id, subject=subject)
    sensitive = ever_safeguarding_ids(session, [i.id for i in items if i.id is not None])
    out: list[dict[str, Any]] = []
    withheld = 0
    for item in items:
        view = item_view(config, viewer=staff, item=item, ever_safeguarding=item.id in sensitive)
        if view.sight is not Sight.FULL:
            withheld += 1
            continue
        evidence = session.scalars(select(Evidence).where(col(Evidence.item_id) == item.id))
        actions = session.scalars(select(Audit).where(col(Audit.item_id) == item.id).order_by(col(Audit.id)))
        out.append(
            {
                "item": item.id,
                "platform": item.platform,
                "account": item.account_id,
                "address": item.url,
                "author": item.author,
                "text": item.text,
                "posted_at": item.created_at.isoformat() if item.created_at else None,
                "received_at": item.received_at.isoformat(),
                "category": item.category,
                "status": item.status,
                "legal_hold": item.legal_hold,
                **({"media_links": list(item.media_urls or [])} if view.media else {}),
                "what_we_did": [f"{a.at.isoformat()} {a.action} ({a.outcome})" for a in actions],
                "evidence_snapshots": [
                    {
                        "taken_at": e.taken_at.isoformat(),
                        "reason": e.reason,
                        "text": e.snapshot.get("text"),
                        "author": e.snapshot.get("author"),
                    }
                    for e in evidence
                ],
            }
        )
    write_audit(
        session,
        actor=staff.id,
        action="subject_access",
        outcome="ok",
        school_id=school.id,
        detail={"subject_fingerprint": _fingerprint(subject), "items": len(out), "withheld": withheld},
    )
    return {
        "subject": subject,
        "school": school.name,
        "made_by": staff.id,
        "made_at": now.isoformat(),
        "items": out,
        "withheld_safeguarding": withheld,
    }


def subject_access_pdf(data: dict[str, Any]) -> bytes:
    doc = Document(
        f"Information we hold about {data['subject']}",
        subtitle=f"{data['school']} · prepared by {data['made_by']} at {data['made_at']}",
    )
    doc.paragraph(
        f"{len(data['items'])} item(s) from our official social media accounts mention or were written "
        "by this person. For each: what they posted, where and when, and what the school did with it."
    )
    if data["withheld_safeguarding"]:
        doc.paragraph(
            f"{data['withheld_safeguarding']} safeguarding record(s) are held by the Designated "
            "Safeguarding Lead and reviewed by them separately.",
            muted=True,
        )
    for entry in data["items"]:
        doc.heading(f"Item {entry['item']}: {entry['platform']}, {entry['received_at'][:10]}")
        doc.rows(
            [
                ("address", entry["address"] or ""),
                ("posted", entry["posted_at"] or ""),
                ("received", entry["received_at"]),
                ("sorted as", entry["category"] or ""),
                ("status", entry["status"]),
                ("what we did", "\n".join(entry["what_we_did"]) or "nothing"),
            ]
        )
        doc.paragraph(entry["text"] or "")
    return doc.output()


def erase(session: Session, *, config: Config, subject: str, staff_id: str, now: datetime) -> dict[str, Any]:
    """Anonymise everything written by `subject` at the requester's school and delete its evidence
    snapshots, except items under legal hold and (for anyone but a DSL) safeguarding records."""
    staff = _requester(config, staff_id)
    school = config.school_of(staff)
    items = matching_items(session, school_id=school.id, subject=subject)
    sensitive = ever_safeguarding_ids(session, [i.id for i in items if i.id is not None])
    is_dsl = bool({Role.DSL, Role.DEPUTY_DSL} & set(staff.roles))
    erased, held, dsl_only = [], [], []
    for item in items:
        if item.legal_hold:
            held.append(item.id)
        elif item.id in sensitive and not is_dsl:
            dsl_only.append(item.id)
        else:
            anonymise(item, now=now, text=ERASED)
            erased.append(item.id)
    session.flush()
    if erased:
        with purge_permit(session, "evidence"):
            session.execute(delete(Evidence).where(col(Evidence.item_id).in_(erased)))
    result = {"erased": erased, "kept_on_legal_hold": held, "kept_for_the_dsl": dsl_only}
    write_audit(
        session,
        actor=staff.id,
        action="erasure",
        outcome="ok",
        school_id=school.id,
        detail={"subject_fingerprint": _fingerprint(subject), **result},
    )
    return result


def as_json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)
