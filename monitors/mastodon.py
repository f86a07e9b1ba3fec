"""Mastodon: mentions of the school's account (notifications) and a hashtag
timeline (e.g. #NorthgatePrimary); reply, block, mute and report.

Watch targets: `https://<instance>` (mentions) or `https://<instance>/tags/<tag>`.
Credentials: `access_token` names the environment variable holding an access
token with read:notifications, read:statuses, write:statuses, write:blocks,
write:mutes and write:reports.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from core.config import AccountConfig, EnvName
from core.config import Watch as WatchConfig
from core.domain import Action, Capability, NewItem
from core.errors import ErrorKind, PlatformError
from monitors.base import ActRequest, Credentials, FetchResult, NoWebhooks, SourceState, Watch
from monitors.feeds import html_to_text
from monitors.http import call, parse_time, secrets

MAX_PAGES = 5


def _token(account: AccountConfig) -> str:
    return secrets(account, "Mastodon", "access_token", hint="an access token")[0]


def status_to_item(status: dict[str, Any], *, kind: str) -> NewItem | None:
    if not status.get("id"):
        return None
    account = status.get("account") or {}
    media = tuple(m["url"] for m in status.get("media_attachments") or [] if isinstance(m, dict) and m.get("url"))
    return NewItem(
        external_id=str(status["id"]),
        kind=kind,
        text=html_to_text(status.get("content")),
        author=account.get("acct") or account.get("username"),
        url=status.get("url") or status.get("uri"),
        created_at=parse_time(status.get("created_at")),
        media_urls=media,
        raw=status,
    )


class MastodonCredentials(Credentials):
    access_token: EnvName


class MastodonWatch(Watch):
    pattern: ClassVar[str] = r"https?://[^/\s]+(/tags/[^/\s]+)?/?"
    hint: ClassVar[str] = 'the instance\'s address ("https://<instance>") or "https://<instance>/tags/<tag>"'


class MastodonSource(NoWebhooks):
    platform: ClassVar[str] = "mastodon"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.REPLY, Capability.BLOCK, Capability.MUTE, Capability.REPORT}
    )
    Credentials: ClassVar[type[Credentials]] = MastodonCredentials
    Watch: ClassVar[type[Watch]] = MastodonWatch

    def __init__(self, account: AccountConfig, watch: WatchConfig, *, base_dir: str | None = None) -> None:
        self.account = account
        parts = urlsplit(watch.url)
        self.base = f"{parts.scheme}://{parts.netloc}"
        path = parts.path.strip("/")
        self.tag = path.split("/", 1)[1] if path.startswith("tags/") else None
        self.what = f"Mastodon {'#' + self.tag if self.tag else 'mentions'} on {parts.netloc}"

    async def fetch(self, client: httpx.AsyncClient, state: SourceState) -> FetchResult:
        """First poll: the newest page. Then `min_id` pages forward from the cursor, oldest first,
        so a burst bigger than one page between polls is read in full."""
        headers = {"Authorization": f"Bearer {_token(self.account)}"}
        params: dict[str, Any] = {"limit": 40}
        if self.tag:
            url = f"{self.base}/api/v1/timelines/tag/{self.tag}"
        else:
            url, params["types[]"] = f"{self.base}/api/v1/notifications", "mention"
        result = FetchResult()
        cursor = int(state.cursor) if state.cursor and state.cursor.isdigit() else None
        for _ in range(MAX_PAGES if cursor is not None else 1):
            if cursor is not None:
                params["min_id"] = str(cursor)
            answer = await call(client, "GET", url, params=params, headers=headers, what=self.what)
            rows = [r for r in answer.json_list() if isinstance(r, dict)]
            ids = [int(r["id"]) for r in rows if str(r.get("id", "")).isdigit()]
            for row in rows:
                item = status_to_item((row if self.tag else row.get("status")) or {}, kind="mention")
                if item is None:
                    result.skipped += 1
                else:
                    result.items.append(item)
            if not ids:
                break
            cursor = max([*ids, cursor or 0])
            if len(rows) < int(params["limit"]):
                break
        if cursor is not None:
            state.cursor = str(cursor)
        return result

    async def act(self, client: httpx.AsyncClient, request: ActRequest) -> str:
        headers = {"Authorization": f"Bearer {_token(self.account)}"}
        action, raw, target = request.action, request.raw, request.external_id
        author = raw.get("account") or {}
        if action == Action.REPLY:
            mention = f"@{author.get('acct')} " if author.get("acct") else ""
            form = {
                "status": f"{mention}{request.text or ''}",
                "in_reply_to_id": target,
                "visibility": raw.get("visibility") or "public",
            }
            await call(client, "POST", f"{self.base}/api/v1/statuses", data=form, headers=headers, what="Mastodon")
            return "Replied on Mastodon."
        if action in (Action.BLOCK, Action.MUTE):
            if not author.get("id"):
                raise PlatformError(ErrorKind.BAD_PAYLOAD, "Mastodon did not say who posted this")
            url = f"{self.base}/api/v1/accounts/{author['id']}/{action}"
            await call(client, "POST", url, headers=headers, what="Mastodon")
            return "Author blocked on Mastodon." if action == Action.BLOCK else "Author muted on Mastodon."
        if action == Action.REPORT:
            form = {
                "account_id": author.get("id"),
                "status_ids[]": target,
                "comment": request.text or "Reported by the school's moderators",
                "forward": "true",
            }
            await call(client, "POST", f"{self.base}/api/v1/reports", data=form, headers=headers, what="Mastodon")
            return "Reported to the Mastodon server's moderators."
        raise PlatformError(ErrorKind.BAD_PAYLOAD, f"Mastodon cannot {action} from here")
