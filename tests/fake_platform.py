"""A whole platform in one module, as a new one (Threads, TikTok) would be written: poll, act,
webhook, capabilities, credentials and watch schema. tests/test_platforms.py adds it to the
registry with one line."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from core.config import AccountConfig, EnvName
from core.config import Watch as WatchConfig
from core.domain import Action, Capability, NewItem
from core.errors import ErrorKind, PlatformError
from monitors.base import ActRequest, Credentials, FetchResult, SourceState, Watch, WebhookSpec
from monitors.http import call, secrets

API = "https://threads.example/v1"


class ThreadsCredentials(Credentials):
    token: EnvName


class ThreadsWatch(Watch):
    pattern: ClassVar[str] = r"[a-z][a-z0-9-]*"
    hint: ClassVar[str] = "a Threads username"


def reply_to_item(row: Any) -> NewItem | None:
    if not isinstance(row, dict) or not row.get("id"):
        return None
    return NewItem(external_id=str(row["id"]), kind="comment", text=str(row.get("text") or ""), raw=row)


class ThreadsSource:
    platform: ClassVar[str] = "threads"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.HIDE})
    Credentials: ClassVar[type[Credentials]] = ThreadsCredentials
    Watch: ClassVar[type[Watch]] = ThreadsWatch
    webhook: ClassVar[WebhookSpec | None] = WebhookSpec(
        path="threads", signature_header="X-Threads-Signature", secret_env="THREADS_APP_SECRET"
    )
    polls: ClassVar[bool] = True

    def __init__(self, account: AccountConfig, watch: WatchConfig, *, base_dir: str | None = None) -> None:
        self.account, self.user = account, watch.url

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {secrets(self.account, 'Threads', 'token')[0]}"}

    async def fetch(self, client: httpx.AsyncClient, state: SourceState) -> FetchResult:
        answer = await call(client, "GET", f"{API}/{self.user}/replies", headers=self._headers(), what="Threads")
        result = FetchResult()
        for row in answer.json_list():
            item = reply_to_item(row)
            if item is None:
                result.skipped += 1
            else:
                result.items.append(item)
        return result

    async def act(self, client: httpx.AsyncClient, request: ActRequest) -> str:
        if request.action != Action.HIDE:
            raise PlatformError(ErrorKind.BAD_PAYLOAD, f"Threads cannot {request.action} from here")
        url = f"{API}/{self.user}/replies/{request.external_id}/hide"
        await call(client, "POST", url, headers=self._headers(), what="Threads")
        return f"Hidden on Threads for @{self.user}."

    @classmethod
    async def webhook_items(
        cls, client: httpx.AsyncClient, accounts: list[AccountConfig], payload: Any
    ) -> dict[str, list[NewItem]]:
        users = {w.url: a for a in accounts for w in a.watch}
        account = users.get(str(payload.get("user"))) if isinstance(payload, dict) else None
        if account is None:
            return {}
        items = [reply_to_item(row) for row in payload.get("replies") or []]
        return {account.id: [i for i in items if i is not None]}
