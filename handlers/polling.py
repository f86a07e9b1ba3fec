"""One polling pass: pick due sources from the database, fetch them (monitors.fetch) with
bounded concurrency, hand new items to the pipeline, record state and health.

Polling state lives on the source rows (ETag, Last-Modified, cursor, next
check, error counter), never in timers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

import httpx
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from core.config import AccountConfig, Config, Watch
from core.errors import ErrorKind, PlatformError
from handlers.pipeline import ingest
from handlers.triage import Classifier
from monitors.base import FetchResult, SourceState
from monitors.fetch import fetch_one
from storage.db import session_scope
from storage.models import Item, Source
from storage.queries import due_sources, enqueue
from storage.types import utcnow

log = logging.getLogger(__name__)

WRITE_BATCH = 64
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
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def merge(self, other: PollSummary) -> None:
        self.not_modified += other.not_modified
        self.failed += other.failed
        self.items_seen += other.items_seen
        self.items_stored += other.items_stored
        self.escalated += other.escalated
        self.errors += other.errors

    def line(self) -> str:
        return (
            f"poll sources={self.sources} not_modified={self.not_modified} failed={self.failed} "
            f"items_seen={self.items_seen} items_new={self.items_stored} escalated={self.escalated} "
            f"seconds={self.seconds:.2f}"
        )


def backoff(poll_every: timedelta, errors: int, retry_in_s: float | None, kind: ErrorKind) -> timedelta:
    """Exponential backoff from the poll interval, honouring Retry-After, capped."""
    if retry_in_s is not None:
        return max(timedelta(seconds=retry_in_s), timedelta(seconds=30))
    base = poll_every * (4 if kind in SLOW_KINDS else 1)
    return min(MAX_BACKOFF, base * 2 ** min(errors - 1, 8))


async def _fetch(
    source: Source, config: Config, client: httpx.AsyncClient
) -> tuple[FetchResult | PlatformError, SourceState]:
    account = config.account(source.account_id)
    watch = Watch.model_validate({"url": source.location, "kind": source.kind, "label": source.label})
    state = SourceState(etag=source.etag, last_modified=source.last_modified, cursor=source.cursor)
    base_dir = str(config.path.parent) if config.path else None
    return await fetch_one(client, account=account, watch=watch, state=state, base_dir=base_dir), state


def _record(
    session: Session,
    *,
    config: Config,
    source_id: int,
    outcome: FetchResult | PlatformError,
    state: SourceState,
    now: datetime,
    classifier: Classifier | None,
    summary: PollSummary,
) -> None:
    source = session.get(Source, source_id)
    assert source is not None
    account = config.account(source.account_id)
    first_poll = source.first_polled_at is None
    source.last_polled_at = now
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
    )
    for warning in outcome.warnings:
        log.info("feed_warning source=%s account=%s warning=%r", source.location, account.id, warning)
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
    summary.not_modified += outcome.not_modified
    summary.items_seen += stats.seen
    summary.items_stored += stats.stored
    summary.escalated += stats.escalated
    if stats.backfilled:
        log.info("backfill source=%s account=%s items_not_carded=%d", source.location, account.id, stats.backfilled)


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


def _write_batch(
    engine: Engine,
    config: Config,
    batch: list[tuple[int, FetchResult | PlatformError, SourceState]],
    now: datetime,
    classifier: Classifier | None,
    summary: PollSummary,
) -> None:
    """Record a batch in one transaction; if anything in it fails, redo it one
    source per transaction so one bad source cannot hold back the others."""
    try:
        with session_scope(engine) as session:
            partial = PollSummary()
            for source_id, outcome, state in batch:
                _record(
                    session,
                    config=config,
                    source_id=source_id,
                    outcome=outcome,
                    state=state,
                    now=now,
                    classifier=classifier,
                    summary=partial,
                )
        summary.merge(partial)
        return
    except Exception:
        if len(batch) == 1:
            log.exception("record_failed source_id=%s", batch[0][0])
            summary.failed += 1
            return
    for one in batch:
        _write_batch(engine, config, [one], now, classifier, summary)


async def poll_once(
    engine: Engine,
    *,
    config: Config,
    client: httpx.AsyncClient,
    now: datetime | None = None,
    all_sources: bool = False,
    concurrency: int | None = None,
    classifier: Classifier | None = None,
    source_ids: Sequence[int] | None = None,
) -> PollSummary:
    """Poll every due source once (exactly the enabled ones in `source_ids` when given: the
    service's poll worker has claimed them); stored items are never touched by failures."""
    started = time.perf_counter()
    now = now or utcnow()
    summary = PollSummary()
    with session_scope(engine) as session:
        if source_ids is not None:
            chosen = select(Source).where(col(Source.id).in_(list(source_ids)), col(Source.enabled).is_(True))
            due = [(s.id, s) for s in session.scalars(chosen.order_by(col(Source.id)))]
        else:
            due = [(s.id, s) for s in due_sources(session, now=now, all_enabled=all_sources)]
    known = {a.id for a in config.accounts}
    due = [(sid, s) for sid, s in due if s.account_id in known]
    summary.sources = len(due)
    gate = asyncio.Semaphore(concurrency or config.service.max_concurrent_polls)
    results: asyncio.Queue[tuple[int, FetchResult | PlatformError, SourceState] | None] = asyncio.Queue()

    async def run(source_id: int, source: Source) -> None:
        async with gate:
            outcome, state = await _fetch(source, config, client)
        await results.put((source_id, outcome, state))

    async def writer() -> None:
        """One writer: batches of results per transaction, off the event loop,
        so fetching goes on while the database works."""
        done = False
        while not done:
            batch = [await results.get()]
            while not results.empty() and len(batch) < WRITE_BATCH:
                batch.append(results.get_nowait())
            done = batch[-1] is None
            ready = [b for b in batch if b is not None]
            if ready:
                await asyncio.to_thread(_write_batch, engine, config, ready, now, classifier, summary)

    writing = asyncio.create_task(writer())
    await asyncio.gather(*(run(sid, s) for sid, s in due if sid is not None))
    await results.put(None)
    await writing
    summary.seconds = time.perf_counter() - started
    if summary.sources:
        log.info(summary.line())
    return summary
