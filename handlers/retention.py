"""Retention (UK GDPR storage limitation): the nightly purge and legal holds.

Per school and kind (see `RetentionConfig` and the README for the defaults):
- routine items (never escalated, never safeguarding, no evidence snapshot) past
  `items` are anonymised: text, title, author, address, media links and raw
  payload are removed; category and times stay, so the figures still add up; the
  platform's id stays, so the same comment is never fetched and stored again;
- escalated or safeguarding items, and items with evidence, past `evidence` are
  anonymised the same way, and evidence snapshots past `evidence` are deleted;
- audit rows past `audit` are deleted;
- raw webhook deliveries past `webhooks` are deleted (unless still pending);
- chat interaction keys (replay protection) older than `SEEN_KEEP` are deleted: a signed
  Slack request is refused after 5 minutes and a Teams token after an hour, so an
  older key can never match a request that would be accepted.
An item under legal hold is never touched, nor its evidence or audit rows.

`audit` and `evidence` are append-only in the database. The purge deletes from
them under a `PurgePermit` row that it writes and removes inside its own
transaction (migration 0004 explains why no one else can use it), and it records
what it did in a new audit row in that same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, delete, exists, or_, select
from sqlmodel import Session, col

from core.config import Config, Role, SchoolConfig
from storage.db import session_scope
from storage.models import Audit, Escalation, Evidence, Item, PurgePermit, SeenInteraction, Triage, WebhookEvent
from storage.queries import write_audit

log = logging.getLogger(__name__)
PURGER = "system:retention"
REMOVED = "[removed: retention period ended]"
HOLD_ROLES = frozenset({Role.MODERATOR, Role.DSL, Role.DEPUTY_DSL})
SEEN_KEEP = timedelta(days=2)


@dataclass(slots=True)
class PurgeReport:
    school: str
    items_anonymised: int = 0
    evidence_items_anonymised: int = 0
    evidence_deleted: int = 0
    audit_deleted: int = 0
    webhooks_deleted: int = 0
    held_kept: int = 0


def anonymise(item: Item, *, now: datetime, text: str = REMOVED) -> None:
    """Remove an item's content and anything that identifies its author; keep counts and times."""
    item.text, item.title, item.author, item.url = text, None, None, None
    item.media_urls, item.raw, item.anonymised_at = [], {}, now


def _evidence_kind(item_id_col: Any) -> ColumnElement[bool]:
    """SQL: the item was ever escalated, ever triaged as safeguarding, or has an evidence snapshot."""
    return or_(
        exists().where(col(Escalation.item_id) == item_id_col),
        exists().where(col(Triage.item_id) == item_id_col, col(Triage.category) == "safeguarding"),
        exists().where(col(Evidence.item_id) == item_id_col),
    )


def _due_items(session: Session, *, school_id: str, before: datetime, evidence: bool) -> list[Item]:
    kind = _evidence_kind(col(Item.id))
    stmt = select(Item).where(
        col(Item.school_id) == school_id,
        col(Item.legal_hold).is_(False),
        col(Item.anonymised_at).is_(None),
        col(Item.received_at) < before,
        kind if evidence else ~kind,
    )
    return list(session.scalars(stmt))


def purge_school(session: Session, *, config: Config, school: SchoolConfig, now: datetime) -> PurgeReport:
    """Apply the school's retention periods as of `now`; record the outcome in the audit."""
    periods = school.retention
    report = PurgeReport(school=school.id)
    for item in _due_items(session, school_id=school.id, before=now - periods.items, evidence=False):
        anonymise(item, now=now)
        report.items_anonymised += 1
    for item in _due_items(session, school_id=school.id, before=now - periods.evidence, evidence=True):
        anonymise(item, now=now)
        report.evidence_items_anonymised += 1
    held = select(col(Item.id)).where(col(Item.school_id) == school.id, col(Item.legal_hold).is_(True))
    report.held_kept = len(list(session.scalars(held)))
    mine = select(col(Item.id)).where(col(Item.school_id) == school.id, col(Item.legal_hold).is_(False))
    session.flush()
    with purge_permit(session, "evidence"):
        report.evidence_deleted = _count(
            session.execute(
                delete(Evidence).where(col(Evidence.taken_at) < now - periods.evidence, col(Evidence.item_id).in_(mine))
            )
        )
    with purge_permit(session, "audit"):
        report.audit_deleted = _count(
            session.execute(
                delete(Audit).where(
                    col(Audit.school_id) == school.id,
                    col(Audit.at) < now - periods.audit,
                    or_(col(Audit.item_id).is_(None), ~col(Audit.item_id).in_(held)),
                )
            )
        )
    accounts = [a.id for a in config.accounts if config.school_of(a).id == school.id]
    report.webhooks_deleted = _count(
        session.execute(
            delete(WebhookEvent).where(
                col(WebhookEvent.account_id).in_(accounts),
                col(WebhookEvent.received_at) < now - periods.webhooks,
                col(WebhookEvent.status) != "pending",
            )
        )
    )
    if not any(v for k, v in asdict(report).items() if k not in ("school", "held_kept")):
        return report  # nothing was past its period: nothing to record
    write_audit(
        session,
        actor=PURGER,
        action="retention_purge",
        outcome="ok",
        school_id=school.id,
        detail={**asdict(report), "periods_days": {k: v.days for k, v in _periods(school).items()}},
    )
    log.info("retention_purge %s", " ".join(f"{k}={v}" for k, v in asdict(report).items()))
    return report


