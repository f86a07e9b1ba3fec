"""Claiming work with leases on our own rows (the way miniflux keeps polling state on its feeds).

A worker claims rows in one short transaction: an UPDATE that sets `lease_owner` and
`lease_until` on rows that are due and not leased (or whose lease ran out). On Postgres the rows
are picked by a `SELECT ... FOR UPDATE SKIP LOCKED`, so two processes claiming at once take
disjoint rows and never wait on each other; on SQLite the single writer does the same without the
lock clause. The worker then does the work with no transaction open and clears the lease when it
records the result. A crashed worker's rows come back when their lease runs out.

`retrying()` runs a short transaction again when Postgres reports a deadlock or a serialization
failure, so neither ever reaches a caller.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine, case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col

from storage.db import session_scope
from storage.models import JobLease, Outbox, Source, WebhookEvent

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_SQLSTATES = ("40P01", "40001")  # deadlock detected, serialization failure


def worker_id() -> str:
    """This process's name in lease_owner columns: host, pid and a random tail."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in RETRYABLE_SQLSTATES or "database is locked" in str(exc.orig)


def retrying(engine: Engine, work: Callable[[Session], T], *, attempts: int = 5) -> T:
    """Run `work` in one transaction; again (after a short pause) if the database says it lost a
    deadlock or a serialization race, or SQLite stayed locked past its busy timeout."""
    for attempt in range(1, attempts + 1):
        try:
            with session_scope(engine) as session:
                return work(session)
        except DBAPIError as exc:
            if attempt == attempts or not _retryable(exc):
                raise
            log.info("transaction_retried attempt=%d reason=%s", attempt, type(exc.orig).__name__)
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _claim(
    session: Session,
    model: Any,
    *,
    where: Sequence[Any],
    order_by: Sequence[Any],
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
) -> list[Any]:
    table = model.__table__
    free = or_(table.c.lease_until.is_(None), table.c.lease_until < now)
    pick = select(table.c.id).where(*where, free).order_by(*order_by).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    chosen = pick.cte("chosen")
    stmt = (
        update(model)
        .where(col(model.id).in_(select(chosen.c.id)))
        .values(lease_owner=owner, lease_until=now + lease)
        .returning(model)
        .execution_options(synchronize_session=False)
    )
    return list(session.scalars(stmt))


def claim_sources(
    session: Session,
    *,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    all_enabled: bool = False,
    after_id: int | None = None,
) -> list[Source]:
    """Enabled sources whose next check has come, soonest first; or, with `all_enabled`, every
    enabled one with an id above `after_id`, in id order (a pass over all of them, page by page)."""
    where: list[Any] = [col(Source.enabled).is_(True)]
    order: list[Any]
    if all_enabled:
        where.append(col(Source.id) > (after_id or 0))
        order = [col(Source.id)]
    else:
        where.append(or_(col(Source.next_check_at).is_(None), col(Source.next_check_at) <= now))
        order = [col(Source.next_check_at).asc().nulls_first(), col(Source.id)]
    return _claim(session, Source, where=where, order_by=order, owner=owner, now=now, lease=lease, limit=limit)


def claim_webhook_events(
    session: Session, *, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[WebhookEvent]:
    """Stored deliveries still pending, oldest first."""
    where = [col(WebhookEvent.status) == "pending"]
    order = [col(WebhookEvent.id)]
    return _claim(session, WebhookEvent, where=where, order_by=order, owner=owner, now=now, lease=lease, limit=limit)


# Safeguarding and SLT pings first, then cards, then reminders and late pings, then health.
OUTBOX_PRIORITY = case(
    (col(Outbox.kind) == "escalation", 0),
    (col(Outbox.kind) == "card", 1),
    (col(Outbox.kind).in_(("reminder", "late")), 2),
    else_=3,
)


def claim_outbox(session: Session, *, owner: str, now: datetime, lease: timedelta, limit: int) -> list[Outbox]:
    """Notifications due for delivery, escalations first, then oldest first."""
    where = [col(Outbox.status) == "pending", col(Outbox.next_attempt_at) <= now]
    order = [OUTBOX_PRIORITY, col(Outbox.id)]
    return _claim(session, Outbox, where=where, order_by=order, owner=owner, now=now, lease=lease, limit=limit)


def release(session: Session, model: Any, ids: Sequence[int], *, owner: str) -> None:
    """Give back rows this worker claimed but will not work on (shutdown)."""
    if ids:
        session.execute(
            update(model)
            .where(col(model.id).in_(list(ids)), col(model.lease_owner) == owner)
            .values(lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )


def hold_job(session: Session, *, name: str, owner: str, now: datetime, lease: timedelta) -> bool:
    """Take (or keep) the lease on a singleton job; False while another process holds it."""
    if session.get(JobLease, name) is None:
        table = JobLease.__table__  # type: ignore[attr-defined]
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        session.execute(insert(table).values(name=name, owner=None, until=None).on_conflict_do_nothing())
    result = session.execute(
        update(JobLease)
        .where(
            col(JobLease.name) == name,
            or_(col(JobLease.until).is_(None), col(JobLease.until) < now, col(JobLease.owner) == owner),
        )
        .values(owner=owner, until=now + lease)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))
