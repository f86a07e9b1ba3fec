"""WordPress (REST API): comments on the school website, including ones held
for moderation; reply, hold, mark as spam and trash.

Chat buttons map onto WordPress: Hide = hold, Delete = move to trash,
Report = mark as spam. Watch target: the site's address. Credentials:
`username` and `app_password` name environment variables holding a WordPress
user (with the moderate_comments capability) and an application password.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from core.config import AccountConfig, Watch
from core.domain import Capability, NewItem
from core.errors import ErrorKind, PlatformError
from monitors.base import FetchResult, SourceState
from monitors.feeds import html_to_text
from monitors.http import classify_exception, classify_response, parse_time, secrets


def _auth(account: AccountConfig) -> tuple[str, str]:
    user, password = secrets(
        account, "WordPress", "username", "app_password", hint="a user and an application password"
    )
    return user, password


def comment_to_item(comment: dict[str, Any]) -> NewItem | None:
    if not comment.get("id"):
        return None
    when = comment.get("date_gmt")
    return NewItem(
        external_id=str(comment["id"]),
        kind="comment",
        text=html_to_text((comment.get("content") or {}).get("rendered")),
        author=comment.get("author_name"),
        url=comment.get("link"),
        created_at=parse_time(when),
        raw=comment,
    )


class WordPressSource:
    platform: ClassVar[str] = "wordpress"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.REPLY, Capability.HIDE, Capability.DELETE, Capability.REPORT}
    )

    def __init__(self, account: AccountConfig, watch: Watch, *, base_dir: str | None = None) -> None:
        self.account = account
        self.site = watch.url.rstrip("/")
        self.what = f"WordPress comments on {watch.label or self.site}"

    async def fetch(self, client: httpx.AsyncClient, state: SourceState) -> FetchResult:
        auth = _auth(self.account)
        result = FetchResult()
        newest = state.cursor
        for status in ("approve", "hold"):
            params: dict[str, Any] = {
                "status": status,
                "per_page": 100,
                "orderby": "date_gmt",
                "order": "desc",
                "context": "edit",
            }
            if state.cursor:
                params["after"] = state.cursor
            try:
                response = await client.get(f"{self.site}/wp-json/wp/v2/comments", params=params, auth=auth)
            except httpx.HTTPError as exc:
                raise classify_exception(exc, what=self.what) from exc
            if response.status_code >= 400:
                raise classify_response(response, what=self.what)
            rows = response.json()
            if not isinstance(rows, list):
                raise PlatformError(ErrorKind.BAD_PAYLOAD, f"{self.what}: expected a list of comments")
            for row in rows:
                item = comment_to_item(row)
                if item is None:
                    result.skipped += 1
                    continue
                result.items.append(item)
                if row.get("date_gmt") and (newest is None or row["date_gmt"] > newest):
                    newest = row["date_gmt"]
        state.cursor = newest
        return result

    def act(self, action: str, *, external_id: str, raw: dict[str, Any], text: str | None = None) -> str:
        url = f"{self.site}/wp-json/wp/v2/comments"
        try:
            with httpx.Client(timeout=20, auth=_auth(self.account)) as client:
                if action == "reply":
                    response = client.post(
                        url, json={"post": raw.get("post"), "parent": int(external_id), "content": text or ""}
                    )
                elif action in ("hide", "report"):
                    status = "hold" if action == "hide" else "spam"
                    response = client.post(f"{url}/{external_id}", json={"status": status})
                elif action == "delete":
                    response = client.delete(f"{url}/{external_id}")  # to the trash, recoverable
                else:
                    raise PlatformError(ErrorKind.BAD_PAYLOAD, f"WordPress cannot {action} from here")
        except httpx.HTTPError as exc:
            raise classify_exception(exc, what="WordPress") from exc
        if response.status_code >= 400:
            raise classify_response(response, what="WordPress")
        return {
            "reply": "Replied on the website.",
            "hide": "Held for moderation on the website.",
            "report": "Marked as spam on the website.",
            "delete": "Moved to the website's trash.",
        }[action]
