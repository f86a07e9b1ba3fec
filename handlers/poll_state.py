"""Polling bookkeeping: what one poll's outcome does to its source row (state, health, the
failing and recovered alerts, silence) and to the items it brought (the pipeline).

A quiet success (nothing new, no alert to lift, no silence to check) is recorded with the
other quiet ones of its batch in one executemany UPDATE, without reading the rows back;
everything else goes through `record`, one source at a time. `handlers.polling` runs passes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import Table, bindparam, func, select, update
from sqlmodel import Session, col

from core.config import AccountConfig, Config
from core.errors import ErrorKind, PlatformError
from handlers.health_notes import HealthNote, tell_moderators
from handlers.pipeline import ingest
from handlers.triage import Classifier, Verdict
from monitors.base import FetchResult, SourceState
from storage.models import Item, Source
from storage.types import UTCDateTime

log = logging.getLogger(__name__)

ALERT_AFTER_ERRORS = 3  # one alert per failing spell, not one per poll
MAX_BACKOFF = timedelta(hours=6)
# Auth and permission problems need a person, not a faster retry.
SLOW_KINDS = {ErrorKind.AUTH, ErrorKind.FORBIDDEN, ErrorKind.NOT_FOUND}
MIN_SILENCE = timedelta(days=2)
SILENCE_HISTORY = 20


@dataclass(slots=True)
class PollSummary:
    sources: int = 0
    not_modified: int = 0
    failed: int = 0
    items_seen: int = 0
    items_stored: int = 0
    escalated: int = 0
    skipped: int = 0  # entries with nothing to identify or read (often image-only posts); logged
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def merge(self, other: PollSummary) -> None:
        self.not_modified += other.not_modified
        self.failed += other.failed
        self.items_seen += other.items_seen
        self.items_stored += other.items_stored
        self.escalated += other.escalated
        self.skipped += other.skipped
        self.errors += other.errors

    def line(self) -> str:
        return (
            f"poll sources={self.sources} not_modified={self.not_modified} failed={self.failed} "
            f"items_seen={self.items_seen} items_new={self.items_stored} escalated={self.escalated} "
            f"skipped={self.skipped} seconds={self.seconds:.2f}"
        )


@dataclass(frozen=True, slots=True)
class Due:
    """A source as the pass read it before fetching (plain values, no ORM object)."""

    id: int
    account_id: str
    location: str
    kind: str
    label: str | None
    etag: str | None
    last_modified: str | None
    cursor: str | None
    consecutive_errors: int
    health_alerted: bool
    last_new_item_at: datetime | None

    @property
    def what(self) -> str:
        return self.label or self.location


DUE_COLUMNS = (
    col(Source.id),
    col(Source.account_id),
    col(Source.location),
    col(Source.kind),
    col(Source.label),
    col(Source.etag),
    col(Source.last_modified),
    col(Source.cursor),
    col(Source.consecutive_errors),
    col(Source.health_alerted),
    col(Source.last_new_item_at),
)


def backoff(poll_every: timedelta, errors: int, retry_in_s: float | None, kind: ErrorKind) -> timedelta:
    """Exponential backoff from the poll interval, honouring Retry-After, capped."""
    if retry_in_s is not None:
        return max(timedelta(seconds=retry_in_s), timedelta(seconds=30))
    base = poll_every * (4 if kind in SLOW_KINDS else 1)
    return min(MAX_BACKOFF, base * 2 ** min(errors - 1, 8))


def is_quiet(due: Due, *, fresh: int, account: AccountConfig, now: datetime) -> bool:
    """A success that brought nothing new, with no failing spell to end and no chance of a
    silence alert (the silence threshold is the configured one, or at least MIN_SILENCE)."""
    if fresh or due.health_alerted or due.consecutive_errors:
        return False
    limit = account.silent_after if account.silent_after is not None else MIN_SILENCE
    return due.last_new_item_at is None or now - due.last_new_item_at <= limit


_SOURCES: Table = Source.__table__  # type: ignore[attr-defined]
_WHEN = UTCDateTime()
_QUIET = (
    update(_SOURCES)
    .where(_SOURCES.c.id == bindparam("b_id"))
    .values(
        last_polled_at=bindparam("b_now", type_=_WHEN),
        first_polled_at=func.coalesce(_SOURCES.c.first_polled_at, bindparam("b_first", type_=_WHEN)),
        last_success_at=bindparam("b_success", type_=_WHEN),
        next_check_at=bindparam("b_next", type_=_WHEN),
        etag=bindparam("b_etag"),
        last_modified=bindparam("b_last_modified"),
        cursor=bindparam("b_cursor"),
    )
)


def record_quiet(session: Session, *, config: Config, quiet: list[tuple[Due, SourceState]], now: datetime) -> None:
    """One executemany UPDATE for every quiet success of a batch: no row is read back."""
    if not quiet:
        return
    rows: list[dict[str, Any]] = [
        {
            "b_id": due.id,
            "b_now": now,
            "b_first": now,
            "b_success": now,
            "b_next": now + config.account(due.account_id).poll_every,
            "b_etag": state.etag,
            "b_last_modified": state.last_modified,
            "b_cursor": state.cursor,
        }
        for due, state in quiet
    ]
    session.connection().execute(_QUIET, rows)


def record(
    session: Session,
    *,
    config: Config,
    source_id: int,
    outcome: FetchResult | PlatformError,
    state: SourceState,
    now: datetime,
    classifier: Classifier | None,
    summary: PollSummary,
    verdicts: Mapping[str, Verdict] | None = None,
) -> None:
    """Record one source's poll: store its items (triaged beforehand when `verdicts` are given),
    update its state and health, raise or lift its alerts."""
    source = session.get(Source, source_id)
    assert source is not None
    account = config.account(source.account_id)
    source.last_polled_at = now
    if source.first_polled_at is None:
        source.first_polled_at = now
    if isinstance(outcome, PlatformError):
        record_failure(session, source=source, config=config, error=outcome, now=now)
        summary.failed += 1
        summary.errors.append(str(outcome))
        return
    backlog = account.backfill is not None and source.last_success_at is None  # the first good poll
    stats = ingest(
        session,
        config=config,
        account=account,
        items=outcome.items,
        now=now,
        source_id=source.id,
        not_before=source.first_polled_at,
        classifier=classifier,
        backfill_before=now - account.backfill if backlog and account.backfill else None,
        verdicts=verdicts,
    )
    if source.health_alerted:
        _recovered(session, source=source, config=config, account=account, now=now)
    source.etag, source.last_modified, source.cursor = state.etag, state.last_modified, state.cursor
    source.consecutive_errors, source.last_error, source.last_error_kind = 0, None, None
    source.health_alerted = False
    source.last_success_at = now
    if stats.stored:
        source.last_new_item_at = now
    else:
        _check_silence(session, source=source, account=account, school_id=config.school_of(account).id, now=now)
    source.next_check_at = now + account.poll_every
    session.add(source)
    summary.items_seen += stats.seen
    summary.items_stored += stats.stored
    summary.escalated += stats.escalated
    if stats.backfilled:
        log.info("backfill source=%s account=%s items_not_carded=%d", source.location, account.id, stats.backfilled)


def _health(
    session: Session, *, source: Source, school_id: str, now: datetime, key: str, headline: str, text: str
) -> None:
    """Queue one health note about `source` for the school's moderators (once per `key`)."""
    note = HealthNote(headline=headline, text=text, account=source.account_id)
    tell_moderators(session, school_id=school_id, key=key, note=note, now=now)


