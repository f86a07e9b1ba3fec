"""The audit log as CSV (`hallmonitor audit`): who did what to which item, and when."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from handlers.visibility import ever_safeguarding_ids
from storage.models import Audit

AUDIT_COLUMNS = ["id", "at", "school", "actor", "surface", "action", "item", "outcome", "detail"]


def audit_csv(session: Session, *, start: datetime, end: datetime, item_id: int | None = None) -> str:
    """Audit rows with start <= at < end (optionally for one item) as CSV. Details of actions on
    safeguarding items are withheld (they may quote the item); who did what, and when, is kept."""
    stmt = select(Audit).where(col(Audit.at) >= start, col(Audit.at) < end)
    if item_id is not None:
        stmt = stmt.where(col(Audit.item_id) == item_id)
    rows = list(session.scalars(stmt.order_by(col(Audit.id))))
    sensitive = ever_safeguarding_ids(session, [r.item_id for r in rows if r.item_id is not None])
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(AUDIT_COLUMNS)
    for r in rows:
        detail = {"withheld": "safeguarding item"} if r.item_id in sensitive else r.detail
        writer.writerow(
            [
                r.id,
                r.at.isoformat(),
                r.school_id or "",
                r.actor,
                r.surface,
                r.action,
                r.item_id or "",
                r.outcome,
                json.dumps(detail, ensure_ascii=False, sort_keys=True),
            ]
        )
    return out.getvalue()
