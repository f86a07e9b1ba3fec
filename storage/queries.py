"""Storage functions: keyword-only arguments and an explicit session.

Deduplication is the database's job: inserts that hit a unique constraint are
ignored (INSERT ... ON CONFLICT DO NOTHING), never checked first in Python.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, col

from core.config import Config
from storage.models import Account, Audit, CardCopy, Delivery, Escalation, Item, Outbox, School, SeenInteraction, Source
from storage.types import utcnow

OPEN_STATUSES = ("open", "acknowledged")


def insert_ignore(session: Session, model: type[SQLModel], values: dict[str, Any]) -> int | None:
    """Insert a row unless a unique constraint says it exists; return the new id or None."""
    dialect = session.get_bind().dialect.name
    table = model.__table__  # type: ignore[attr-defined]
    if dialect == "sqlite":
        stmt: Any = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    elif dialect == "postgresql":
        stmt = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    else:  # other databases: let the constraint speak
        from sqlalchemy.exc import IntegrityError

        try:
            with session.begin_nested():
                result: Any = session.execute(table.insert().values(**values))
                return int(result.inserted_primary_key[0])
        except IntegrityError:
            return None
    result = session.execute(stmt.returning(table.c.id))
    row = result.first()
    return row[0] if row else None


def insert_ignore_many(
    session: Session, model: type[SQLModel], rows: list[dict[str, Any]], *, returning: tuple[str, ...] = ("id",)
) -> list[tuple[Any, ...]]:
    """Multi-row insert that skips rows hitting a unique constraint; returns the
    `returning` columns of the rows actually inserted."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        out = []
        for row in rows:
            new_id = insert_ignore(session, model, row)
            if new_id is not None:
                out.append(tuple(row.get(c, new_id) if c != "id" else new_id for c in returning))
        return out
    table = model.__table__  # type: ignore[attr-defined]
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    stmt = insert(table).on_conflict_do_nothing().returning(*(table.c[c] for c in returning))
    by_keys: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:  # one executemany per shape of row (every row of a shape has the same keys)
        by_keys.setdefault(tuple(sorted(row)), []).append(row)
    out = []
    for same in by_keys.values():
        # one statement compiled once (cached) and sent as multi-row INSERTs in pages ("insertmanyvalues")
        out += [tuple(r) for r in session.connection().execute(stmt, same)]
    return out


def known_external_ids(session: Session, *, account_id: str, external_ids: list[str]) -> set[str]:
    """Which of these ids are already stored (to skip re-triaging them; the
    unique constraint still decides on insert)."""
    known: set[str] = set()
    for start in range(0, len(external_ids), 500):
        chunk = external_ids[start : start + 500]
        stmt = select(col(Item.external_id)).where(col(Item.account_id) == account_id, col(Item.external_id).in_(chunk))
        known.update(session.scalars(stmt))
    return known


