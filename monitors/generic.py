"""The generic webhook platform: items are pushed to /webhooks/generic/{account}
(signed with HMAC-SHA256) by forms and automation tools; nothing is polled."""

from __future__ import annotations

from typing import ClassVar

import httpx

from core.config import AccountConfig, Watch
from core.domain import Capability
from monitors.base import FetchResult, SourceState


class GenericWebhookSource:
    """Items pushed to /webhooks/generic/{account}; there is nothing to poll or act on."""

    platform: ClassVar[str] = "webhook"
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def __init__(self, account: AccountConfig, watch: Watch, *, base_dir: str | None = None) -> None:
        self.account = account

    async def fetch(self, client: httpx.AsyncClient, state: SourceState) -> FetchResult:
        return FetchResult()
