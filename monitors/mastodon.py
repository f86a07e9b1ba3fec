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

from core.config import AccountConfig, Watch
from core.domain import Capability, NewItem
from core.errors import ErrorKind, PlatformError
from monitors.base import FetchResult, SourceState
from monitors.feeds import html_to_text
from monitors.http import classify_exception, classify_response, parse_time, secrets

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


class MastodonSource:
    platform: ClassVar[str] = "mastodon"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.REPLY, Capability.BLOCK, Capability.MUTE, Capability.REPORT}
    )

    def __init__(self, account: AccountConfig, watch: Watch, *, base_dir: str | None = None) -> None:
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
            try:
                response = await client.get(url, params=params, headers=headers)
            except httpx.HTTPError as exc:
                raise classify_exception(exc, what=self.what) from exc
            if response.status_code >= 400:
                raise classify_response(response, what=self.what)
            rows = response.json()
            if not isinstance(rows, list):
                raise PlatformError(ErrorKind.BAD_PAYLOAD, f"{self.what}: expected a list")
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

    def act(self, action: str, *, external_id: str, raw: dict[str, Any], text: str | None = None) -> str:
        headers = {"Authorization": f"Bearer {_token(self.account)}"}
        author = raw.get("account") or {}
        try:
            with httpx.Client(timeout=20, headers=headers) as client:
                if action == "reply":
                    mention = f"@{author.get('acct')} " if author.get("acct") else ""
                    response = client.post(
                        f"{self.base}/api/v1/statuses",
                        data={
                            "status": f"{mention}{text or ''}",
                            "in_reply_to_id": external_id,
                            "visibility": raw.get("visibility") or "public",
                        },
                    )
                    done = "Replied on Mastodon."
                elif action in ("block", "mute"):
                    if not author.get("id"):
                        raise PlatformError(ErrorKind.BAD_PAYLOAD, "Mastodon did not say who posted this")
                    response = client.post(f"{self.base}/api/v1/accounts/{author['id']}/{action}")
                    done = "Author blocked on Mastodon." if action == "block" else "Author muted on Mastodon."
                elif action == "report":
                    response = client.post(
                        f"{self.base}/api/v1/reports",
                        data={
                            "account_id": author.get("id"),
                            "status_ids[]": external_id,
                            "comment": text or "Reported by the school's moderators",
                            "forward": "true",
                        },
                    )
                    done = "Reported to the Mastodon server's moderators."
                else:
                    raise PlatformError(ErrorKind.BAD_PAYLOAD, f"Mastodon cannot {action} from here")
        except httpx.HTTPError as exc:
            raise classify_exception(exc, what="Mastodon") from exc
        if response.status_code >= 400:
            raise classify_response(response, what="Mastodon")
        return done
