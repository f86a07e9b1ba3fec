"""Bluesky (AT Protocol): mentions, replies and quotes of the school's account
(notifications); reply, hide replies in the school's own threads (threadgate),
block, mute and report.

Watch target: the school's handle (e.g. `northgate.bsky.social`).
Credentials: `identifier` and `app_password` name environment variables
holding the handle and an app password. $BLUESKY_SERVICE overrides the PDS.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from core.config import AccountConfig, Watch
from core.domain import Capability, NewItem
from core.errors import ErrorKind, PlatformError
from monitors.base import FetchResult, SourceState
from monitors.http import classify_exception, classify_response, parse_time, secrets

DEFAULT_SERVICE = "https://bsky.social"
REASONS = ("mention", "reply", "quote")
MAX_PAGES = 5


def service_url() -> str:
    return (os.environ.get("BLUESKY_SERVICE") or DEFAULT_SERVICE).rstrip("/")


def _credentials(account: AccountConfig) -> tuple[str, str]:
    handle, password = secrets(
        account,
        "Bluesky",
        "identifier",
        "app_password",
        hint="the handle and an app password (not the account password)",
    )
    return handle, password


def _check(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code >= 400:
        error = classify_response(response, what=what)
        if response.status_code == 400 and "ExpiredToken" in response.text:
            error = PlatformError(ErrorKind.AUTH, f"{what}: the session expired; it will be renewed")
        raise error
    return response.json() if response.content else {}


def notification_to_item(note: dict[str, Any]) -> NewItem | None:
    uri, record = note.get("uri"), note.get("record") or {}
    if not uri:
        return None
    author = note.get("author") or {}
    handle, rkey = author.get("handle"), str(uri).rsplit("/", 1)[-1]
    created = record.get("createdAt") or note.get("indexedAt")
    return NewItem(
        external_id=str(uri),
        kind="comment" if note.get("reason") == "reply" else "mention",
        text=str(record.get("text") or ""),
        author=f"@{handle}" if handle else author.get("did"),
        url=f"https://bsky.app/profile/{handle or author.get('did')}/post/{rkey}",
        created_at=parse_time(created),
        raw=note,
    )


class BlueskySource:
    platform: ClassVar[str] = "bluesky"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.REPLY, Capability.HIDE, Capability.BLOCK, Capability.MUTE, Capability.REPORT}
    )

    def __init__(self, account: AccountConfig, watch: Watch, *, base_dir: str | None = None) -> None:
        self.account = account
        self.handle = watch.url.lstrip("@")
        self.what = f"Bluesky @{self.handle}"

    async def fetch(self, client: httpx.AsyncClient, state: SourceState) -> FetchResult:
        identifier, password = _credentials(self.account)
        result = FetchResult()
        newest = state.cursor
        try:
            session = _check(
                await client.post(
                    f"{service_url()}/xrpc/com.atproto.server.createSession",
                    json={"identifier": identifier, "password": password},
                ),
                self.what,
            )
            headers = {"Authorization": f"Bearer {session['accessJwt']}"}
            page: str | None = None
            for _ in range(MAX_PAGES):
                params: dict[str, Any] = {"limit": 100, "reasons": list(REASONS)}
                if page:
                    params["cursor"] = page
                body = _check(
                    await client.get(
                        f"{service_url()}/xrpc/app.bsky.notification.listNotifications", params=params, headers=headers
                    ),
                    self.what,
                )
                reached_seen = False
                for note in body.get("notifications") or []:
                    indexed = str(note.get("indexedAt") or "")
                    if state.cursor and indexed <= state.cursor:
                        reached_seen = True
                        continue
                    if note.get("reason") not in REASONS:
                        continue
                    item = notification_to_item(note)
                    if item is None:
                        result.skipped += 1
                        continue
                    result.items.append(item)
                    newest = max(newest or indexed, indexed)
                page = body.get("cursor")
                if reached_seen or not page or not state.cursor:
                    break  # the first poll reads the newest page only
        except httpx.HTTPError as exc:
            raise classify_exception(exc, what=self.what) from exc
        state.cursor = newest
        return result

    def act(self, action: str, *, external_id: str, raw: dict[str, Any], text: str | None = None) -> str:
        identifier, password = _credentials(self.account)
        base = f"{service_url()}/xrpc"
        author = raw.get("author") or {}
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        try:
            with httpx.Client(timeout=20) as client:
                session = _check(
                    client.post(
                        f"{base}/com.atproto.server.createSession",
                        json={"identifier": identifier, "password": password},
                    ),
                    "Bluesky",
                )
                client.headers["Authorization"] = f"Bearer {session['accessJwt']}"
                me = session["did"]
                ref = {"uri": external_id, "cid": raw.get("cid")}
                root = ((raw.get("record") or {}).get("reply") or {}).get("root") or ref
                if action == "reply":
                    record = {
                        "$type": "app.bsky.feed.post",
                        "text": text or "",
                        "createdAt": now,
                        "reply": {"root": root, "parent": ref},
                    }
                    _check(
                        client.post(
                            f"{base}/com.atproto.repo.createRecord",
                            json={"repo": me, "collection": "app.bsky.feed.post", "record": record},
                        ),
                        "Bluesky",
                    )
                    return "Replied on Bluesky."
                if action == "hide":
                    return self._hide(client, base, me, str(root["uri"]), external_id, now)
                if action == "block":
                    _check(
                        client.post(
                            f"{base}/com.atproto.repo.createRecord",
                            json={
                                "repo": me,
                                "collection": "app.bsky.graph.block",
                                "record": {
                                    "$type": "app.bsky.graph.block",
                                    "subject": author.get("did"),
                                    "createdAt": now,
                                },
                            },
                        ),
                        "Bluesky",
                    )
                    return "Author blocked on Bluesky."
                if action == "mute":
                    _check(
                        client.post(f"{base}/app.bsky.graph.muteActor", json={"actor": author.get("did")}), "Bluesky"
                    )
                    return "Author muted on Bluesky."
                if action == "report":
                    _check(
                        client.post(
                            f"{base}/com.atproto.moderation.createReport",
                            json={
                                "reasonType": "com.atproto.moderation.defs#reasonRude",
                                "reason": text or "Reported by the school's moderators",
                                "subject": {"$type": "com.atproto.repo.strongRef", **ref},
                            },
                        ),
                        "Bluesky",
                    )
                    return "Reported to Bluesky's moderators."
        except httpx.HTTPError as exc:
            raise classify_exception(exc, what="Bluesky") from exc
        raise PlatformError(ErrorKind.BAD_PAYLOAD, f"Bluesky cannot {action} from here")

    @staticmethod
    def _hide(client: httpx.Client, base: str, me: str, root_uri: str, uri: str, now: str) -> str:
        """Add the reply to the threadgate's hiddenReplies; only the thread's author can."""
        if not root_uri.startswith(f"at://{me}/"):
            raise PlatformError(ErrorKind.FORBIDDEN, "Bluesky only lets us hide replies in threads the school started")
        rkey = root_uri.rsplit("/", 1)[-1]
        existing = client.get(
            f"{base}/com.atproto.repo.getRecord",
            params={"repo": me, "collection": "app.bsky.feed.threadgate", "rkey": rkey},
        )
        record = (existing.json().get("value") if existing.status_code == 200 else None) or {
            "$type": "app.bsky.feed.threadgate",
            "post": root_uri,
            "createdAt": now,
        }
        hidden = list(dict.fromkeys([*(record.get("hiddenReplies") or []), uri]))
        _check(
            client.post(
                f"{base}/com.atproto.repo.putRecord",
                json={
                    "repo": me,
                    "collection": "app.bsky.feed.threadgate",
                    "rkey": rkey,
                    "record": {**record, "hiddenReplies": hidden},
                },
            ),
            "Bluesky",
        )
        return "Reply hidden in the school's Bluesky thread."
