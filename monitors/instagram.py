"""Instagram (professional account, Graph API): comments and replies on recent
media, media the account is tagged in (mentions), and the `comments` and
`mentions` webhooks; reply, hide/unhide and delete. Instagram's API cannot
block a user: that has to be done in the app.

Watch targets: `"<user id>"` (comments on our media) and `"<user id>/tags"`
(media we are tagged in, as mentions). Credentials: `access_token`
names the environment variable holding a token with instagram_basic and
instagram_manage_comments.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar

import httpx

from core.config import AccountConfig, EnvName
from core.config import Watch as WatchConfig
from core.domain import Action, Capability, NewItem
from core.errors import ErrorKind, PlatformError
from monitors.base import ActRequest, Credentials, FetchResult, SourceState, Watch, WebhookSpec
from monitors.graph import graph_call, graph_get, graph_url, meta_webhook, pages
from monitors.http import keep_newer, parse_time, secrets

COMMENT_FIELDS = "id,text,timestamp,username,hidden,media{id,permalink},replies{id,text,timestamp,username}"
RECENT_MEDIA = 10
MAX_PAGES = 5


def comment_to_item(comment: dict[str, Any], *, permalink: str | None = None) -> NewItem | None:
    ident = comment.get("id")
    if not ident:
        return None
    author = comment.get("username") or (comment.get("from") or {}).get("username")
    return NewItem(
        external_id=str(ident),
        kind="comment",
        text=str(comment.get("text") or ""),
        author=author,
        url=permalink or ((comment.get("media") or {}).get("permalink")),
        created_at=parse_time(comment.get("timestamp")),
        raw=comment,
    )


def tagged_to_item(media: dict[str, Any]) -> NewItem | None:
    if not media.get("id"):
        return None
    return NewItem(
        external_id=f"tag:{media['id']}",
        kind="mention",
        text=str(media.get("caption") or ""),
        author=media.get("username"),
        url=media.get("permalink"),
        created_at=parse_time(media.get("timestamp")),
        media_urls=(media["media_url"],) if media.get("media_url") else (),
        raw=media,
    )


class InstagramCredentials(Credentials):
    access_token: EnvName


class InstagramWatch(Watch):
    pattern: ClassVar[str] = r"[0-9]+(/tags)?"
    hint: ClassVar[str] = 'an Instagram user id, or "<user id>/tags" for mentions'


class InstagramSource:
    platform: ClassVar[str] = "instagram"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.REPLY, Capability.HIDE, Capability.UNHIDE, Capability.DELETE}
    )
    Credentials: ClassVar[type[Credentials]] = InstagramCredentials
    Watch: ClassVar[type[Watch]] = InstagramWatch
    webhook: ClassVar[WebhookSpec | None] = meta_webhook("instagram")
    polls: ClassVar[bool] = True

    def __init__(self, account: AccountConfig, watch: WatchConfig, *, base_dir: str | None = None) -> None:
        self.account = account
        self.user = watch.url.split("/")[0]  # "<user id>" for comments, "<user id>/tags" for mentions
        self.kind = "mention" if watch.url.endswith("/tags") else watch.kind
        self.what = f"Instagram account {watch.label or watch.url}"

    async def fetch(self, client: httpx.AsyncClient, state: SourceState) -> FetchResult:
        access = secrets(self.account, "Instagram", "access_token")[0]
        base = graph_url()
        since = parse_time(state.cursor)
        result = FetchResult()
        if self.kind == "mention":
            body = await graph_get(
                client,
                f"{base}/{self.user}/tags",
                what=self.what,
                params={
                    "fields": "id,caption,permalink,timestamp,username,media_url",
                    "limit": 50,
                    "access_token": access,
                },
            )
            found = [tagged_to_item(m) for m in body.get("data") or []]
        else:
            media = await graph_get(
                client,
                f"{base}/{self.user}/media",
                what=self.what,
                params={"fields": "id,permalink,timestamp", "limit": RECENT_MEDIA, "access_token": access},
            )
            found = []
            for post in (media.get("data") or [])[:RECENT_MEDIA]:
                found += await self._comments(client, base, post, access, since)
        newest = keep_newer(found, since, result)
        if newest is not None:
            state.cursor = newest.strftime("%Y-%m-%dT%H:%M:%S%z")
        return result

    async def _comments(
        self, client: httpx.AsyncClient, base: str, post: dict[str, Any], access: str, since: datetime | None
    ) -> list[NewItem | None]:
        url: str | None = f"{base}/{post['id']}/comments"
        params: dict[str, Any] | None = {"fields": COMMENT_FIELDS, "limit": 50, "access_token": access}
        out: list[NewItem | None] = []
        for _ in range(MAX_PAGES):
            body = await graph_get(client, url or "", params=params, what=self.what)
            for comment in body.get("data") or []:
                out.append(comment_to_item(comment, permalink=post.get("permalink")))
                for reply in (comment.get("replies") or {}).get("data") or []:
                    out.append(comment_to_item(reply, permalink=post.get("permalink")))
            url, params = (body.get("paging") or {}).get("next"), None  # next links carry their own query
            if not url:
                break
        return out

    async def act(self, client: httpx.AsyncClient, request: ActRequest) -> str:
        access = secrets(self.account, "Instagram", "access_token")[0]
        action, target = request.action, request.external_id
        if target.startswith("tag:"):
            raise PlatformError(
                ErrorKind.FORBIDDEN,
                "Instagram does not let us moderate other people's posts that tag the school; report it in the app",
            )
        if action == Action.REPLY:
            data = {"message": request.text or ""}
            await graph_call(client, "POST", f"{target}/replies", access_token=access, data=data, what="Instagram")
            return "Replied on Instagram."
        if action in (Action.HIDE, Action.UNHIDE):
            data = {"hide": str(action == Action.HIDE).lower()}
            await graph_call(client, "POST", target, access_token=access, data=data, what="Instagram")
            return "Hidden on Instagram." if action == Action.HIDE else "Unhidden on Instagram."
        if action == Action.DELETE:
            await graph_call(client, "DELETE", target, access_token=access, what="Instagram")
            return "Deleted on Instagram."
        raise PlatformError(ErrorKind.BAD_PAYLOAD, f"Instagram cannot {action} from here")

    @classmethod
    async def webhook_items(
        cls, client: httpx.AsyncClient, accounts: list[AccountConfig], payload: Any
    ) -> dict[str, list[NewItem]]:
        """Comments on our media (`comments`), and comments that mention us (`mentions`, which
        carries ids only, so the comment is looked up)."""
        out: dict[str, list[NewItem]] = {}
        for account, change in pages(accounts, payload, cls.platform):
            value, item = change.get("value") or {}, None
            if change.get("field") == "comments":
                item = comment_to_item(
                    {
                        "id": value.get("id"),
                        "text": value.get("text"),
                        "from": value.get("from") or {},
                        "media": value.get("media") or {},
                        "timestamp": None,
                    }
                )
            elif change.get("field") == "mentions" and value.get("comment_id"):
                source = cls(account, account.watch[0])
                item = await source.mentioned_comment(client, str(value["comment_id"]))
            if item is not None:
                out.setdefault(account.id, []).append(item)
        return out

    async def mentioned_comment(self, client: httpx.AsyncClient, comment_id: str) -> NewItem | None:
        """A `mentions` webhook carries ids only: fetch the comment that mentioned us."""
        access = secrets(self.account, "Instagram", "access_token")[0]
        body = await graph_call(
            client,
            "GET",
            self.user,
            access_token=access,
            what="Instagram",
            params={"fields": f"mentioned_comment.comment_id({comment_id}){{id,text,timestamp,username}}"},
        )
        found = body.get("mentioned_comment") or {}
        item = comment_to_item(found)
        return None if item is None else replace(item, kind="mention", media_urls=(), raw=found)
