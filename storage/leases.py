"""Claiming work with leases on our own rows (the way miniflux keeps polling state on its feeds).

A worker claims rows in one short transaction: one UPDATE sets `lease_owner` and `lease_until`
on rows that are due and not leased (or whose lease ran out). On Postgres the rows are picked by
a `SELECT ... FOR UPDATE SKIP LOCKED` inside that UPDATE, so two processes claiming at once take
disjoint rows and never wait on each other; on SQLite (one process) the single writer does the
same without the lock clause. The worker then works with no transaction open and clears the lease
when it records the result. A crashed worker's rows come back when their lease runs out.

`retrying()` runs a short transaction again when Postgres reports a deadlock or a serialization
failure (or SQLite stayed locked past its busy timeout), so neither reaches a caller.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine, case, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col

from storage.db import session_scope
from storage.models import Delivery, JobLease, Source, WebhookEvent

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
    values: dict[str, Any] | None = None,
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
        .values(lease_owner=owner, lease_until=now + lease, **(values or {}))
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
    exclude: Collection[int] = (),
) -> list[Source]:
    """Enabled sources whose next check has come (every enabled one with `all_enabled`), soonest
    first, none of `exclude`."""
    where: list[Any] = [col(Source.enabled).is_(True)]
    if exclude:
        where.append(col(Source.id).not_in(list(exclude)))
    if not all_enabled:
        where.append(or_(col(Source.next_check_at).is_(None), col(Source.next_check_at) <= now))
    order = [col(Source.next_check_at).asc().nulls_first(), col(Source.id)]
    return _claim(session, Source, where=where, order_by=order, owner=owner, now=now, lease=lease, limit=limit)


def claim_webhook_events(
    session: Session, *, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[WebhookEvent]:
    """Stored deliveries still pending (and past any retry backoff, kept in `lease_until`), oldest first."""
    where = [col(WebhookEvent.status) == "pending"]
    order = [col(WebhookEvent.id)]
    return _claim(session, WebhookEvent, where=where, order_by=order, owner=owner, now=now, lease=lease, limit=limit)


def claim_deliveries(
    session: Session,
    *,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    surfaces: Sequence[str],
    max_priority: int | None = None,
    item_id: int | None = None,
    updates_only: bool = False,
    maybe_sent_only: bool = False,
) -> list[Delivery]:
    """Deliveries due on these surfaces, lowest priority number first, then oldest: pending ones
    whose time has come, and `sending` ones whose worker's lease ran out (those come back with
    `maybe_sent`, so the message is looked for before it is sent again). Claimed ones are `sending`.
    `maybe_sent_only`: only those that may have gone (to be looked for together)."""
    table = Delivery.__table__  # type: ignore[attr-defined]
    due = or_(
        (col(Delivery.status) == "pending") & (col(Delivery.next_attempt_at) <= now),
        col(Delivery.status) == "sending",  # with a free lease only (see _claim): its worker is gone
    )
    where: list[Any] = [due, col(Delivery.surface).in_(list(surfaces))]
    if max_priority is not None:
        where.append(col(Delivery.priority) <= max_priority)
    if item_id is not None:
        where.append(col(Delivery.item_id) == item_id)
    if updates_only:
        where.append(col(Delivery.target).startswith("copy:"))
    if maybe_sent_only:
        where.append(or_(col(Delivery.maybe_sent).is_(True), col(Delivery.status) == "sending"))
    order = [col(Delivery.priority), col(Delivery.id)]
    # SET sees the old row: a delivery that was already `sending` may have reached its recipient.
    values = {"status": "sending", "maybe_sent": case((table.c.status == "sending", true()), else_=table.c.maybe_sent)}
    rows = _claim(
        session, Delivery, where=where, order_by=order, owner=owner, now=now, lease=lease, limit=limit, values=values
    )
    return sorted(rows, key=lambda d: (d.priority, d.id or 0))


def release(session: Session, model: Any, ids: Sequence[int], *, owner: str, **values: Any) -> None:
    """Give back rows this worker claimed and will not work on (shutdown), or has finished."""
    if ids:
        session.execute(
            update(model)
            .where(col(model.id).in_(list(ids)), col(model.lease_owner) == owner)
            .values(lease_owner=None, lease_until=None, **values)
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