def _periods(school: SchoolConfig) -> dict[str, timedelta]:
    r = school.retention
    return {"items": r.items, "evidence": r.evidence, "audit": r.audit, "webhooks": r.webhooks}


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


@contextmanager
def purge_permit(session: Session, table: str) -> Iterator[None]:
    """Within the current transaction only: let the purge delete rows of one append-only table.
    On an error the whole transaction, permit included, is rolled back by the caller's session."""
    session.add(PurgePermit(tbl=table, granted_to=PURGER))
    session.flush()
    yield
    session.execute(delete(PurgePermit).where(col(PurgePermit.tbl) == table))
    session.flush()


def run_due_purges(engine: Engine, *, config: Config, now: datetime, last_run: dict[str, date]) -> list[PurgeReport]:
    """The nightly job: purge each school once per school-local day, after its `purge_at`.

    `last_run` (school id -> day) is the caller's memory; after a restart a school may be purged
    twice in a day, which changes nothing (the purge only removes what is past its period).
    """
    reports = []
    for school in config.schools:
        local = now.astimezone(school.zone)
        if local.time() < school.retention.purge_at or last_run.get(school.id) == local.date():
            continue
        with session_scope(engine) as session:
            reports.append(purge_school(session, config=config, school=school, now=now))
        last_run[school.id] = local.date()
    if reports:
        with session_scope(engine) as session:
            prune_seen(session, now=now)
    return reports


def prune_seen(session: Session, *, now: datetime) -> int:
    """Delete replay-protection keys older than `SEEN_KEEP` (no school owns them)."""
    gone = _count(session.execute(delete(SeenInteraction).where(col(SeenInteraction.seen_at) < now - SEEN_KEEP)))
    if gone:
        log.info("seen_interactions_pruned count=%d", gone)
    return gone


def set_legal_hold(
    session: Session,
    *,
    config: Config,
    actor: str,
    item_id: int,
    hold: bool,
    reason: str | None,
    surface: str,
    now: datetime,
) -> tuple[bool, str]:
    """Place or lift a legal hold (the school's moderators and DSLs only); always audited."""
    item = session.get(Item, item_id)
    staff = config.staff_by_id(actor)
    school_id = item.school_id if item else None
    if item is None or staff is None or config.school_of(staff).id != item.school_id:
        message, ok = f"There is no item {item_id} you can hold.", False
    elif not set(staff.roles) & HOLD_ROLES:
        message, ok = "Only the school's moderators and DSLs can place or lift a legal hold.", False
    elif hold and not (reason or "").strip():
        message, ok = "Say why the item is held (e.g. a police request or a complaint in progress).", False
    else:
        item.legal_hold, item.legal_hold_reason = hold, (reason or "").strip() or None
        item.legal_hold_by, item.legal_hold_at = (actor, now) if hold else (None, None)
        session.add(item)
        message, ok = (
            (
                f"Item {item_id} is on legal hold: nothing about it will be purged or erased."
                if hold
                else f"Legal hold lifted from item {item_id}."
            ),
            True,
        )
    write_audit(
        session,
        actor=actor,
        action="legal_hold" if hold else "legal_hold_release",
        outcome="ok" if ok else "refused",
        school_id=school_id,
        item_id=item_id if item else None,
        surface=surface,
        detail={"message": message, "reason": reason},
    )
    return ok, message
