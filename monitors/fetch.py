"""Fetching one source: build its platform's Source (once; a pass reuses it) and run one fetch
under an overall deadline. A failure of any kind comes back as a `PlatformError` value, so one
broken or slow connector never stops the others."""

from __future__ import annotations

import asyncio
import logging

import httpx

from core.config import AccountConfig, Watch
from core.errors import ErrorKind, PlatformError
from monitors.base import FetchResult, Source, SourceState
from monitors.registry import SOURCES

log = logging.getLogger(__name__)


def connector(account: AccountConfig, watch: Watch, *, base_dir: str | None) -> Source:
    """The platform module's Source for one watch target of `account`."""
    return SOURCES[account.platform](account, watch, base_dir=base_dir)


async def fetch_one(
    client: httpx.AsyncClient,
    *,
    account: AccountConfig,
    watch: Watch,
    state: SourceState,
    base_dir: str | None,
    deadline_s: float | None = None,
    impl: Source | None = None,
) -> FetchResult | PlatformError:
    """Fetch what is new for one watch target of `account`; `state` is updated in place.
    `deadline_s` bounds the whole fetch, every request and every byte of it (a connector that
    pages, or a server that trickles, fails as TIMEOUT); `impl` is a connector built earlier."""
    impl = impl or connector(account, watch, base_dir=base_dir)
    what = watch.label or watch.url
    try:
        async with asyncio.timeout(deadline_s):
            return await impl.fetch(client, state)
    except TimeoutError:
        within = f"within {deadline_s:g} s" if deadline_s is not None else "in time"
        return PlatformError(ErrorKind.TIMEOUT, f"{what}: no complete answer {within}")
    except PlatformError as exc:
        return exc
    except Exception as exc:  # a bug in one connector must not stop the others
        log.exception("source_crashed source=%s account=%s", watch.url, account.id)
        return PlatformError(ErrorKind.BAD_PAYLOAD, f"{watch.url}: unexpected error ({exc!r})")