def _recovered(session: Session, *, source: Source, config: Config, account: AccountConfig, now: datetime) -> None:
    _health(
        session,
        source=source,
        school_id=config.school_of(account).id,
        now=now,
        key=f"health-ok:{source.id}:{now.isoformat()}",
        headline="Source recovered",
        text=f"{source.label or source.location} is working again.",
    )


def silence_threshold(session: Session, *, source: Source, configured: timedelta | None) -> timedelta | None:
    """How long without anything new is unusual for this source: the configured time, or three times
    its usual gap between arrivals (at least two days); None until there is enough history to judge."""
    if configured is not None:
        return configured
    arrivals = sorted(
        set(
            session.scalars(
                select(col(Item.received_at))
                .where(col(Item.source_id) == source.id)
                .order_by(col(Item.received_at).desc())
                .limit(200)
            )
        ),
        reverse=True,
    )[:SILENCE_HISTORY]
    if len(arrivals) < 5:
        return None
    gaps = sorted(a - b for a, b in pairwise(arrivals))
    return max(MIN_SILENCE, 3 * gaps[len(gaps) // 2])


def silent_for(
    session: Session, *, source: Source, configured: timedelta | None, now: datetime
) -> tuple[timedelta, timedelta] | None:
    """(how long nothing new has come, the threshold it is over) when the source has gone quiet for
    longer than usual, else None. The history is read only when the quiet spell is long enough to
    matter: the threshold is never under the configured time, or MIN_SILENCE, so a source that had
    something new recently costs no query (every successful poll and every digest asks)."""
    if source.last_new_item_at is None:
        return None
    quiet = now - source.last_new_item_at
    if quiet <= (configured if configured is not None else MIN_SILENCE):
        return None
    threshold = silence_threshold(session, source=source, configured=configured)
    if threshold is None or quiet <= threshold:
        return None
    return quiet, threshold


def _check_silence(session: Session, *, source: Source, account: AccountConfig, school_id: str, now: datetime) -> None:
    silent = silent_for(session, source=source, configured=account.silent_after, now=now)
    if silent is None or source.last_new_item_at is None:
        return
    quiet, threshold = silent
    _health(
        session,
        source=source,
        school_id=school_id,
        now=now,
        key=f"silent:{source.id}:{source.last_new_item_at.isoformat()}",
        headline="A monitored source has gone quiet",
        text=f"{source.label or source.location}: nothing new for {quiet.days} day(s), longer than "
        f"usual ({threshold.days} day(s)). Check the account is still connected and public.",
    )


def record_failure(session: Session, *, source: Source, config: Config, error: PlatformError, now: datetime) -> None:
    """Count a failed poll on the source (so /healthz shows it failing), back off, and alert the
    moderators once per failing spell (at once for a refused token)."""
    account = config.account(source.account_id)
    source.last_polled_at = now
    source.consecutive_errors += 1
    source.last_error, source.last_error_kind = str(error)[:2000], error.kind.value
    wait = backoff(account.poll_every, source.consecutive_errors, error.retry_in_s, error.kind)
    source.next_check_at = now + wait
    log.warning(
        "poll_failed source=%s account=%s error_kind=%s errors=%d retry_in_s=%d error=%r",
        source.location,
        source.account_id,
        error.kind.value,
        source.consecutive_errors,
        wait.total_seconds(),
        str(error),
    )
    urgent = error.kind in (ErrorKind.AUTH, ErrorKind.FORBIDDEN)
    if not source.health_alerted and (urgent or source.consecutive_errors >= ALERT_AFTER_ERRORS):
        source.health_alerted = True
        _health(
            session,
            source=source,
            school_id=config.school_of(account).id,
            now=now,
            key=f"health:{source.id}:{now.isoformat()}",
            headline="A monitored source is failing",
            text=f"{source.label or source.location}: {error} (failed {source.consecutive_errors} "
            f"time(s); retrying in {int(wait.total_seconds() // 60)} min)",
        )
    session.add(source)
