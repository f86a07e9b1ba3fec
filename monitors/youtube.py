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

from core.config import AccountConfig, Watch
from core.domain import Capability, NewItem
from core.errors import ErrorKind, PlatformError
from monitors.base import FetchResult, SourceState
from monitors.facebook import _later
from monitors.http import OVERLAP, classify_exception, keep_newer, parse_time, retry_after_seconds, secrets

DEFAULT_API = "https://www.googleapis.com/youtube/v3"
MAX_PAGES = 5
QUOTA_REASONS = {"quotaExceeded", "rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded"}


def api_url() -> str:
    return (os.environ.get("YOUTUBE_API_URL") or DEFAULT_API).rstrip("/")


def _token(account: AccountConfig) -> str:
    return secrets(account, "YouTube", "access_token", hint="an OAuth access token")[0]


def classify_youtube(response: httpx.Response, *, what: str) -> PlatformError:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    reasons = {e.get("reason") for e in error.get("errors") or [] if isinstance(e, dict)}
    message = str(error.get("message") or f"HTTP {response.status_code}")
    if response.status_code == 401:
        return PlatformError(ErrorKind.AUTH, f"{what}: the access token has expired or was revoked; reconnect")
    if reasons & QUOTA_REASONS or response.status_code == 429:
        return PlatformError(
            ErrorKind.RATE_LIMITED,
            f"{what}: the API quota is used up for now",
            retry_in_s=retry_after_seconds(response) or 3600,
        )
    if response.status_code == 403:
        return PlatformError(ErrorKind.FORBIDDEN, f"{what}: not allowed ({message[:160]})")
    if response.status_code == 404:
        return PlatformError(ErrorKind.NOT_FOUND, f"{what} says it no longer exists")
    if response.status_code >= 500:
        return PlatformError(ErrorKind.SERVER, f"{what}: Google's servers failed (HTTP {response.status_code})")
    return PlatformError(ErrorKind.BAD_PAYLOAD, f"{what}: {message[:200]}")


def comment_to_item(comment: dict[str, Any], *, held: bool = False) -> NewItem | None:
    snippet = comment.get("snippet") or {}
    ident = comment.get("id")
    if not ident:
        return None
    video, parent = snippet.get("videoId"), snippet.get("parentId")
    url = f"https://www.youtube.com/watch?v={video}&lc={ident}" if video else None
    raw = {**comment, "_held_for_review": held, "_parent_id": parent}
    return NewItem(
        external_id=str(ident),
        kind="comment",
        text=str(snippet.get("textOriginal") or snippet.get("textDisplay") or ""),
        author=snippet.get("authorDisplayName"),
        url=url,
        created_at=parse_time(snippet.get("publishedAt")),
        raw=raw,
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


class YouTubeSource:
    platform: ClassVar[str] = "youtube"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.REPLY, Capability.HIDE, Capability.DELETE, Capability.BLOCK}
    )

    def __init__(self, account: AccountConfig, watch: Watch, *, base_dir: str | None = None) -> None:
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
                newest = _later(newest, keep_newer(page, since, result))
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
        try:
            response = await client.get(f"{api_url()}/{path}", params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise classify_exception(exc, what=self.what) from exc
        if response.status_code >= 400:
            raise classify_youtube(response, what=self.what)
        return response.json()

    def act(self, action: str, *, external_id: str, raw: dict[str, Any], text: str | None = None) -> str:
        headers = {"Authorization": f"Bearer {_token(self.account)}"}
        try:
            with httpx.Client(timeout=20) as client:
                if action == "reply":
                    parent = raw.get("_parent_id") or external_id  # replies go under the top-level comment
                    response = client.post(
                        f"{api_url()}/comments",
                        params={"part": "snippet"},
                        headers=headers,
                        json={"snippet": {"parentId": parent, "textOriginal": text or ""}},
                    )
                else:
                    status, ban = {
                        "hide": ("heldForReview", False),
                        "delete": ("rejected", False),
                        "block": ("rejected", True),
                    }[action]
                    params: dict[str, Any] = {"id": external_id, "moderationStatus": status}
                    if ban:
                        params["banAuthor"] = "true"
                    response = client.post(f"{api_url()}/comments/setModerationStatus", params=params, headers=headers)
        except KeyError:
            raise PlatformError(ErrorKind.BAD_PAYLOAD, f"YouTube cannot {action} from here") from None
        except httpx.HTTPError as exc:
            raise classify_exception(exc, what="YouTube") from exc
        if response.status_code >= 400:
            raise classify_youtube(response, what="YouTube")
        return {
            "reply": "Replied on YouTube.",
            "hide": "Held for review on YouTube.",
            "delete": "Rejected on YouTube.",
            "block": "Rejected on YouTube and the author is banned.",
        }[action]
