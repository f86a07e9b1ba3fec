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

from core.config import AccountConfig, EnvName
from core.config import Watch as WatchConfig
from core.domain import Action, Capability, NewItem
from core.errors import ErrorKind, PlatformError
from monitors.base import ActRequest, Credentials, FetchResult, NoWebhooks, SourceState, Watch
from monitors.feeds import html_to_text
from monitors.http import call, parse_time, secrets


def _auth(account: AccountConfig) -> tuple[str, str]:
    user, password = secrets(
        account, "WordPress", "username", "app_password", hint="a user and an application password"
    )
    return user, password


def comment_to_item(comment: Any) -> NewItem | None:
    if not isinstance(comment, dict) or not comment.get("id"):
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


class WordPressCredentials(Credentials):
    username: EnvName
    app_password: EnvName


class WordPressWatch(Watch):
    pattern: ClassVar[str] = r"https?://\S+"
    hint: ClassVar[str] = 'the site\'s address, like "https://school.example"'


class WordPressSource(NoWebhooks):
    platform: ClassVar[str] = "wordpress"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.REPLY, Capability.HIDE, Capability.DELETE, Capability.REPORT}
    )
    Credentials: ClassVar[type[Credentials]] = WordPressCredentials
    Watch: ClassVar[type[Watch]] = WordPressWatch

    def __init__(self, account: AccountConfig, watch: WatchConfig, *, base_dir: str | None = None) -> None:
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
            url = f"{self.site}/wp-json/wp/v2/comments"
            answer = await call(client, "GET", url, params=params, auth=auth, what=self.what)
            for row in answer.json_list():
                item = comment_to_item(row)
                if item is None:
                    result.skipped += 1
                    continue
                result.items.append(item)
                if isinstance(row, dict) and row.get("date_gmt") and (newest is None or row["date_gmt"] > newest):
                    newest = row["date_gmt"]
        state.cursor = newest
        return result

    async def act(self, client: httpx.AsyncClient, request: ActRequest) -> str:
        url, auth = f"{self.site}/wp-json/wp/v2/comments", _auth(self.account)
        action, target = request.action, request.external_id
        if action == Action.REPLY:
            body = {"post": request.raw.get("post"), "parent": int(target), "content": request.text or ""}
            await call(client, "POST", url, json=body, auth=auth, what="WordPress")
            return "Replied on the website."
        if action in (Action.HIDE, Action.REPORT):
            status = "hold" if action == Action.HIDE else "spam"
            await call(client, "POST", f"{url}/{target}", json={"status": status}, auth=auth, what="WordPress")
            return "Held for moderation on the website." if action == Action.HIDE else "Marked as spam on the website."
        if action == Action.DELETE:
            await call(client, "DELETE", f"{url}/{target}", auth=auth, what="WordPress")  # to the trash, recoverable
            return "Moved to the website's trash."
        raise PlatformError(ErrorKind.BAD_PAYLOAD, f"WordPress cannot {action} from here")
