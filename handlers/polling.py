"""One polling pass: read the sources to poll (those due, every enabled one, or exactly the ids
a worker claimed), fetch them with bounded concurrency and an overall deadline each, triage the
new items of a whole batch of feeds at once, and record the batch in one short transaction
(`handlers.poll_state`). No transaction is open while anything is fetched or triaged.

Polling state lives on the source rows (ETag, Last-Modified, cursor, next check, error
counter), never in timers. Connectors are built once per pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import Engine, or_, select
from sqlmodel import col

from core.config import AccountConfig, Config, Watch
from core.domain import NewItem
from core.errors import ErrorKind, PlatformError
from handlers.poll_state import (
    DUE_COLUMNS,
    Due,
    PollSummary,
    backoff,
    is_quiet,
    record,
    record_failure,
    record_quiet,
    silent_for,
)
from handlers.triage import Classifier, Verdict, default_classifier
from monitors.base import FetchResult, Source, SourceState
from monitors.fetch import connector, fetch_one
from storage.db import session_scope
from storage.models import Source as SourceRow
from storage.queries import known_external_ids
from storage.types import utcnow

__all__ = ["PollSummary", "backoff", "poll_once", "silent_for"]

log = logging.getLogger(__name__)

WRITE_BATCH = 128  # outcomes triaged together and recorded in one transaction
# Triage and recording run on the poller's own threads, never the event loop's shared default
# pool: that pool also serves every chat request (Slack wants its answer within 3 s), the outbox's
# reads and commits and the webhook claims, and long poll batches queued there would hold them up.
# Four: two batches past fetching at once (hallmonitor.workers.WRITING), each triaging one group
# while recording the one before.
WRITE_THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="poll-write")
Outcome = tuple[Due, FetchResult | PlatformError, SourceState]
Verdicts = dict[str, dict[str, Verdict]]  # account id -> external id -> verdict


def _load(engine: Engine, *, now: datetime, all_sources: bool, source_ids: Sequence[int] | None) -> list[Due]:
    """The sources this pass polls, however many: exactly the enabled ones of `source_ids` when
    given (a worker's claim, due or not), else every enabled one that is due (or every one)."""
    with session_scope(engine) as session:
        if source_ids is not None:
            ids = list(dict.fromkeys(source_ids))
            rows: list[Any] = []
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                wanted = col(SourceRow.id).in_(chunk), col(SourceRow.enabled).is_(True)
                rows += session.execute(select(*DUE_COLUMNS).where(*wanted)).all()
        else:
            stmt = select(*DUE_COLUMNS).where(col(SourceRow.enabled).is_(True))
            if not all_sources:
                stmt = stmt.where(or_(col(SourceRow.next_check_at).is_(None), col(SourceRow.next_check_at) <= now))
            order = (col(SourceRow.next_check_at).asc().nulls_first(), col(SourceRow.id))
            rows = list(session.execute(stmt.order_by(*order)).all())
    return [Due(*row) for row in rows]


class Connectors:
    """Each watch target's connector, built once per pass."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.base_dir = str(config.path.parent) if config.path else None
        self.built: dict[tuple[str, str, str, str | None], tuple[AccountConfig, Watch, Source]] = {}

    def get(self, due: Due) -> tuple[AccountConfig, Watch, Source]:
        key = (due.account_id, due.location, due.kind, due.label)
        if key not in self.built:
            account = self.config.account(due.account_id)
            watch = Watch.model_validate({"url": due.location, "kind": due.kind, "label": due.label})
            self.built[key] = (account, watch, connector(account, watch, base_dir=self.base_dir))
        return self.built[key]


async def _fetch(due: Due, connectors: Connectors, client: httpx.AsyncClient, deadline_s: float) -> Outcome:
    state = SourceState(etag=due.etag, last_modified=due.last_modified, cursor=due.cursor)
    try:
        account, watch, impl = connectors.get(due)
    except Exception as exc:  # a stored location its platform no longer accepts
        return due, PlatformError(ErrorKind.BAD_PAYLOAD, f"{due.what}: cannot be polled ({exc})"), state
    outcome = await fetch_one(
        client, account=account, watch=watch, state=state, base_dir=None, deadline_s=deadline_s, impl=impl
    )
    return due, outcome, state


def _triage(
    engine: Engine, config: Config, classifier: Classifier | None, batch: list[Outcome]
) -> tuple[dict[int, int], Verdicts]:
    """How many items of each source are not stored yet, and their verdicts: one read per account,
    then one classify_many per school for the whole batch, with no transaction open meanwhile."""
    wanted: dict[str, dict[str, NewItem]] = {}
    for due, outcome, _state in batch:
        if isinstance(outcome, FetchResult) and outcome.items:
            wanted.setdefault(due.account_id, {}).update({n.external_id: n for n in outcome.items})
    if not wanted:
        return {}, {}
    with session_scope(engine) as session:
        for account_id, items in wanted.items():
            for external_id in known_external_ids(session, account_id=account_id, external_ids=list(items)):
                del items[external_id]
        if any(wanted.values()):
            classifier = classifier or default_classifier()
            classifier.refresh_labels(session)
    fresh = {
        due.id: len({n.external_id for n in outcome.items} & wanted.get(due.account_id, {}).keys())
        for due, outcome, _state in batch
        if isinstance(outcome, FetchResult)
    }
    by_school: dict[str, list[tuple[str, NewItem]]] = {}
    for account_id, items in wanted.items():
        school = config.school_of(config.account(account_id)).id
        # the school's own posts get their verdict in ingest (never escalated nor replied to)
        by_school.setdefault(school, []).extend((account_id, n) for n in items.values() if not n.by_school)
    verdicts: Verdicts = {}
    for school, pairs in by_school.items():
        assert classifier is not None
        found = classifier.classify_many([n.text for _a, n in pairs], school=school)
        for (account_id, new), verdict in zip(pairs, found, strict=True):
            verdicts.setdefault(account_id, {})[new.external_id] = verdict
    return fresh, verdicts


def _note(due: Due, outcome: FetchResult, summary: PollSummary) -> None:
    """Count and log what a successful fetch says beyond its items."""
    summary.not_modified += outcome.not_modified
    for warning in outcome.warnings:
        log.info("feed_warning source=%s account=%s warning=%r", due.location, due.account_id, warning)
    if outcome.skipped:
        summary.skipped += outcome.skipped
        log.info(
            "entries_skipped source=%s account=%s skipped=%d reason=%r",
            due.location,
            due.account_id,
            outcome.skipped,
            "no id, link or text to read (often an image-only post)",
        )


@dataclass(slots=True)
class Prepared:
    """A triaged batch, ready to record: quiet successes, the rest, and the verdicts."""

    quiet: list[tuple[Due, SourceState]] = field(default_factory=list)
    busy: list[Outcome] = field(default_factory=list)
    verdicts: Verdicts = field(default_factory=dict)
    summary: PollSummary = field(default_factory=PollSummary)


def _prepare(
    engine: Engine, config: Config, classifier: Classifier | None, batch: list[Outcome], now: datetime
) -> Prepared:
    """Triage a batch (no transaction open) and sort it into quiet successes and the rest."""
    ready = Prepared()
    try:
        fresh, ready.verdicts = _triage(engine, config, classifier, batch)
    except Exception:  # triage is retried per source inside the transaction; nothing is lost
        log.exception("triage_batch_failed sources=%d", len(batch))
        fresh = {due.id: 1 for due, _o, _s in batch}
    for due, outcome, state in batch:
        if isinstance(outcome, FetchResult):
            _note(due, outcome, ready.summary)
            account = config.account(due.account_id)
            if is_quiet(due, fresh=fresh.get(due.id, 0), account=account, now=now):
                ready.quiet.append((due, state))
                ready.summary.items_seen += len(outcome.items)
                continue
        ready.busy.append((due, outcome, state))
    return ready


def _record_batch(
    engine: Engine, config: Config, classifier: Classifier | None, ready: Prepared, now: datetime
) -> PollSummary:
    """Record a prepared batch: the quiet successes in one statement, the rest one by one."""
    _commit(engine, config, classifier, ready.quiet, ready.busy, ready.verdicts, now, ready.summary)
    return ready.summary


def _write(
    engine: Engine, config: Config, classifier: Classifier | None, batch: list[Outcome], now: datetime
) -> PollSummary:
    """Triage a batch, then record it."""
    return _record_batch(engine, config, classifier, _prepare(engine, config, classifier, batch, now), now)


def _commit(
    engine: Engine,
    config: Config,
    classifier: Classifier | None,
    quiet: list[tuple[Due, SourceState]],
    busy: list[Outcome],
    verdicts: Verdicts,
    now: datetime,
    summary: PollSummary,
) -> None:
    """One transaction for the batch; if anything in it fails, each source again in its own, so
    one bad source cannot hold back the others (and is itself recorded as failing)."""
    try:
        partial = PollSummary()
        with session_scope(engine) as session:
            record_quiet(session, config=config, quiet=quiet, now=now)
            for due, outcome, state in busy:
                record(
                    session,
                    config=config,
                    source_id=due.id,
                    outcome=outcome,
                    state=state,
                    now=now,
                    classifier=classifier,
                    summary=partial,
                    verdicts=verdicts.get(due.account_id),
                )
        summary.merge(partial)
        return
    except Exception as exc:
        if len(quiet) + len(busy) == 1:
            due = quiet[0][0] if quiet else busy[0][0]
            _unrecordable(engine, config, due, exc, now, summary)
            return
    for one in quiet:
        _commit(engine, config, classifier, [one], [], verdicts, now, summary)
    for other in busy:
        _commit(engine, config, classifier, [], [other], verdicts, now, summary)


def _unrecordable(
    engine: Engine, config: Config, due: Due, exc: Exception, now: datetime, summary: PollSummary
) -> None:
    """A source whose outcome could not be stored: counted as failing (so /healthz and the
    moderators hear of it), its state left as it was, so the next poll fetches it all again."""
    log.error("record_failed source=%s account=%s", due.location, due.account_id, exc_info=exc)
    error = PlatformError(ErrorKind.BAD_PAYLOAD, f"{due.what}: what it sent could not be stored ({exc!r})"[:500])
    summary.failed += 1
    summary.errors.append(str(error))
    try:
        with session_scope(engine) as session:
            source = session.get(SourceRow, due.id)
            if source is not None:
                record_failure(session, source=source, config=config, error=error, now=now)
    except Exception:
        log.exception("record_failure_failed source=%s", due.location)


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
    fetched: Callable[[], None] | None = None,
) -> PollSummary:
    """Poll once every due source (every enabled one with `all_sources`, exactly `source_ids`
    when given), however many there are; stored items are never touched by failures. `fetched`
    is called once every source has been fetched (what is left is triage and recording)."""
    started, now = time.perf_counter(), now or utcnow()
    known = {a.id for a in config.accounts}
    loaded = await asyncio.to_thread(_load, engine, now=now, all_sources=all_sources, source_ids=source_ids)
    due = [d for d in loaded if d.account_id in known]
    summary = PollSummary(sources=len(due))
    results: asyncio.Queue[Outcome | None] = asyncio.Queue()
    writing = asyncio.create_task(_writer(results, engine, config, classifier, now, summary))
    try:
        await _fetch_all(due, Connectors(config), client, config, concurrency, results)
    finally:
        if fetched is not None:
            fetched()
        await results.put(None)
        await writing
    summary.seconds = time.perf_counter() - started
    if summary.sources:
        log.info(summary.line())
    return summary


async def _fetch_all(
    due: list[Due],
    connectors: Connectors,
    client: httpx.AsyncClient,
    config: Config,
    concurrency: int | None,
    results: asyncio.Queue[Outcome | None],
) -> None:
    """`concurrency` fetchers (at most, and by default, the configured max_concurrent_polls) take
    the next source as each finishes; one slow source holds one fetcher until its deadline, no more."""
    deadline_s = config.service.http_timeout.total_seconds()
    queue: Iterator[Due] = iter(due)

    async def fetcher() -> None:
        for one in queue:
            await results.put(await _fetch(one, connectors, client, deadline_s))

    most = config.service.max_concurrent_polls  # the shared client's pool is sized to it
    width = min(concurrency or most, most, max(1, len(due)))
    await asyncio.gather(*(fetcher() for _ in range(width)))


async def _writer(
    results: asyncio.Queue[Outcome | None],
    engine: Engine,
    config: Config,
    classifier: Classifier | None,
    now: datetime,
    summary: PollSummary,
) -> None:
    """One writer: whatever has arrived (up to WRITE_BATCH) per batch, off the event loop, so
    fetching goes on meanwhile. Two stages: batch N is recorded while batch N+1 is triaged;
    batches are recorded one at a time, in order."""
    recording: asyncio.Future[PollSummary] | None = None
    done = False
    while not done:
        batch = [await results.get()]
        while not results.empty() and len(batch) < WRITE_BATCH:
            batch.append(results.get_nowait())
        done = batch[-1] is None
        outcomes = [b for b in batch if b is not None]
        if not outcomes:
            continue
        loop = asyncio.get_running_loop()
        ready = await loop.run_in_executor(WRITE_THREADS, _prepare, engine, config, classifier, outcomes, now)
        if recording is not None:
            summary.merge(await recording)
        recording = asyncio.ensure_future(
            loop.run_in_executor(WRITE_THREADS, _record_batch, engine, config, classifier, ready, now)
        )
    if recording is not None:
        summary.merge(await recording)
