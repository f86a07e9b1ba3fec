"""The one protocol every platform module implements, and what passes through it.

A platform module is the whole platform: `fetch` (polling), `act` (moderation on the
platform), `webhook_items` where the platform pushes, its `capabilities`, and the schemas
of its `Credentials` and `Watch` targets. Raw payloads become `core.domain.NewItem` in the
platform module, at the edge; nothing past `monitors/` knows a platform's field names. The
raw payload rides along for evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.config import AccountConfig
from core.config import Watch as WatchConfig
from core.domain import Action, Capability, NewItem


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


@dataclass(frozen=True, slots=True)
class ActRequest:
    """One moderation action on one item, as the platform knows it."""

    action: Action
    external_id: str
    raw: dict[str, Any]
    text: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    """How a platform's pushes are verified at /webhooks/<path> (HMAC-SHA256 of the body,
    "sha256=<hex>" in `signature_header`). The secret is app-wide (`secret_env`, Meta) or the
    account's own `credentials.secret` when `per_account` (/webhooks/<path>/<account>)."""

    path: str
    signature_header: str
    secret_env: str | None = None
    verify_token_env: str | None = None  # a GET handshake answers hub.challenge (Meta)
    per_account: bool = False


class Credentials(BaseModel):
    """Credential key -> the ENVIRONMENT VARIABLE holding that secret. Each platform lists its keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Watch(BaseModel):
    """A watch target as a platform accepts it; `pattern` is what its url must look like."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    pattern: ClassVar[str] = r".+"
    hint: ClassVar[str] = "a feed URL or a local path"
    url: str = Field(min_length=1)
    kind: str = "comment"
    label: str | None = None

    @field_validator("url")
    @classmethod
    def _shape(cls, value: str) -> str:
        if not re.fullmatch(cls.pattern, value):
            raise ValueError(f"{value!r} is not {cls.hint}")
        return value


class Source(Protocol):
    """A place items come from: one account's one watch target.

    Implementations raise `PlatformError` for anything that went wrong, and never
    touch storage; the caller persists `state`. Every HTTP call goes through
    `monitors.http.call` on the client it is given.
    """

    platform: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]
    Credentials: ClassVar[type[Credentials]]
    Watch: ClassVar[type[Watch]]
    webhook: ClassVar[WebhookSpec | None]
    polls: ClassVar[bool]  # False: items only arrive by webhook, so a watch target is optional

    def __init__(self, account: AccountConfig, watch: WatchConfig, *, base_dir: str | None = None) -> None: ...

    async def fetch(self, client: httpx.AsyncClient, state: SourceState) -> FetchResult:
        """Fetch what is new since `state`; update `state` in place."""
        ...

    async def act(self, client: httpx.AsyncClient, request: ActRequest) -> str:
        """Do a moderation action; a sentence for the person on success, PlatformError otherwise."""
        ...

    @classmethod
    async def webhook_items(
        cls, client: httpx.AsyncClient, accounts: list[AccountConfig], payload: Any
    ) -> dict[str, list[NewItem]]:
        """Account id -> items from one verified delivery; `accounts` are this platform's
        accounts (for a per-account webhook, the one it was sent to). {} when there are none."""
        ...


class NoWebhooks:
    """A mixin for platforms that only poll: no webhook, so a watch target is required."""

    webhook: ClassVar[WebhookSpec | None] = None
    polls: ClassVar[bool] = True

    @classmethod
    async def webhook_items(
        cls, client: httpx.AsyncClient, accounts: list[AccountConfig], payload: Any
    ) -> dict[str, list[NewItem]]:
        return {}
