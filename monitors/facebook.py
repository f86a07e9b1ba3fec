"""Facebook Page: comments (and replies) on the page's recent posts, by Graph
API polling and by the `feed` webhook; reply, hide/unhide, delete and block.

Watch target: the Page id. Credentials: `page_token` names the environment
variable holding a Page access token with pages_read_engagement and
pages_manage_engagement.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx

from core.config import AccountConfig, EnvName
from core.config import Watch as WatchConfig
from core.domain import Action, Capability, NewItem
from core.errors import ErrorKind, PlatformError
from monitors.base import ActRequest, Credentials, FetchResult, SourceState, Watch, WebhookSpec
from monitors.graph import graph_call, graph_get, graph_url, meta_webhook, pages
from monitors.http import OVERLAP, keep_newer, later, parse_time, secrets

COMMENT_FIELDS = "id,message,created_time,from,permalink_url,parent{id},attachment,is_hidden"
RECENT_POSTS = 10  # comments are watched on the page's ten newest posts
MAX_PAGES = 5  # pages of comments per post per poll


def comment_id(comment: dict[str, Any]) -> str | None:
    """The comment's id, or (when fields left it out) the one in its permalink."""
    if comment.get("id"):
        return str(comment["id"])
    query = parse_qs(urlsplit(str(comment.get("permalink_url") or "")).query)
    found = query.get("reply_comment_id") or query.get("comment_id")
    return found[0] if found else None


def comment_to_item(comment: dict[str, Any]) -> NewItem | None:
    """A Graph comment (polled or from a webhook) as our NewItem; None if it has no id."""
    ident = comment_id(comment)
    if ident is None:
        return None
    author = comment.get("from") or {}
    media = (((comment.get("attachment") or {}).get("media") or {}).get("image") or {}).get("src")
    return NewItem(
        external_id=ident,
        kind="comment",
        text=str(comment.get("message") or ""),
        author=author.get("name"),
        url=comment.get("permalink_url"),
        created_at=parse_time(comment.get("created_time")),
        media_urls=(media,) if media else (),
        raw=comment,
    )


class FacebookCredentials(Credentials):
    page_token: EnvName


class FacebookWatch(Watch):
    pattern: ClassVar[str] = r"[0-9]+"
    hint: ClassVar[str] = "a Facebook Page id (digits)"


class FacebookSource:
    platform: ClassVar[str] = "facebook"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.REPLY, Capability.HIDE, Capability.UNHIDE, Capability.DELETE, Capability.BLOCK}
    )
    Credentials: ClassVar[type[Credentials]] = FacebookCredentials
    Watch: ClassVar[type[Watch]] = FacebookWatch
    webhook: ClassVar[WebhookSpec | None] = meta_webhook("facebook")
    polls: ClassVar[bool] = True

    def __init__(self, account: AccountConfig, watch: WatchConfig, *, base_dir: str | None = None) -> None:
        self.account = account
        self.page = watch.url
        self.what = f"Facebook page {watch.label or watch.url}"

    async def fetch(self, client: httpx.AsyncClient, state: SourceState) -> FetchResult:
        access = secrets(self.account, "Facebook", "page_token", hint="a Page access token")[0]
        base = graph_url()
        since = parse_time(state.cursor)
        posts = await graph_get(
            client,
            f"{base}/{self.page}/posts",
            params={"fields": "id,created_time", "limit": RECENT_POSTS, "access_token": access},
            what=self.what,
        )
        result = FetchResult()
        newest = since
        for post in (posts.get("data") or [])[:RECENT_POSTS]:
            url: str | None = f"{base}/{post['id']}/comments"
            params: dict[str, Any] | None = {
                "fields": COMMENT_FIELDS,
                "filter": "stream",
                "order": "reverse_chronological",
                "limit": 50,
                "access_token": access,
            }
            for _ in range(MAX_PAGES):
                body = await graph_get(client, url or "", params=params, what=self.what)
                page = [comment_to_item(comment) for comment in body.get("data") or []]
                newest = later(newest, keep_newer(page, since, result))
                older = since is not None and any(i and i.created_at and i.created_at < since - OVERLAP for i in page)
                url = (body.get("paging") or {}).get("next")
                params = None  # the next link carries its own query
                if older or not url:
                    break
        if newest is not None:
            state.cursor = newest.strftime("%Y-%m-%dT%H:%M:%S%z")
        return result

    async def act(self, client: httpx.AsyncClient, request: ActRequest) -> str:
        """Do a moderation action on Facebook; a sentence on success, PlatformError otherwise."""
        access = secrets(self.account, "Facebook", "page_token", hint="a Page access token")[0]
        action, target, what = request.action, request.external_id, "Facebook"
        if action == Action.REPLY:
            await graph_call(
                client,
                "POST",
                f"{target}/comments",
                access_token=access,
                data={"message": request.text or ""},
                what=what,
            )
            return "Replied on Facebook."
        if action in (Action.HIDE, Action.UNHIDE):
            hidden = str(action == Action.HIDE).lower()
            await graph_call(client, "POST", target, access_token=access, data={"is_hidden": hidden}, what=what)
            return "Hidden on Facebook." if action == Action.HIDE else "Unhidden on Facebook."
        if action == Action.DELETE:
            await graph_call(client, "DELETE", target, access_token=access, what=what)
            return "Deleted on Facebook."
        if action == Action.BLOCK:
            user = (request.raw.get("from") or {}).get("id")
            if not user:
                raise PlatformError(
                    ErrorKind.BAD_PAYLOAD,
                    "Facebook did not say who wrote this comment, so they cannot be blocked from here",
                )
            await graph_call(
                client, "POST", f"{self.page}/blocked", access_token=access, data={"user": user}, what=what
            )
            return "Author blocked from the Facebook page."
        raise PlatformError(ErrorKind.BAD_PAYLOAD, f"Facebook cannot {action} from here")

    @classmethod
    async def webhook_items(
        cls, client: httpx.AsyncClient, accounts: list[AccountConfig], payload: Any
    ) -> dict[str, list[NewItem]]:
        """New and edited comments from the page `feed` webhook; reactions, removals and the
        page's own posts are skipped."""
        out: dict[str, list[NewItem]] = {}
        for account, change in pages(accounts, payload, cls.platform):
            value = change.get("value") or {}
            if change.get("field") != "feed" or value.get("item") != "comment":
                continue
            if value.get("verb") not in ("add", "edited"):
                continue
            item = comment_to_item(_webhook_comment(value))
            if item is not None:
                out.setdefault(account.id, []).append(item)
        return out


def _webhook_comment(value: dict[str, Any]) -> dict[str, Any]:
    """A `feed` change's value in the shape the Graph API gives a polled comment."""
    created = value.get("created_time")
    return {
        "id": value.get("comment_id"),
        "message": value.get("message"),
        "from": value.get("from") or {},
        "parent": {"id": value.get("parent_id")},
        "post_id": value.get("post_id"),
        "created_time": datetime.fromtimestamp(int(created), UTC).strftime("%Y-%m-%dT%H:%M:%S%z")
        if isinstance(created, int | float)
        else created,
        "permalink_url": (value.get("post") or {}).get("permalink_url"),
    }
