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

from core.config import AccountConfig, EnvName
from core.config import Watch as WatchConfig
from core.domain import Action, Capability, NewItem
from core.errors import ErrorKind, PlatformError
from monitors.base import ActRequest, Credentials, FetchResult, NoWebhooks, SourceState, Watch
from monitors.http import Answer, call, classify_response, parse_time, secrets

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


def _classify(answer: Answer) -> PlatformError:
    if answer.status_code == 400 and "ExpiredToken" in answer.text:
        return PlatformError(ErrorKind.AUTH, f"{answer.what}: the session expired; it will be renewed")
    return classify_response(answer)


async def _xrpc(
    client: httpx.AsyncClient,
    method: str,
    name: str,
    *,
    what: str,
    token: str | None = None,
    json: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One XRPC call (com.atproto.*, app.bsky.*); the answer's JSON object, {} if empty."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    url = f"{service_url()}/xrpc/{name}"
    answer = await call(client, method, url, json=json, params=params, headers=headers, what=what, classify=_classify)
    return answer.json_object(empty_ok=True)


async def _session(client: httpx.AsyncClient, account: AccountConfig, what: str) -> dict[str, Any]:
    identifier, password = _credentials(account)
    body = {"identifier": identifier, "password": password}
    session = await _xrpc(client, "POST", "com.atproto.server.createSession", json=body, what=what)
    if not isinstance(session.get("accessJwt"), str) or not isinstance(session.get("did"), str):
        raise PlatformError(ErrorKind.BAD_PAYLOAD, f"{what}: the sign-in answer had no session")
    return session


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


class BlueskyCredentials(Credentials):
    identifier: EnvName
    app_password: EnvName


class BlueskyWatch(Watch):
    pattern: ClassVar[str] = r"@?[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]+"
    hint: ClassVar[str] = 'the school\'s Bluesky handle, like "northgate.bsky.social"'


class BlueskySource(NoWebhooks):
    platform: ClassVar[str] = "bluesky"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.REPLY, Capability.HIDE, Capability.BLOCK, Capability.MUTE, Capability.REPORT}
    )
    Credentials: ClassVar[type[Credentials]] = BlueskyCredentials
    Watch: ClassVar[type[Watch]] = BlueskyWatch

    def __init__(self, account: AccountConfig, watch: WatchConfig, *, base_dir: str | None = None) -> None:
        self.account = account
        self.handle = watch.url.lstrip("@")
        self.what = f"Bluesky @{self.handle}"

    async def fetch(self, client: httpx.AsyncClient, state: SourceState) -> FetchResult:
        token = (await _session(client, self.account, self.what))["accessJwt"]
        result = FetchResult()
        newest = state.cursor
        page: str | None = None
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {"limit": 100, "reasons": list(REASONS), **({"cursor": page} if page else {})}
            body = await _xrpc(
                client, "GET", "app.bsky.notification.listNotifications", params=params, token=token, what=self.what
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
        state.cursor = newest
        return result

    async def act(self, client: httpx.AsyncClient, request: ActRequest) -> str:
        session = await _session(client, self.account, "Bluesky")
        token, me = session["accessJwt"], session["did"]
        raw, action = request.raw, request.action
        author = raw.get("author") or {}
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        ref = {"uri": request.external_id, "cid": raw.get("cid")}
        root = ((raw.get("record") or {}).get("reply") or {}).get("root") or ref
        if action == Action.HIDE:
            return await self._hide(client, token, me, str(root["uri"]), request.external_id, now)
        if action == Action.MUTE:
            await _xrpc(
                client,
                "POST",
                "app.bsky.graph.muteActor",
                json={"actor": author.get("did")},
                token=token,
                what="Bluesky",
            )
            return "Author muted on Bluesky."
        if action == Action.REPORT:
            report = {
                "reasonType": "com.atproto.moderation.defs#reasonRude",
                "reason": request.text or "Reported by the school's moderators",
                "subject": {"$type": "com.atproto.repo.strongRef", **ref},
            }
            await _xrpc(client, "POST", "com.atproto.moderation.createReport", json=report, token=token, what="Bluesky")
            return "Reported to Bluesky's moderators."
        records: dict[Action, tuple[str, dict[str, Any]]] = {
            Action.REPLY: ("app.bsky.feed.post", {"text": request.text or "", "reply": {"root": root, "parent": ref}}),
            Action.BLOCK: ("app.bsky.graph.block", {"subject": author.get("did")}),
        }
        if action not in records:
            raise PlatformError(ErrorKind.BAD_PAYLOAD, f"Bluesky cannot {action} from here")
        collection, fields = records[action]
        record = {"$type": collection, **fields, "createdAt": now}
        body = {"repo": me, "collection": collection, "record": record}
        await _xrpc(client, "POST", "com.atproto.repo.createRecord", json=body, token=token, what="Bluesky")
        return "Replied on Bluesky." if action == Action.REPLY else "Author blocked on Bluesky."

    @staticmethod
    async def _hide(client: httpx.AsyncClient, token: str, me: str, root_uri: str, uri: str, now: str) -> str:
        """Add the reply to the threadgate's hiddenReplies; only the thread's author can."""
        if not root_uri.startswith(f"at://{me}/"):
            raise PlatformError(ErrorKind.FORBIDDEN, "Bluesky only lets us hide replies in threads the school started")
        rkey = root_uri.rsplit("/", 1)[-1]
        where = {"repo": me, "collection": "app.bsky.feed.threadgate", "rkey": rkey}
        try:
            existing = await _xrpc(
                client, "GET", "com.atproto.repo.getRecord", params=where, token=token, what="Bluesky"
            )
        except PlatformError as exc:
            if exc.kind not in (ErrorKind.NOT_FOUND, ErrorKind.BAD_PAYLOAD):
                raise
            existing = {}  # no threadgate yet (Bluesky answers 400 RecordNotFound)
        record = existing.get("value") or {"$type": "app.bsky.feed.threadgate", "post": root_uri, "createdAt": now}
        hidden = list(dict.fromkeys([*(record.get("hiddenReplies") or []), uri]))
        body = {**where, "record": {**record, "hiddenReplies": hidden}}
        await _xrpc(client, "POST", "com.atproto.repo.putRecord", json=body, token=token, what="Bluesky")
        return "Reply hidden in the school's Bluesky thread."
