"""Fetching one source: build its platform's Source and run one fetch. A failure of any
kind comes back as a `PlatformError` value, so one broken connector never stops the others."""

from __future__ import annotations

import logging

import httpx

from core.config import AccountConfig, Watch
from core.errors import ErrorKind, PlatformError
from monitors.base import FetchResult, SourceState
from monitors.registry import SOURCES

log = logging.getLogger(__name__)


async def fetch_one(
    client: httpx.AsyncClient, *, account: AccountConfig, watch: Watch, state: SourceState, base_dir: str | None
) -> FetchResult | PlatformError:
    """Fetch what is new for one watch target of `account`; `state` is updated in place."""
    impl = SOURCES[account.platform](account, watch, base_dir=base_dir)
    try:
        return await impl.fetch(client, state)
    except PlatformError as exc:
        return exc
    except Exception as exc:  # a bug in one connector must not stop the others
        log.exception("source_crashed source=%s account=%s", watch.url, account.id)
        return PlatformError(ErrorKind.BAD_PAYLOAD, f"{watch.url}: unexpected error ({exc!r})")
