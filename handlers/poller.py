"""Polling passes: claim due sources with a lease, fetch them with bounded concurrency and an
overall deadline each, triage the new items of many feeds in one batch, and record the outcomes
in short transactions (handlers.polling). No transaction is open while anything is fetched.

Several processes can poll one Postgres database at once: each claims disjoint sources
(storage.leases), and a source claimed by a process that died is polled again once its lease
runs out. One slow source holds one slot until its deadline; the others keep going.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Engine, update
from sqlmodel import Session, col

from core.config import Config, Watch
from core.domain import NewItem
from core.errors import ErrorKind, PlatformError
from handlers.polling import PollSummary, quiet, record, record_quiet
from handlers.triage import Classifier, Verdict, default_classifier
from monitors.base import FetchResult, Source, SourceState
from monitors.registry import SOURCES
from storage import models
from storage.db import session_scope
from storage.leases import claim_sources, retrying, worker_id
from storage.queries import known_external_ids
from storage.types import utcnow

log = logging.getLogger(__name__)

WRITE_BATCH = 128  # outcomes recorded per transaction
Outcome = tuple[models.Source, FetchResult | PlatformError, SourceState]


@dataclass
class Poller:
    """Polls for one process. Connectors are built once per source and kept between passes."""

    engine: Engine
    config: Config
    classifier: Classifier | None = None
    owner: str = field(default_factory=worker_id)
    stopping: bool = False
    _connectors: dict[tuple[str, str, str, str | None], Source] = field(default_factory=dict)

    @property
    def lease(self) -> timedelta:
        """How long a claimed source stays ours: well past its fetch deadline."""
        return max(self.config.service.lease, self.config.service.http_timeout * 2)

    def connector(self, row: models.Source) -> Source:
        key = (row.account_id, row.location, row.kind, row.label)
        impl = self._connectors.get(key)
        if impl is None:
            account = self.config.account(row.account_id)
            watch = Watch.model_validate({"url": row.location, "kind": row.kind, "label": row.label})
            base_dir = str(self.config.path.parent) if self.config.path else None
            impl = self._connectors[key] = SOURCES[account.platform](account, watch, base_dir=base_dir)
        return impl

    async def fetch(self, client: httpx.AsyncClient, row: models.Source) -> Outcome:
        """One fetch under the overall deadline (the configured http_timeout); never raises."""
        state = SourceState(etag=row.etag, last_modified=row.last_modified, cursor=row.cursor)
        what = row.label or row.location
        deadline = self.config.service.http_timeout.total_seconds()
        try:
            async with asyncio.timeout(deadline):
                return row, await self.connector(row).fetch(client, state), state
        except TimeoutError:
            error = PlatformError(ErrorKind.TIMEOUT, f"{what}: no complete answer within {deadline:g} s")
        except PlatformError as exc:
            error = exc
        except Exception as exc:  # a bug in one connector must not stop the others
            log.exception("source_crashed source=%s account=%s", row.location, row.account_id)
            error = PlatformError(ErrorKind.BAD_PAYLOAD, f"{what}: unexpected error ({exc!r})")
        return row, error, state

    def _claim(self, now: datetime, limit: int, all_sources: bool, after_id: int | None) -> list[models.Source]:
        def work(session: Session) -> list[models.Source]:
            return claim_sources(
                session,
                owner=self.owner,
                now=now,
                lease=self.lease,
                limit=limit,
                all_enabled=all_sources,
                after_id=after_id,
            )

        return retrying(self.engine, work)

    def release(self) -> None:
        """Give back every source this process still holds (shutdown)."""
        with session_scope(self.engine) as session:
            session.execute(
                update(models.Source)
                .where(col(models.Source.lease_owner) == self.owner)
                .values(lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )

    async def run_pass(
        self,
        client: httpx.AsyncClient,
        *,
        now: datetime | None = None,
        all_sources: bool = False,
        concurrency: int | None = None,
    ) -> PollSummary:
        """Poll every due source (or every enabled one) once, however many there are."""
        started, now = time.perf_counter(), now or utcnow()
        summary = PollSummary()
        limit = concurrency or self.config.service.max_concurrent_polls
        gate = asyncio.Semaphore(limit)
        results: asyncio.Queue[Outcome | None] = asyncio.Queue()
        known = {a.id for a in self.config.accounts}
        writing = asyncio.create_task(self._writer(results, now, summary))
        tasks: set[asyncio.Task[None]] = set()

        async def one(row: models.Source) -> None:
            try:
                await results.put(await self.fetch(client, row))
            finally:
                gate.release()

        after_id: int | None = 0 if all_sources else None
        try:
            while not self.stopping:
                rows = await asyncio.to_thread(self._claim, now, 2 * limit, all_sources, after_id)
                if not rows:
                    break
                if after_id is not None:
                    after_id = max(r.id or 0 for r in rows)
                for row in rows:
                    if row.account_id not in known:
                        continue  # left leased: a config reload will sync it
                    summary.sources += 1
                    await gate.acquire()
                    task = asyncio.create_task(one(row))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            await results.put(None)
            await writing
        summary.seconds = time.perf_counter() - started
        if summary.sources:
            log.info(summary.line())
        return summary

    async def _writer(self, results: asyncio.Queue[Outcome | None], now: datetime, summary: PollSummary) -> None:
        """One writer: whatever has arrived, up to WRITE_BATCH, per transaction, off the event loop."""
        done = False
        while not done:
            batch = [await results.get()]
            while not results.empty() and len(batch) < WRITE_BATCH:
                batch.append(results.get_nowait())
            done = batch[-1] is None
            ready = [b for b in batch if b is not None]
            if ready:
                await asyncio.to_thread(self._write, ready, now, summary)

    def _triage(self, busy: list[Outcome]) -> dict[str, dict[str, Verdict]]:
        """Verdicts for the items not stored yet, for a whole batch of feeds: one read, then one
        classify_many per school, with no transaction open while the model runs."""
        wanted: dict[str, dict[str, NewItem]] = {}
        for row, outcome, _state in busy:
            if isinstance(outcome, FetchResult):
                wanted.setdefault(row.account_id, {}).update({n.external_id: n for n in outcome.items})
        if not wanted:
            return {}
        classifier = self.classifier or default_classifier()
        with session_scope(self.engine) as session:
            classifier.refresh_labels(session)
            for account_id, items in wanted.items():
                for external_id in known_external_ids(session, account_id=account_id, external_ids=list(items)):
                    del items[external_id]
        by_school: dict[str, list[tuple[str, NewItem]]] = {}
        for account_id, items in wanted.items():
            school = self.config.school_of(self.config.account(account_id)).id
            by_school.setdefault(school, []).extend((account_id, n) for n in items.values())
        verdicts: dict[str, dict[str, Verdict]] = {}
        for school, pairs in by_school.items():
            found = classifier.classify_many([n.text for _a, n in pairs], school=school)
            for (account_id, new), verdict in zip(pairs, found, strict=True):
                verdicts.setdefault(account_id, {})[new.external_id] = verdict
        return verdicts

    def _write(self, batch: list[Outcome], now: datetime, summary: PollSummary) -> None:
        """Record a batch in one transaction; if anything in it fails, redo it one source per
        transaction so one bad source cannot hold back the others."""
        calm = [
            row
            for row, outcome, state in batch
            if isinstance(outcome, FetchResult)
            and quiet(row, outcome, state, account=self.config.account(row.account_id), now=now)
        ]
        calm_ids = {row.id for row in calm}
        busy = [b for b in batch if b[0].id not in calm_ids]
        verdicts = self._triage(busy)

        def work(session: Session) -> PollSummary:
            partial = PollSummary()
            record_quiet(session, config=self.config, sources=calm, now=now)
            for row, outcome, state in busy:
                assert row.id is not None
                record(
                    session,
                    config=self.config,
                    source_id=row.id,
                    outcome=outcome,
                    state=state,
                    now=now,
                    classifier=self.classifier,
                    summary=partial,
                    verdicts=verdicts.get(row.account_id),
                )
            for _row, outcome, _state in batch:
                if isinstance(outcome, FetchResult):
                    partial.not_modified += outcome.not_modified
            return partial

        try:
            summary.merge(retrying(self.engine, work))
            return
        except Exception:
            if len(batch) == 1:
                log.exception("record_failed source_id=%s", batch[0][0].id)
                summary.failed += 1
                return
        for one in batch:
            self._write([one], now, summary)


async def poll_once(
    engine: Engine,
    *,
    config: Config,
    client: httpx.AsyncClient,
    now: datetime | None = None,
    all_sources: bool = False,
    concurrency: int | None = None,
    classifier: Classifier | None = None,
) -> PollSummary:
    """One pass by a one-off poller (tests, `hallmonitor poll`); stored items are never touched by failures."""
    poller = Poller(engine, config, classifier)
    return await poller.run_pass(client, now=now, all_sources=all_sources, concurrency=concurrency)
