"""YouTube (Data API v3): comment threads on the channel's videos, including
those YouTube itself held for review; reply, hold for review, reject, and
reject + ban the author.

Chat buttons map onto YouTube's moderation: Hide = hold for review, Delete =
reject, Block author = reject and ban. Watch target: the channel id.
Credentials: `access_token` names the environment variable holding an OAuth
access token with the youtube.force-ssl scope.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import httpx

from core.config import AccountConfig, EnvName
from core.config import Watch as WatchConfig
from core.domain import Action, Capability, NewItem
from core.errors import ErrorKind, PlatformError
from monitors.base import ActRequest, Credentials, FetchResult, NoWebhooks, SourceState, Watch
from monitors.http import OVERLAP, Answer, call, keep_newer, later, parse_time, retry_after_seconds, secrets

DEFAULT_API = "https://www.googleapis.com/youtube/v3"
MAX_PAGES = 5
MODERATION = {  # action -> moderation status, ban the author, what to tell the person
    Action.HIDE: ("heldForReview", False, "Held for review on YouTube."),
    Action.DELETE: ("rejected", False, "Rejected on YouTube."),
    Action.BLOCK: ("rejected", True, "Rejected on YouTube and the author is banned."),
}
QUOTA_REASONS = {"quotaExceeded", "rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded"}


def api_url() -> str:
    return (os.environ.get("YOUTUBE_API_URL") or DEFAULT_API).rstrip("/")


def _token(account: AccountConfig) -> str:
    return secrets(account, "YouTube", "access_token", hint="an OAuth access token")[0]


def classify_youtube(answer: Answer) -> PlatformError:
    what, status = answer.what, answer.status_code
    error = answer.error_body().get("error") or {}
    error = error if isinstance(error, dict) else {}
    reasons = {e.get("reason") for e in error.get("errors") or [] if isinstance(e, dict)}
    message = str(error.get("message") or f"HTTP {status}")
    if status == 401:
        return PlatformError(ErrorKind.AUTH, f"{what}: the access token has expired or was revoked; reconnect")
    if reasons & QUOTA_REASONS or status == 429:
        return PlatformError(
            ErrorKind.RATE_LIMITED,
            f"{what}: the API quota is used up for now",
            retry_in_s=retry_after_seconds(answer.headers) or 3600,
        )
    if status == 403:
        return PlatformError(ErrorKind.FORBIDDEN, f"{what}: not allowed ({message[:160]})")
    if status == 404:
        return PlatformError(ErrorKind.NOT_FOUND, f"{what} says it no longer exists")
    if status >= 500:
        return PlatformError(ErrorKind.SERVER, f"{what}: Google's servers failed (HTTP {status})")
    return PlatformError(ErrorKind.BAD_PAYLOAD, f"{what}: {message[:200]}")


def comment_to_item(comment: dict[str, Any], *, held: bool = False) -> NewItem | None:
    snippet = comment.get("snippet") or {}
    ident = comment.get("id")
    if not ident:
        return None
    video, parent = snippet.get("videoId"), snippet.get("parentId")
    url = f"https://www.youtube.com/watch?v={video}&lc={ident}" if video else None
    raw = {**comment, "_held_for_review": held, "_parent_id": parent}
    author_id = snippet.get("authorChannelId")
    author_channel = author_id.get("value") if isinstance(author_id, dict) else None
    return NewItem(
        external_id=str(ident),
        kind="comment",
        text=str(snippet.get("textOriginal") or snippet.get("textDisplay") or ""),
        author=snippet.get("authorDisplayName"),
        url=url,
        created_at=parse_time(snippet.get("publishedAt")),
        raw=raw,
        own=bool(author_channel)
        and author_channel == snippet.get("channelId"),  # the channel answering its own viewers
    )


def thread_items(thread: dict[str, Any], *, held: bool = False) -> list[NewItem | None]:
    snippet = thread.get("snippet") or {}
    top = dict(snippet.get("topLevelComment") or {})
    top.setdefault("snippet", {}).setdefault("videoId", snippet.get("videoId"))
    out = [comment_to_item(top, held=held)]
    for reply in (thread.get("replies") or {}).get("comments") or []:
        reply = dict(reply)
        reply.setdefault("snippet", {}).setdefault("videoId", snippet.get("videoId"))
        out.append(comment_to_item(reply, held=held))
    return out


class YouTubeCredentials(Credentials):
    access_token: EnvName


class YouTubeWatch(Watch):
    pattern: ClassVar[str] = r"UC[A-Za-z0-9_-]+"
    hint: ClassVar[str] = 'a YouTube channel id (it starts "UC")'


class YouTubeSource(NoWebhooks):
    platform: ClassVar[str] = "youtube"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.REPLY, Capability.HIDE, Capability.DELETE, Capability.BLOCK}
    )
    Credentials: ClassVar[type[Credentials]] = YouTubeCredentials
    Watch: ClassVar[type[Watch]] = YouTubeWatch

    def __init__(self, account: AccountConfig, watch: WatchConfig, *, base_dir: str | None = None) -> None:
        self.account = account
        self.channel = watch.url
        self.what = f"YouTube channel {watch.label or watch.url}"

    async def fetch(self, client: httpx.AsyncClient, state: SourceState) -> FetchResult:
        headers = {"Authorization": f"Bearer {_token(self.account)}"}
        since = parse_time(state.cursor)
        result = FetchResult()
        newest = since
        for status in ("published", "heldForReview"):
            page_token: str | None = None
            for _ in range(MAX_PAGES):
                params = {
                    "part": "snippet,replies",
                    "allThreadsRelatedToChannelId": self.channel,
                    "maxResults": 100,
                    "order": "time",
                    "moderationStatus": status,
                    "textFormat": "plainText",
                }
                if page_token:
                    params["pageToken"] = page_token
                body = await self._get(client, "commentThreads", params, headers)
                page = [
                    i
                    for thread in body.get("items") or []
                    for i in thread_items(thread, held=status == "heldForReview")
                ]
                newest = later(newest, keep_newer(page, since, result))
                older = since is not None and any(i and i.created_at and i.created_at < since - OVERLAP for i in page)
                page_token = body.get("nextPageToken")
                if older or not page_token:
                    break
        if newest is not None:
            state.cursor = newest.isoformat()
        return result

    async def _get(
        self, client: httpx.AsyncClient, path: str, params: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any]:
        url = f"{api_url()}/{path}"
        answer = await call(
            client, "GET", url, params=params, headers=headers, what=self.what, classify=classify_youtube
        )
        return answer.json_object()

    async def act(self, client: httpx.AsyncClient, request: ActRequest) -> str:
        headers = {"Authorization": f"Bearer {_token(self.account)}"}
        action, target = request.action, request.external_id
        if action == Action.REPLY:
            parent = request.raw.get("_parent_id") or target  # replies go under the top-level comment
            body = {"snippet": {"parentId": parent, "textOriginal": request.text or ""}}
            url, params = f"{api_url()}/comments", {"part": "snippet"}
            await call(
                client,
                "POST",
                url,
                params=params,
                json=body,
                headers=headers,
                what="YouTube",
                classify=classify_youtube,
            )
            return "Replied on YouTube."
        if action not in MODERATION:
            raise PlatformError(ErrorKind.BAD_PAYLOAD, f"YouTube cannot {action} from here")
        status, ban, done = MODERATION[action]
        query: dict[str, Any] = {"id": target, "moderationStatus": status, **({"banAuthor": "true"} if ban else {})}
        url = f"{api_url()}/comments/setModerationStatus"
        await call(client, "POST", url, params=query, headers=headers, what="YouTube", classify=classify_youtube)
        return done
