"""X (API v2): mentions of the school's account and a recent-search query;
reply, and hide/unhide replies in the school's own conversations.

Watch targets: the account's numeric user id (mentions) or `search:<query>`
(e.g. `search:"Northgate Primary" -is:retweet`). Credentials: `access_token`
names the environment variable holding an OAuth 2.0 user token with
tweet.read, users.read, tweet.write and tweet.moderate.write.
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

import httpx

from core.config import AccountConfig, EnvName
from core.config import Watch as WatchConfig
from core.domain import Action, Capability, NewItem
from core.errors import ErrorKind, PlatformError
from monitors.base import ActRequest, Credentials, FetchResult, NoWebhooks, SourceState, Watch
from monitors.http import Answer, call, classify_response, parse_time, secrets

DEFAULT_API = "https://api.twitter.com/2"
MAX_PAGES = 5


def api_url() -> str:
    return (os.environ.get("X_API_URL") or DEFAULT_API).rstrip("/")


def _token(account: AccountConfig) -> str:
    return secrets(account, "X", "access_token", hint="a user access token")[0]


def _error(answer: Answer) -> PlatformError:
    error = classify_response(answer)
    if answer.status_code == 429 and error.retry_in_s is None:
        reset = answer.headers.get("x-rate-limit-reset")  # X says when the window resets (epoch seconds)
        if reset and reset.isdigit():
            error.retry_in_s = max(30.0, int(reset) - time.time())
    return error


def tweet_to_item(tweet: dict[str, Any], users: dict[str, dict[str, Any]]) -> NewItem | None:
    if not tweet.get("id"):
        return None
    author = users.get(str(tweet.get("author_id")), {})
    handle = author.get("username")
    created = tweet.get("created_at")
    return NewItem(
        external_id=str(tweet["id"]),
        kind="mention",
        text=str(tweet.get("text") or ""),
        author=f"@{handle}" if handle else None,
        url=f"https://x.com/{handle or 'i/web'}/status/{tweet['id']}",
        created_at=parse_time(created),
        raw=tweet,
    )


class XCredentials(Credentials):
    access_token: EnvName


class XWatch(Watch):
    pattern: ClassVar[str] = r"[0-9]+|search:.+"
    hint: ClassVar[str] = 'the account\'s numeric user id, or "search:<query>"'


class XSource(NoWebhooks):
    platform: ClassVar[str] = "x"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.REPLY, Capability.HIDE, Capability.UNHIDE})
    Credentials: ClassVar[type[Credentials]] = XCredentials
    Watch: ClassVar[type[Watch]] = XWatch

    def __init__(self, account: AccountConfig, watch: WatchConfig, *, base_dir: str | None = None) -> None:
        self.account = account
        self.query = watch.url.removeprefix("search:") if watch.url.startswith("search:") else None
        self.user = None if self.query else watch.url
        self.what = f"X {'search ' + repr(self.query) if self.query else 'mentions'}"

    async def fetch(self, client: httpx.AsyncClient, state: SourceState) -> FetchResult:
        headers = {"Authorization": f"Bearer {_token(self.account)}"}
        params: dict[str, Any] = {
            "max_results": 100,
            "tweet.fields": "created_at,author_id,conversation_id",
            "expansions": "author_id",
            "user.fields": "username",
        }
        if state.cursor:
            params["since_id"] = state.cursor
        url = f"{api_url()}/tweets/search/recent" if self.query else f"{api_url()}/users/{self.user}/mentions"
        if self.query:
            params["query"] = self.query
        page_key = "next_token" if self.query else "pagination_token"
        result = FetchResult()
        newest: str | None = None
        for _ in range(MAX_PAGES):
            answer = await call(client, "GET", url, params=params, headers=headers, what=self.what, classify=_error)
            body = answer.json_object()
            users = {str(u.get("id")): u for u in (body.get("includes") or {}).get("users") or []}
            for tweet in body.get("data") or []:
                item = tweet_to_item(tweet, users)
                if item is None:
                    result.skipped += 1
                else:
                    result.items.append(item)
            meta = body.get("meta") or {}
            newest = newest or meta.get("newest_id")  # the first page holds the newest
            if not meta.get("next_token"):
                break
            params[page_key] = meta["next_token"]
        if newest:
            state.cursor = str(newest)
        return result

    async def act(self, client: httpx.AsyncClient, request: ActRequest) -> str:
        headers = {"Authorization": f"Bearer {_token(self.account)}"}
        action, target = request.action, request.external_id
        if action == Action.REPLY:
            body = {"text": request.text or "", "reply": {"in_reply_to_tweet_id": target}}
            await call(client, "POST", f"{api_url()}/tweets", json=body, headers=headers, what="X", classify=_error)
            return "Replied on X."
        if action not in (Action.HIDE, Action.UNHIDE):
            raise PlatformError(ErrorKind.BAD_PAYLOAD, f"X cannot {action} from here")
        url, hidden = f"{api_url()}/tweets/{target}/hidden", {"hidden": action == Action.HIDE}
        try:
            await call(client, "PUT", url, json=hidden, headers=headers, what="X", classify=_error)
        except PlatformError as exc:
            if exc.kind == ErrorKind.FORBIDDEN:
                raise PlatformError(
                    ErrorKind.FORBIDDEN, "X only lets us hide replies in the school's own conversations"
                ) from None
            raise
        return "Reply hidden on X." if action == Action.HIDE else "Reply unhidden on X."
