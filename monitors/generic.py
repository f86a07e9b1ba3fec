"""The generic webhook platform: items are pushed to /webhooks/generic/{account} (signed with
HMAC-SHA256 of the body, with the secret the account's `credentials.secret` names) by forms and
automation tools; nothing is polled or acted on.

A delivery is one JSON object or a list of them, each with a `text` and optionally `id`,
`author`, `url` and `created_at` (ISO 8601 with an offset); rows without text are skipped.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, ClassVar

import httpx

from core.config import AccountConfig, EnvName
from core.config import Watch as WatchConfig
from core.domain import Capability, NewItem
from core.errors import ErrorKind, PlatformError
from monitors.base import ActRequest, Credentials, FetchResult, SourceState, Watch, WebhookSpec


class GenericCredentials(Credentials):
    secret: EnvName


class GenericWatch(Watch):
    hint: ClassVar[str] = "a name for what the webhook carries"


def _created(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        created = datetime.fromisoformat(value)
    except ValueError:
        return None
    return created if created.tzinfo else None


def row_to_item(row: Any, kind: str) -> NewItem | None:
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        return None
    ident = str(row.get("id") or hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()[:32])
    return NewItem(
        external_id=ident,
        kind=kind,
        text=row["text"],
        author=row.get("author"),
        url=row.get("url"),
        created_at=_created(row.get("created_at")),
        raw=row,
    )


class GenericWebhookSource:
    """Items pushed to /webhooks/generic/{account}; there is nothing to poll or act on."""

    platform: ClassVar[str] = "webhook"
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    Credentials: ClassVar[type[Credentials]] = GenericCredentials
    Watch: ClassVar[type[Watch]] = GenericWatch
    webhook: ClassVar[WebhookSpec | None] = WebhookSpec(
        path="generic", signature_header="X-Signature-256", per_account=True
    )
    polls: ClassVar[bool] = False

    def __init__(self, account: AccountConfig, watch: WatchConfig, *, base_dir: str | None = None) -> None:
        self.account = account

    async def fetch(self, client: httpx.AsyncClient, state: SourceState) -> FetchResult:
        return FetchResult()

    async def act(self, client: httpx.AsyncClient, request: ActRequest) -> str:
        raise PlatformError(ErrorKind.BAD_PAYLOAD, f"a generic webhook cannot {request.action}")

    @classmethod
    async def webhook_items(
        cls, client: httpx.AsyncClient, accounts: list[AccountConfig], payload: Any
    ) -> dict[str, list[NewItem]]:
        out: dict[str, list[NewItem]] = {}
        for account in accounts:
            kind = account.watch[0].kind if account.watch else "message"
            rows = payload if isinstance(payload, list) else [payload]
            out[account.id] = [i for i in (row_to_item(row, kind) for row in rows) if i is not None]
        return out