def outbox_row(
    *,
    dedupe_key: str,
    school_id: str,
    kind: str,
    audience: str,
    now: datetime,
    payload: dict[str, Any] | None = None,
    item_id: int | None = None,
) -> dict[str, Any]:
    return {
        "dedupe_key": dedupe_key,
        "school_id": school_id,
        "item_id": item_id,
        "kind": kind,
        "audience": audience,
        "payload": payload or {},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def sync_config(session: Session, *, config: Config) -> None:
    """Mirror schools, accounts and watch targets from the config into tables.

    Sources no longer in the config are disabled, never deleted: their items
    and history stay.
    """
    for school in config.schools:
        session.merge(School(id=school.id, name=school.name, nation=school.nation.value, timezone=school.timezone))
    session.flush()
    existing = {(s.account_id, s.location): s for s in session.scalars(select(Source))}  # one read, not one per watch
    wanted: set[tuple[str, str]] = set()
    for account in config.accounts:
        school = config.school_of(account)
        session.merge(Account(id=account.id, school_id=school.id, platform=account.platform, name=account.name))
        session.flush()
        for watch in account.watch:
            key = (account.id, watch.url)
            if key in wanted:
                continue  # the same target listed twice: one source
            wanted.add(key)
            source = existing.get(key)
            if source is None:
                session.add(Source(account_id=account.id, location=watch.url, kind=watch.kind, label=watch.label))
            elif (source.kind, source.label, source.enabled) != (watch.kind, watch.label, True):
                source.kind, source.label, source.enabled = watch.kind, watch.label, True
    for key, source in existing.items():
        if key not in wanted and source.enabled:
            source.enabled = False
    session.flush()


def due_sources(session: Session, *, now: datetime, limit: int = 1000, all_enabled: bool = False) -> list[Source]:
    """Enabled sources whose next check has come (or every enabled one)."""
    stmt = select(Source).where(col(Source.enabled).is_(True))
    if not all_enabled:
        stmt = stmt.where(or_(col(Source.next_check_at).is_(None), col(Source.next_check_at) <= now))
    stmt = stmt.order_by(col(Source.next_check_at).asc().nulls_first(), col(Source.id)).limit(limit)
    return list(session.scalars(stmt))


def enqueue(
    session: Session,
    *,
    dedupe_key: str,
    school_id: str,
    kind: str,
    audience: str,
    payload: dict[str, Any] | None = None,
    item_id: int | None = None,
    now: datetime | None = None,
) -> bool:
    """Queue a notification once per dedupe key; True if it was new."""
    row = outbox_row(
        dedupe_key=dedupe_key,
        school_id=school_id,
        kind=kind,
        audience=audience,
        now=now or utcnow(),
        payload=payload,
        item_id=item_id,
    )
    return insert_ignore(session, Outbox, row) is not None


def pending_outbox(session: Session, *, now: datetime, limit: int = 100) -> list[Outbox]:
    """Outbox rows not yet fanned out into deliveries, escalations first, locked for this
    transaction (on Postgres, rows another worker is fanning out are skipped, not waited for)."""
    stmt = (
        select(Outbox)
        .where(col(Outbox.status) == "pending", col(Outbox.next_attempt_at) <= now)
        .order_by(case((col(Outbox.kind) == "escalation", 0), else_=1), col(Outbox.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(stmt))


def add_deliveries(
    session: Session, *, outbox: Outbox, targets: list[tuple[str, str]], now: datetime, priority: int = 2
) -> int:
    """One delivery per (surface, target) of an outbox row, once (the unique key decides); then
    the row is `fanned`. Returns how many deliveries were new."""
    rows = [
        {
            "outbox_id": outbox.id,
            "school_id": outbox.school_id,
            "item_id": outbox.item_id,
            "surface": surface,
            "target": target,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "priority": priority,
            "maybe_sent": False,
        }
        for surface, target in dict.fromkeys(targets)
    ]
    added = insert_ignore_many(session, Delivery, rows)
    mark_outbox(session, outbox_id=outbox.id or 0, status="fanned")
    return len(added)


def mark_delivery(session: Session, *, delivery_id: int, **values: Any) -> None:
    session.execute(update(Delivery).where(col(Delivery.id) == delivery_id).values(**values))


def card_copies(session: Session, *, item_id: int) -> list[CardCopy]:
    return list(session.scalars(select(CardCopy).where(col(CardCopy.item_id) == item_id).order_by(col(CardCopy.id))))


def copy_at(session: Session, *, surface: str, conversation: str, message_id: str) -> CardCopy | None:
    stmt = select(CardCopy).where(
        col(CardCopy.surface) == surface,
        col(CardCopy.conversation) == conversation,
        col(CardCopy.message_id) == message_id,
    )
    return session.scalars(stmt).first()


def first_time(session: Session, *, key: str, now: datetime) -> bool:
    """True the first time an interaction key is seen (a replay finds it stored)."""
    return bool(insert_ignore_many(session, SeenInteraction, [{"key": key[:300], "seen_at": now}], returning=("key",)))


def open_items(session: Session, *, school_id: str | None = None, limit: int = 500) -> list[Item]:
    """Items still needing attention: escalations first, then soonest reply-by first."""
    stmt = select(Item).where(
        col(Item.status).in_(OPEN_STATUSES),
        or_(col(Item.needs_reply).is_(True), col(Item.escalate) != "none"),
    )
    if school_id:
        stmt = stmt.where(col(Item.school_id) == school_id)
    escalated = case((col(Item.escalate) != "none", 0), else_=1)
    stmt = stmt.order_by(escalated, col(Item.reply_by).asc().nulls_last(), col(Item.id)).limit(limit)
    return list(session.scalars(stmt))


def items_due_for_clock(session: Session, *, before: datetime) -> list[Item]:
    """Open items needing a reply whose reminder or deadline point is before `before`."""
    stmt = select(Item).where(
        col(Item.status).in_(OPEN_STATUSES),
        col(Item.needs_reply).is_(True),
        col(Item.replied_at).is_(None),
        and_(col(Item.reply_by).is_not(None), col(Item.reply_by) <= before),
    )
    return list(session.scalars(stmt))


def open_escalations(session: Session, *, item_id: int | None = None) -> list[Escalation]:
    stmt = select(Escalation).where(col(Escalation.acknowledged_at).is_(None))
    if item_id is not None:
        stmt = stmt.where(col(Escalation.item_id) == item_id)
    return list(session.scalars(stmt))


def write_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    outcome: str,
    school_id: str | None = None,
    item_id: int | None = None,
    surface: str = "system",
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        Audit(
            actor=actor,
            action=action,
            outcome=outcome,
            school_id=school_id,
            item_id=item_id,
            surface=surface,
            detail=detail or {},
        )
    )


def mark_outbox(session: Session, *, outbox_id: int, **values: Any) -> None:
    session.execute(update(Outbox).where(col(Outbox.id) == outbox_id).values(**values))
