"""Bluesky connector. Records come from the recorded real AT Protocol payloads in
../shared/fixtures/bluesky; the notification envelope follows the documented lexicon."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
import respx
from sqlalchemy import Engine
from sqlmodel import select

from monitors.bluesky import DEFAULT_SERVICE
from storage.db import session_scope
from storage.models import Item, Source
from tests.conftest import FIXTURES
from tests.helpers import act as helpers_act
from tests.helpers import poll

BS = FIXTURES / "bluesky"
XRPC = f"{DEFAULT_SERVICE}/xrpc"
ME = "did:plc:school000000000000000000"
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def notifications() -> dict:  # type: ignore[type-arg]
    post = json.loads((BS / "post_record.json").read_text())
    thread = json.loads((BS / "thread_view_post_with_embed_media.json").read_text())["thread"]["post"]
    return {
        "notifications": [
            {
                "uri": post["uri"],
                "cid": post["cid"],
                "reason": "mention",
                "indexedAt": "2024-02-22T19:58:14.000Z",
                "isRead": False,
                "author": {"did": "did:plc:kvwvcn5iqfooopmyzvb4qzba", "handle": "test.marshal.dev"},
                "record": {**post["value"], "text": "@northgate.bsky.social the head is a clueless idiot"},
            },
            {
                "uri": thread["uri"],
                "cid": thread["cid"],
                "reason": "reply",
                "indexedAt": "2024-02-23T10:00:00.000Z",
                "isRead": False,
                "author": thread["author"],
                "record": {
                    **thread["record"],
                    "reply": {
                        "root": {"uri": f"at://{ME}/app.bsky.feed.post/3root", "cid": "bafyroot"},
                        "parent": {"uri": f"at://{ME}/app.bsky.feed.post/3root", "cid": "bafyroot"},
                    },
                },
            },
            {
                "uri": "at://x/app.bsky.feed.like/1",
                "reason": "like",
                "indexedAt": "2024-02-23T11:00:00.000Z",
                "author": {"did": "did:plc:y", "handle": "y"},
                "record": {},
            },
        ]
    }


@pytest.fixture
def config(write_config, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BSKY_ID", "northgate.bsky.social")
    monkeypatch.setenv("BSKY_APP_PASSWORD", "app-pass")
    return write_config("""
[[accounts]]
id = "bsky"
platform = "bluesky"
moderators = ["amira", "ben"]
credentials = { identifier = "BSKY_ID", app_password = "BSKY_APP_PASSWORD" }
watch = [{ url = "northgate.bsky.social", kind = "mention" }]
""")


def session_route() -> respx.Route:
    return respx.post(f"{XRPC}/com.atproto.server.createSession").mock(
        return_value=httpx.Response(
            200, json={"accessJwt": "jwt", "refreshJwt": "r", "did": ME, "handle": "northgate.bsky.social"}
        )
    )


@respx.mock
def test_mentions_and_replies_with_a_cursor(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    login = session_route()
    listing = respx.get(f"{XRPC}/app.bsky.notification.listNotifications").mock(
        return_value=httpx.Response(200, json=notifications())
    )
    summary = poll(engine, config, now=NOW)
    assert summary.failed == 0 and summary.items_stored == 2  # the like is not an item
    assert json.loads(login.calls[0].request.content) == {"identifier": "northgate.bsky.social", "password": "app-pass"}
    assert listing.calls[0].request.headers["Authorization"] == "Bearer jwt"
    with session_scope(engine) as s:
        items = {i.kind: i for i in s.scalars(select(Item))}
        assert s.scalars(select(Source)).one().cursor == "2024-02-23T10:00:00.000Z"
    assert items["mention"].escalate == "slt" and items["mention"].url.startswith("https://bsky.app/profile/")  # type: ignore[union-attr]
    assert poll(engine, config, now=NOW, all_sources=True).items_seen == 0  # nothing newer than the cursor


@respx.mock
def test_reply_hide_block_mute_report(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    session_route()
    respx.get(f"{XRPC}/app.bsky.notification.listNotifications").mock(
        return_value=httpx.Response(200, json=notifications())
    )
    poll(engine, config, now=NOW)
    with session_scope(engine) as s:
        ids = {i.kind: i.id or 0 for i in s.scalars(select(Item))}
    create = respx.post(f"{XRPC}/com.atproto.repo.createRecord").mock(return_value=httpx.Response(200, json={}))
    respx.get(f"{XRPC}/com.atproto.repo.getRecord").mock(
        return_value=httpx.Response(400, json={"error": "RecordNotFound"})
    )
    put = respx.post(f"{XRPC}/com.atproto.repo.putRecord").mock(return_value=httpx.Response(200, json={}))
    mute = respx.post(f"{XRPC}/app.bsky.graph.muteActor").mock(return_value=httpx.Response(200))
    report = respx.post(f"{XRPC}/com.atproto.moderation.createReport").mock(return_value=httpx.Response(200, json={}))

    def act(kind: str, action: str, argument: str | None = None) -> str:
        return helpers_act(engine, config, action, ids[kind], argument).message

    assert act("comment", "reply", "Thanks for coming!") == "Replied on Bluesky."
    reply = json.loads(create.calls[0].request.content)["record"]["reply"]
    assert reply["root"]["uri"].startswith(f"at://{ME}/")  # threaded under the school's own post
    assert act("comment", "hide") == "Reply hidden in the school's Bluesky thread."
    gate = json.loads(put.calls[0].request.content)
    assert gate["collection"] == "app.bsky.feed.threadgate" and gate["record"]["hiddenReplies"]
    assert act("mention", "hide") == "Bluesky only lets us hide replies in threads the school started"
    assert act("mention", "block") == "Author blocked on Bluesky."
    assert json.loads(create.calls[1].request.content)["record"]["subject"] == "did:plc:kvwvcn5iqfooopmyzvb4qzba"
    assert act("mention", "mute") == "Author muted on Bluesky." and mute.called
    assert act("mention", "report", "abusive") == "Reported to Bluesky's moderators." and report.called


@respx.mock
def test_follows_the_cursor_until_it_reaches_what_it_has_seen(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    session_route()
    first = notifications()
    older = first["notifications"][0]

    def page(i: int) -> dict:  # type: ignore[type-arg]
        return {**older, "uri": f"{older['uri']}{i}", "indexedAt": f"2024-03-0{i}T00:00:00.000Z"}

    listing = respx.get(f"{XRPC}/app.bsky.notification.listNotifications")
    listing.mock(return_value=httpx.Response(200, json=first))
    poll(engine, config, now=NOW)  # cursor: 2024-02-23T10:00:00.000Z
    listing.mock(
        side_effect=[
            httpx.Response(200, json={"notifications": [page(3), page(2)], "cursor": "c1"}),
            httpx.Response(200, json={"notifications": [page(1), first["notifications"][1]], "cursor": "c2"}),
        ]
    )
    summary = poll(engine, config, now=NOW, all_sources=True)
    assert summary.items_stored == 3  # pages followed until a seen notification, then stopped
    assert listing.calls[-1].request.url.params["cursor"] == "c1"
