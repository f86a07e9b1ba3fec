"""Polling bookkeeping: what one poll's outcome does to its source row (state, health, the
failing and recovered alerts, silence) and to the items it brought (the pipeline).

Polling state lives on the source rows (ETag, Last-Modified, cursor, next check, error counter,
lease), never in timers; `handlers.poller` runs the passes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from core.config import AccountConfig, Config
from core.errors import ErrorKind, PlatformError
from handlers.pipeline import ingest
from handlers.triage import Classifier, Verdict
from monitors.base import FetchResult, SourceState
from storage.models import Item, Source
from storage.queries import enqueue

log = logging.getLogger(__name__)

ALERT_AFTER_ERRORS = 3  # one alert per failing spell, not one per poll
MAX_BACKOFF = timedelta(hours=6)
# Auth and permission problems need a person, not a faster retry.
SLOW_KINDS = {ErrorKind.AUTH, ErrorKind.FORBIDDEN, ErrorKind.NOT_FOUND}


@dataclass(slots=True)
class PollSummary:
    sources: int = 0
    not_modified: int = 0
    failed: int = 0
    items_seen: int = 0
    items_stored: int = 0
    escalated: int = 0
    skipped: int = 0  # entries with nothing to identify or read (often image-only posts)
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


def backoff(poll_every: timedelta, errors: int, retry_in_s: float | None, kind: ErrorKind) -> timedelta:
    """Exponential backoff from the poll interval, honouring Retry-After, capped."""
    if retry_in_s is not None:
        return max(timedelta(seconds=retry_in_s), timedelta(seconds=30))
    base = poll_every * (4 if kind in SLOW_KINDS else 1)
    return min(MAX_BACKOFF, base * 2 ** min(errors - 1, 8))


def quiet(source: Source, outcome: FetchResult, state: SourceState, *, account: AccountConfig, now: datetime) -> bool:
    """Nothing to store and nothing to say: a success with no items, unchanged state, no alert to
    lift and no chance of a silence alert. Such sources are recorded together by `record_quiet`."""
    if outcome.items or outcome.skipped or source.health_alerted or source.consecutive_errors:
        return False
    if (state.etag, state.last_modified, state.cursor) != (source.etag, source.last_modified, source.cursor):
        return False
    limit = account.silent_after if account.silent_after is not None else MIN_SILENCE
    return source.last_new_item_at is None or now - source.last_new_item_at <= limit


def record_quiet(session: Session, *, config: Config, sources: list[Source], now: datetime) -> None:
    """One UPDATE per poll interval for every quiet success in a batch (no read-modify-write per row)."""
    by_every: dict[timedelta, list[int]] = {}
    for source in sources:
        assert source.id is not None
        by_every.setdefault(config.account(source.account_id).poll_every, []).append(source.id)
    for every, ids in by_every.items():
        session.execute(
            update(Source)
            .where(col(Source.id).in_(ids))
            .values(
                last_polled_at=now,
                first_polled_at=func.coalesce(col(Source.first_polled_at), now),
                last_success_at=now,
                next_check_at=now + every,
                lease_owner=None,
                lease_until=None,
            )
            .execution_options(synchronize_session=False)
        )


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
    """Record one source's poll: store its items, update its state and health, clear its lease."""
    source = session.get(Source, source_id)
    assert source is not None
    account = config.account(source.account_id)
    first_poll = source.first_polled_at is None
    source.last_polled_at = now
    source.lease_owner, source.lease_until = None, None
    if first_poll:
        source.first_polled_at = now
    if isinstance(outcome, PlatformError):
        _record_failure(
            session,
            source=source,
            account_school=config.school_of(account).id,
            error=outcome,
            poll_every=account.poll_every,
            now=now,
        )
        summary.failed += 1
        summary.errors.append(str(outcome))
        return
    stats = ingest(
        session,
        config=config,
        account=account,
        items=outcome.items,
        now=now,
        source_id=source.id,
        not_before=source.first_polled_at,
        classifier=classifier,
        verdicts=verdicts,
    )
    for warning in outcome.warnings:
        log.info("feed_warning source=%s account=%s warning=%r", source.location, account.id, warning)
    if outcome.skipped:
        summary.skipped += outcome.skipped
        log.info(
            "entries_skipped source=%s account=%s skipped=%d reason=%r",
            source.location,
            account.id,
            outcome.skipped,
            "no id, link or text (often an image-only post)",
        )
    if source.health_alerted:
        enqueue(
            session,
            dedupe_key=f"health-ok:{source.id}:{now.isoformat()}",
            school_id=config.school_of(account).id,
            kind="health",
            audience="moderators",
            now=now,
            payload={
                "headline": "Source recovered",
                "text": f"{source.label or source.location} is working again.",
                "account": account.id,
            },
        )
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


MIN_SILENCE = timedelta(days=2)
SILENCE_HISTORY = 20


def silence_threshold(session: Session, *, source: Source, configured: timedelta | None) -> timedelta | None:
    """How long without anything new is unusual for this source: the configured time, or three times
    its usual gap between arrivals (at least two days); None until there is enough history to judge."""
    if configured is not None:
        return configured
    arrivals = sorted(
        {
            i.received_at
            for i in session.scalars(
                select(Item).where(col(Item.source_id) == source.id).order_by(col(Item.received_at).desc()).limit(200)
            )
        },
        reverse=True,
    )[:SILENCE_HISTORY]
    if len(arrivals) < 5:
        return None
    gaps = sorted(a - b for a, b in pairwise(arrivals))
    return max(MIN_SILENCE, 3 * gaps[len(gaps) // 2])


def _check_silence(session: Session, *, source: Source, account: AccountConfig, school_id: str, now: datetime) -> None:
    if source.last_new_item_at is None:
        return
    threshold = silence_threshold(session, source=source, configured=account.silent_after)
    if threshold is None or now - source.last_new_item_at <= threshold:
        return
    quiet = now - source.last_new_item_at
    enqueue(
        session,
        dedupe_key=f"silent:{source.id}:{source.last_new_item_at.isoformat()}",
        school_id=school_id,
        kind="health",
        audience="moderators",
        now=now,
        payload={
            "headline": "A monitored source has gone quiet",
            "text": f"{source.label or source.location}: nothing new for {quiet.days} day(s), longer than "
            f"usual ({threshold.days} day(s)). Check the account is still connected and public.",
            "account": source.account_id,
        },
    )


def _record_failure(
    session: Session,
    *,
    source: Source,
    account_school: str,
    error: PlatformError,
    poll_every: timedelta,
    now: datetime,
) -> None:
    source.consecutive_errors += 1
    source.last_error, source.last_error_kind = str(error)[:2000], error.kind.value
    wait = backoff(poll_every, source.consecutive_errors, error.retry_in_s, error.kind)
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
        enqueue(
            session,
            dedupe_key=f"health:{source.id}:{now.isoformat()}",
            school_id=account_school,
            kind="health",
            audience="moderators",
            now=now,
            payload={
                "headline": "A monitored source is failing",
                "text": f"{source.label or source.location}: {error} (failed {source.consecutive_errors} "
                f"time(s); retrying in {int(wait.total_seconds() // 60)} min)",
                "account": source.account_id,
            },
        )
    session.add(source)
