"""The one protocol every source implements, and what one poll returns.

Raw platform payloads become `core.domain.NewItem` in the platform modules, at the edge; nothing past
`monitors/` knows a platform's field names. The raw payload rides along for
evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import httpx

from core.config import AccountConfig, Watch
from core.domain import Capability, NewItem


@dataclass(slots=True)
class SourceState:
    """Polling state a source reads and updates; persisted on the source row."""

    etag: str | None = None
    last_modified: str | None = None
    cursor: str | None = None


@dataclass(slots=True)
class FetchResult:
    """What one poll returned. `not_modified` means nothing to parse (HTTP 304)."""

    items: list[NewItem] = field(default_factory=list)
    not_modified: bool = False
    skipped: int = 0  # entries we could not read; logged, never fatal
    warnings: list[str] = field(default_factory=list)


class Source(Protocol):
    """A place items come from: one account's one watch target.

    Implementations raise `PlatformError` for anything that went wrong, and
    never mutate storage themselves; the caller persists `state`.
    """

    platform: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]

    def __init__(self, account: AccountConfig, watch: Watch, *, base_dir: str | None = None) -> None: ...

    async def fetch(self, client: httpx.AsyncClient, state: SourceState) -> FetchResult:
        """Fetch what is new since `state`; update `state` in place."""
        ...
